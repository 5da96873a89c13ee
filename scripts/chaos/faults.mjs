/**
 * The faults of a chaos run. planFaults() turns the seed into the whole schedule before anything
 * runs (time, kind, target, duration, parameters), so a seed names one schedule and `--seed S`
 * replays it; what the fleet does in between is not deterministic (scheduling, the network). The
 * Injector runs the plan on the wall clock, logs every fault and every undo with its time, skips a
 * fault whose target is still under an earlier one (logged as skipped), and heal() ends them all.
 */
import { seededRandom } from '../../dist/actors/trading/sim-market.js';
import { readStat, signalOurs, sleep } from '../lib/proc.mjs';

/** Kinds with their weights; `net` needs namespaces, `pg` needs --store postgres. */
const KINDS = [
  { kind: 'worker-sigkill', weight: 3 },
  { kind: 'sigstop', weight: 2 },
  { kind: 'peer-restart', weight: 2 },
  { kind: 'partition', weight: 2, net: true },
  { kind: 'delay', weight: 1, net: true },
  { kind: 'loss', weight: 1, net: true },
  { kind: 'subsystem-throw', weight: 3 },
  { kind: 'worker-crash', weight: 1 },
  { kind: 'event-loop-block', weight: 1 },
  { kind: 'pg-restart', weight: 1, pg: true },
  { kind: 'kill-switch', weight: 1 },
];
const FAULT_KINDS = new Set(KINDS.map((k) => k.kind));
const SUBSYSTEMS = ['ai', 'freelance', 'trading', 'mesh', 'health'];
const GAP_MS = [2_500, 7_000];

export function makeRandom(seed, stream) {
  // Separate streams (faults, workload, fakes) so a change in one does not shift the others.
  return seededRandom((seed ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0);
}

const between = (random, [lo, hi]) => lo + random() * (hi - lo);
const pick = (random, list) => list[Math.floor(random() * list.length)];

/** The kind whose share of the total weight `r` falls in. */
function weighted(kinds, r) {
  let left = r;
  for (const k of kinds) {
    left -= k.weight;
    if (left < 0) return k.kind;
  }
  return kinds[kinds.length - 1].kind;
}

/** The seed's schedule: [{ at, kind, target, durationMs?, ...params }], `at` in ms from the start. */
export function planFaults({ seed, peers, durationMs, net, postgres }) {
  const random = makeRandom(seed, 0);
  const kinds = KINDS.filter((k) => (!k.net || net) && (!k.pg || postgres));
  const total = kinds.reduce((s, k) => s + k.weight, 0);
  const plan = [];
  for (let at = between(random, GAP_MS); at < durationMs; at += between(random, GAP_MS)) {
    const kind = weighted(kinds, random() * total);
    const target = Math.floor(random() * peers);
    const f = { at: Math.round(at), kind, target };
    if (kind === 'sigstop') f.durationMs = Math.round(between(random, [2_000, 8_000]));
    if (kind === 'peer-restart') {
      f.hard = random() < 0.4;
      f.downMs = Math.round(between(random, [500, 3_000]));
    }
    if (kind === 'partition') {
      // One peer, or up to half the fleet, cut off (each alone: its veth is down).
      const size = 1 + Math.floor(random() * Math.max(1, Math.floor(peers / 2)));
      const set = new Set([target]);
      for (let k = 0; set.size < size && k < 20; k++) set.add(Math.floor(random() * peers));
      f.targets = [...set];
      f.durationMs = Math.round(between(random, [4_000, 15_000]));
    }
    if (kind === 'delay') {
      f.ms = Math.round(between(random, [100, 600]));
      f.durationMs = Math.round(between(random, [6_000, 15_000]));
    }
    if (kind === 'loss') {
      f.percent = Math.round(between(random, [10, 40]));
      f.durationMs = Math.round(between(random, [6_000, 15_000]));
    }
    if (kind === 'subsystem-throw') f.subsystem = pick(random, SUBSYSTEMS);
    if (kind === 'event-loop-block') f.ms = Math.round(between(random, [800, 3_000]));
    if (kind === 'pg-restart') f.mode = random() < 0.5 ? 'fast' : 'immediate';
    if (kind === 'kill-switch') {
      f.durationMs = Math.round(between(random, [3_000, 10_000]));
      f.offFrom = Math.floor(random() * peers);
    }
    plan.push(f);
  }
  return plan;
}

export class Injector {
  constructor({ fleet, lab, pg, log }) {
    this.fleet = fleet;
    this.lab = lab;
    this.pg = pg;
    this.print = log;
    /** Every fault and undo: { at (ISO), t (ms from start), kind, target, detail, outcome } */
    this.events = [];
    /** Per peer: until which time a process fault holds it (ms since the epoch). */
    this.procBusy = new Map();
    this.netBusy = new Map();
    this.undos = new Map();
    this.stopped = new Map();
    this.timers = new Set();
    this.inflight = new Set();
    this.counts = {};
    /** When each peer was under a fault: [{ peer, from, to, kind }] (ms since the epoch). */
    this.windows = [];
    this.skipped = 0;
    this.pgBusy = false;
    this.killSwitchBusy = false;
  }

  record(kind, target, detail, outcome = 'done') {
    const now = Date.now();
    const e = { at: new Date(now).toISOString(), t: now - this.start, kind, target, detail, outcome };
    this.events.push(e);
    if (FAULT_KINDS.has(kind) && (outcome === 'done' || outcome === 'refused' || outcome === 'no answer'))
      this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    this.print(
      `[+${(e.t / 1000).toFixed(1).padStart(6)}s ${e.at}] ${kind.padEnd(16)} ${String(target ?? '').padEnd(
        14,
      )} ${detail}${outcome === 'done' ? '' : ` (${outcome})`}`,
    );
    return e;
  }

  peerName(i) {
    return this.fleet.peers[i].id;
  }

  /** Runs `plan` from now; resolves when the last fault has been started. */
  async run(plan) {
    this.start = Date.now();
    for (const f of plan) {
      const wait = this.start + f.at - Date.now();
      if (wait > 0) await sleep(wait);
      if (this.healing) break;
      const p = this.apply(f).catch((err) =>
        this.record(f.kind, this.peerName(f.target), err.message, 'error'),
      );
      this.inflight.add(p);
      p.finally(() => this.inflight.delete(p));
    }
  }

  later(key, ms, undo) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.undos.delete(key);
      const p = undo().catch((err) => this.record('undo', key, err.message, 'error'));
      this.inflight.add(p);
      p.finally(() => this.inflight.delete(p));
    }, ms);
    this.timers.add(timer);
    this.undos.set(key, { timer, undo });
  }

  /**
   * Notes that `peers` are under `kind` from now for `lastingMs`, plus 6 s: a killed worker is back
   * within seconds and the others see a peer down ~4 s after it went silent.
   */
  window(peers, kind, lastingMs) {
    const from = Date.now();
    for (const peer of peers) this.windows.push({ peer, kind, from, to: from + lastingMs + 6_000 });
  }

  busy(map, i) {
    return (map.get(i) ?? 0) > Date.now();
  }

  skip(f, why) {
    this.skipped++;
    this.record(f.kind, this.peerName(f.target), why, 'skipped');
  }

  async apply(f) {
    const name = this.peerName(f.target);
    const i = f.target;
    const processFault = ['worker-sigkill', 'sigstop', 'peer-restart', 'worker-crash', 'event-loop-block'];
    if (processFault.includes(f.kind) || f.kind === 'subsystem-throw') {
      if (this.busy(this.procBusy, i) || !this.fleet.running(i))
        return this.skip(f, 'target still under an earlier fault');
    }
    switch (f.kind) {
      case 'worker-sigkill': {
        const pid = this.fleet.signalWorker(i, 'SIGKILL');
        this.procBusy.set(i, Date.now() + 2_000);
        if (pid) this.window([i], f.kind, 1_000);
        return this.record(
          f.kind,
          name,
          pid ? `SIGKILL worker pid ${pid}` : 'no worker running',
          pid ? 'done' : 'skipped',
        );
      }
      case 'sigstop': {
        const pid = this.fleet.workerPid(i);
        if (!pid) return this.skip(f, 'no worker running');
        const startTime = readStat(pid)?.startTime;
        signalOurs(pid, startTime, 'SIGSTOP');
        this.stopped.set(i, { pid, startTime });
        this.window([i], f.kind, f.durationMs);
        this.procBusy.set(i, Date.now() + f.durationMs + 1_000);
        this.record(f.kind, name, `SIGSTOP worker pid ${pid} for ${(f.durationMs / 1000).toFixed(1)} s`);
        return this.later(`sigcont ${name}`, f.durationMs, async () => {
          signalOurs(pid, startTime, 'SIGCONT');
          this.stopped.delete(i);
          this.record('sigcont', name, `SIGCONT worker pid ${pid}`);
        });
      }
      case 'peer-restart': {
        this.procBusy.set(i, Date.now() + 60_000);
        this.window([i], f.kind, 20_000 + f.downMs);
        this.record(
          f.kind,
          name,
          `${f.hard ? 'SIGKILL supervisor and worker' : 'SIGTERM supervisor'}, start again after ${f.downMs} ms`,
        );
        await this.fleet.stop(i, { hard: f.hard });
        this.stopped.delete(i);
        await sleep(f.downMs);
        if (this.healing) return;
        this.fleet.start(i);
        this.procBusy.set(i, Date.now() + 3_000);
        return this.record('peer-started', name, `supervisor pid ${this.fleet.peers[i].sup.pid}`);
      }
      case 'worker-crash':
      case 'event-loop-block':
      case 'subsystem-throw': {
        const path =
          f.kind === 'worker-crash'
            ? '/faults/worker/crash'
            : f.kind === 'event-loop-block'
              ? '/faults/event-loop/block'
              : `/faults/subsystems/${f.subsystem}/throw`;
        const body = f.kind === 'event-loop-block' ? { ms: f.ms } : undefined;
        if (f.kind === 'worker-crash') this.procBusy.set(i, Date.now() + 2_000);
        if (f.kind !== 'subsystem-throw') this.window([i], f.kind, f.ms ?? 1_000);
        // A mesh restart drops every link of the peer: until it relinks it sees nobody (like a cut).
        else if (f.subsystem === 'mesh') this.window([i], 'mesh-restart', 3_000);
        const detail = `POST ${path}${body ? ` ${JSON.stringify(body)}` : ''}`;
        try {
          const res = await this.fleet.post(i, path, body);
          return this.record(
            f.kind,
            name,
            `${detail} -> ${res.status}`,
            res.status < 300 ? 'done' : 'refused',
          );
        } catch (err) {
          return this.record(f.kind, name, `${detail}: ${err.message}`, 'no answer');
        }
      }
      case 'partition': {
        const targets = f.targets.filter((t) => !this.busy(this.netBusy, t));
        if (targets.length === 0) return this.skip(f, 'links already impaired');
        const names = targets.map((t) => this.peerName(t)).join(',');
        this.window(targets, f.kind, f.durationMs);
        for (const t of targets) {
          this.netBusy.set(t, Date.now() + f.durationMs + 500);
          this.lab.faults.partition(t);
        }
        this.record(
          f.kind,
          names,
          `veth down for ${(f.durationMs / 1000).toFixed(1)} s (each cut off from all)`,
        );
        return this.later(`heal-partition ${names}`, f.durationMs, async () => {
          for (const t of targets) this.lab.faults.unpartition(t);
          this.record('heal-partition', names, 'veth up');
        });
      }
      case 'delay':
      case 'loss': {
        if (this.busy(this.netBusy, i)) return this.skip(f, 'links already impaired');
        this.netBusy.set(i, Date.now() + f.durationMs + 500);
        this.window([i], f.kind, f.durationMs);
        const how = f.kind === 'delay' ? this.lab.faults.delay(i, f.ms) : this.lab.faults.loss(i, f.percent);
        this.record(f.kind, name, `${how} for ${(f.durationMs / 1000).toFixed(1)} s`);
        return this.later(`clear ${name}`, f.durationMs, async () => {
          this.record('clear-link', name, this.lab.faults.clear(i));
        });
      }
      case 'pg-restart': {
        if (this.pgBusy) return this.skip(f, 'PostgreSQL restart already under way');
        this.pgBusy = true;
        this.record(f.kind, 'postgres', `pg_ctl restart -m ${f.mode}`);
        try {
          await this.pg.restart(f.mode);
          this.record('pg-up', 'postgres', 'restarted');
        } finally {
          this.pgBusy = false;
        }
        return;
      }
      case 'kill-switch': {
        if (this.killSwitchBusy) return this.skip(f, 'kill switch already on');
        this.killSwitchBusy = true;
        const on = await this.fleet
          .post(i, '/kill-switch', { activate: true, reason: `chaos ${f.at}` })
          .catch((e) => e);
        // No answer (a frozen or cut-off peer) may still apply later, when the peer resumes: the
        // deactivation is scheduled either way, and the heal turns off whatever is left on.
        this.record(
          f.kind,
          name,
          `activate -> ${on?.status ?? on.message}`,
          on?.status === 200 ? 'done' : 'no answer',
        );
        return this.later(`kill-switch-off ${name}`, f.durationMs, async () => {
          this.killSwitchBusy = false;
          const off = await this.fleet
            .post(f.offFrom, '/kill-switch', { activate: false, reason: `chaos ${f.at} over` })
            .catch((e) => e);
          this.record(
            'kill-switch-off',
            this.peerName(f.offFrom),
            `deactivate -> ${off?.status ?? off.message}`,
            off?.status === 200 ? 'done' : 'no answer (heal deactivates)',
          );
        });
      }
      default:
        throw new Error(`unknown fault ${f.kind}`);
    }
  }

  /**
   * Ends every fault: pending undos run now, every link is up and clean, every worker runs
   * (SIGCONT), every peer runs, PostgreSQL runs. The kill switch is left to the caller (it needs
   * the mesh back first). Returns the time the heal finished.
   */
  async heal() {
    this.healing = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inflight]);
    for (const [key, { undo }] of this.undos) {
      await undo().catch((err) => this.record('undo', key, err.message, 'error'));
    }
    this.undos.clear();
    for (const [i, { pid, startTime }] of this.stopped) {
      signalOurs(pid, startTime, 'SIGCONT');
      this.record('heal', this.peerName(i), `SIGCONT worker pid ${pid}`);
    }
    this.stopped.clear();
    if (this.lab.faults.supported) {
      for (const [i] of this.fleet.peers.entries()) {
        this.lab.faults.unpartition(i);
        this.lab.faults.clear(i);
      }
      this.record('heal', 'all', 'every veth up, no qdisc, no nft rule');
    }
    for (const [i, p] of this.fleet.peers.entries()) {
      if (!this.fleet.running(i)) {
        this.fleet.start(i);
        this.record('heal', p.id, `peer was not running: started (pid ${p.sup.pid})`);
      }
    }
    if (this.pg) {
      await this.pg.ensureRunning();
      this.record('heal', 'postgres', 'running');
    }
    this.killSwitchBusy = false;
    return Date.now();
  }
}
