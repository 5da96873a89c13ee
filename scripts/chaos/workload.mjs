/**
 * Keeps work flowing through the fleet while faults fly: AI tasks (POST /ai/tasks with an
 * idempotency key) and freelance jobs (POST /freelance/jobs with a URL, their dedup key), one of
 * each kind per tick to a peer drawn from the workload's own PRNG. A request that gets no answer
 * (the peer is frozen, partitioned or restarting) is not accepted; it is sent again later with the
 * same key, as a client would: an AI task to any peer with PostgreSQL (one queue for the fleet),
 * otherwise to the same peer (its SQLite holds the item). A freelance job always goes back to the
 * peer that took it: safe whether its store is that peer's SQLite or the fleet's PostgreSQL. Every 5th accepted item is submitted a second time to
 * check that its key returns the first item.
 *
 * `accepted` is what the invariants check: key -> { kind, peer, id, at }.
 */
import { sleep } from '../lib/proc.mjs';

const TICK_MS = 1_000;
const JOB_EVERY_TICKS = 3;
const MAX_PENDING = 500;

export class Workload {
  constructor({ fleet, random, shared, log }) {
    this.fleet = fleet;
    this.random = random;
    this.shared = shared;
    this.log = log;
    /** key -> { kind, peer, id, at } */
    this.accepted = new Map();
    /** Keys sent but not yet answered with 202: [{ key, kind, peer, body }] */
    this.pending = [];
    /** Resubmissions whose id differed from the first: [{ key, first, second, peer }] */
    this.duplicates = [];
    this.stats = { sent: 0, accepted: 0, unanswered: 0, refused: 0, resubmitted: 0, resubmitSame: 0 };
    this.n = 0;
    this.running = false;
  }

  start() {
    this.running = true;
    this.loop = this.run();
  }

  async stop() {
    this.running = false;
    await this.loop;
  }

  async run() {
    while (this.running) {
      const tick = this.n++;
      const peer = Math.floor(this.random() * this.fleet.size);
      const sends = [this.submit({ kind: 'ai', key: `chaos-ai-${tick}`, peer })];
      if (tick % JOB_EVERY_TICKS === 0)
        sends.push(this.submit({ kind: 'job', key: `chaos-job-${tick}`, peer }));
      // One earlier unanswered item per tick, so retries never crowd out new work.
      const retry = this.pending.shift();
      if (retry) sends.push(this.submit(retry));
      await Promise.all(sends);
      await sleep(TICK_MS);
    }
  }

  body(kind, key) {
    if (kind === 'ai') return { prompt: `chaos task ${key}: say something short`, idempotencyKey: key };
    return {
      title: `Chaos job ${key}: typescript work`,
      description: 'Posted by the chaos run.',
      url: `https://jobs.example/chaos-api/${key}`,
      budget: 800,
      currency: 'USD',
    };
  }

  async submit(item) {
    const { kind, key } = item;
    // With PostgreSQL an AI task's retry may go to any peer (one queue for the fleet); a freelance
    // job goes back to the peer it was posted to (its SQLite may hold it, depending on the version).
    const anyPeer = item.retry && this.shared && kind === 'ai';
    const peer = anyPeer ? Math.floor(this.random() * this.fleet.size) : item.peer;
    const path = kind === 'ai' ? '/ai/tasks' : '/freelance/jobs';
    this.stats.sent++;
    let res;
    try {
      res = await this.fleet.post(peer, path, this.body(kind, key));
    } catch {
      res = undefined;
    }
    if (!res || res.status >= 500 || res.status === 429) {
      this.stats.unanswered++;
      if (this.pending.length < MAX_PENDING) this.pending.push({ ...item, retry: true });
      return;
    }
    if (res.status !== 202) {
      this.stats.refused++;
      this.log(
        `workload: ${kind} ${key} refused by peer-${peer + 1}: ${res.status} ${JSON.stringify(res.body)}`,
      );
      return;
    }
    const id = res.body.id;
    const first = this.accepted.get(key);
    if (first) {
      this.stats.resubmitted++;
      if (first.id === id) this.stats.resubmitSame++;
      else this.duplicates.push({ key, first: first.id, second: id, peer: `peer-${peer + 1}` });
      return;
    }
    this.accepted.set(key, { kind, peer, id, at: Date.now() });
    this.stats.accepted++;
    if (this.stats.accepted % 5 === 0) this.pending.push({ kind, key, peer, retry: true });
  }

  /**
   * After the chaos: sends every still-unanswered item again until each is accepted, bounded by
   * `deadline` (ms since the epoch).
   */
  async drain(deadline) {
    while (this.pending.length > 0 && Date.now() < deadline) {
      const batch = this.pending.splice(0, 20);
      await Promise.all(batch.map((item) => this.submit(item)));
      if (this.pending.length > 0) await sleep(500);
    }
    return this.pending.length;
  }
}
