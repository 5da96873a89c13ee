/**
 * A fleet sharing one PostgreSQL database, with real processes: three peers (continuous mode, a
 * static mesh on 127.0.0.1) point DATABASE_URL at one database started by the test. 500 AI tasks
 * are submitted to the first peer; all three claim and run them; the third peer (its supervisor
 * and its worker) is SIGKILLed for good in the middle of the run. Its leases must run out and be
 * taken over, and every task must end `completed` exactly once, answerable from any live peer.
 *
 * Leases are kept short through AI_TIMEOUT (an AI task's lease is the call's timeout x 1.5 + 1 s,
 * see leaseMsFor), so the takeover comes within seconds.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { leaseMsFor } from '../../src/actors/ai/engine.js';
import { type ChatCall, startFakeOpenAi } from '../helpers/fake-openai.js';
import { type Member, newSecret, startMesh } from '../helpers/mesh.js';
import { postgresUnavailable, startPostgres } from '../helpers/postgres.js';
import { type BotProcess, http } from '../helpers/process.js';

const TOKEN = randomBytes(24).toString('base64url');
const TASKS = 500;
const PEERS = ['fleet-a', 'fleet-b', 'fleet-c'] as const;
/** Provider latency: spreads the run over several seconds, so the kill lands in the middle of it. */
const LATENCY_MS = 120;
const CONCURRENCY = 4;
const AI_TIMEOUT_MS = 3_000;
/** Submissions in flight at once (the first peer group-commits them). */
const SUBMIT_PARALLEL = 50;

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL fleet test: ${unavailable}`);

interface Row {
  id: string;
  state: string;
  idempotency_key: string;
  lease_owner: string | null;
  lease_token: number;
  attempts: number;
  prompt: string;
  answer: string | null;
}

async function rows(db: pg.Client): Promise<Row[]> {
  const { rows } = await db.query<Row>(
    `SELECT id::text AS id, state, idempotency_key, lease_owner, lease_token::int AS lease_token, attempts,
            payload::jsonb->>'prompt' AS prompt, result::jsonb->>'text' AS answer
     FROM queue_items WHERE queue = 'ai' ORDER BY id`,
  );
  return rows;
}

function countBy<T>(items: readonly T[], key: (t: T) => string | null): Map<string | null, number> {
  const counts = new Map<string | null, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

async function submitAll(bot: BotProcess): Promise<string[]> {
  const ids: string[] = new Array(TASKS);
  for (let from = 0; from < TASKS; from += SUBMIT_PARALLEL) {
    const batch = Array.from({ length: Math.min(SUBMIT_PARALLEL, TASKS - from) }, (_, j) => from + j);
    await Promise.all(
      batch.map(async (i) => {
        const res = await bot.post('/ai/tasks', { prompt: `task ${i}`, idempotencyKey: `key-${i}` }, TOKEN);
        expect(res.status, res.body).toBe(202);
        ids[i] = res.json().id;
      }),
    );
  }
  return ids;
}

/** Asks a peer for every task by id, a few at a time; each must be `completed` with its answer. */
async function expectAllCompletedAt(bot: BotProcess, ids: readonly string[]): Promise<void> {
  for (let from = 0; from < ids.length; from += SUBMIT_PARALLEL) {
    await Promise.all(
      ids.slice(from, from + SUBMIT_PARALLEL).map(async (id, j) => {
        const res = await bot.get(`/ai/tasks/${id}`);
        expect(res.status, res.body).toBe(200);
        const task = res.json();
        expect(task.id).toBe(id);
        expect(task.status, `task ${from + j} at ${bot.url}`).toBe('completed');
      }),
    );
  }
}

describe.skipIf(unavailable !== null)('AI tasks on a fleet sharing PostgreSQL (real processes)', () => {
  it(`3 peers run ${TASKS} tasks submitted to one; one peer SIGKILLed for good; every task completes once`, {
    timeout: 180_000,
  }, async () => {
    const t0 = performance.now();
    const phases: string[] = [];
    const phase = (name: string) => phases.push(`${name} ${Math.round(performance.now() - t0)} ms`);
    const postgres = await startPostgres({ fsync: false });
    onTestFinished(() => postgres.stop());
    const databaseUrl = await postgres.createDatabase('fleet');
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    onTestFinished(() => db.end());

    const server = await startFakeOpenAi(() => ({ kind: 'ok', delayMs: LATENCY_MS }));
    const members: Member[] = await startMesh({
      peerIds: PEERS,
      secret: newSecret(),
      token: TOKEN,
      env: {
        CONTINUOUS_MODE: 'true',
        DATABASE_URL: databaseUrl,
        AI_BASE_URL: server.baseUrl,
        AI_CONCURRENCY: String(CONCURRENCY),
        AI_TIMEOUT: String(AI_TIMEOUT_MS),
        AI_RETRY_BASE_MS: '50',
        AI_MAX_REQUESTS_PER_HOUR: '100000',
        FREELANCE_ENABLED: 'false',
        // Trading is not under test here; off, it leaves the loaded machine's CPU to the peers' AI work.
        BOT_ENABLED: 'false',
        WORKER_RESPAWN_BASE_MS: '100',
        WORKER_RESPAWN_MAX_MS: '500',
      },
    });
    phase('peers up');
    const [first, second, victim] = members as [Member, Member, Member];
    // /health answers while a peer still loads; /ready once its queue and routes are up.
    await vi.waitFor(
      async () => {
        for (const m of members) expect((await m.bot.get('/ready')).status, `${m.peerId} ready`).toBe(200);
      },
      { timeout: 60_000, interval: 100 },
    );
    phase('ready');
    const startedAt = performance.now();

    const ids = await submitAll(first.bot);
    expect(new Set(ids).size).toBe(TASKS);
    phase('submitted');

    // Every peer takes part: each has completed some tasks, and the victim holds leases right now.
    await vi.waitFor(
      async () => {
        const all = await rows(db);
        const done = countBy(
          all.filter((r) => r.state === 'completed'),
          (r) => r.lease_owner,
        );
        for (const peer of PEERS)
          expect(done.get(peer) ?? 0, `tasks completed by ${peer}`).toBeGreaterThan(5);
        expect(all.some((r) => r.state === 'running' && r.lease_owner === victim.peerId)).toBe(true);
      },
      { timeout: 60_000, interval: 20 },
    );

    // The whole peer, supervisor and worker, by PID; it is never restarted.
    await victim.bot.kill();
    const killedAt = performance.now();
    phase('killed');
    // Nothing can change these rows before their leases run out: they are what the victim held.
    const held = (await rows(db)).filter((r) => r.state === 'running' && r.lease_owner === victim.peerId);
    const remaining = (await rows(db)).filter((r) => r.state !== 'completed').length;
    expect(held.length).toBeGreaterThan(0);
    expect(held.length).toBeLessThanOrEqual(CONCURRENCY);
    expect(remaining, 'the kill came before the end of the run').toBeGreaterThan(50);

    // The survivors take the victim's leases over once they run out, and finish everything.
    const heldIds = new Set(held.map((r) => r.id));
    let takenOverAt = 0;
    let leftAtTakeover = 0;
    await vi.waitFor(
      async () => {
        const all = await rows(db);
        const taken = all.filter((r) => heldIds.has(r.id) && r.state === 'completed');
        if (takenOverAt === 0 && taken.length === heldIds.size) {
          takenOverAt = performance.now();
          leftAtTakeover = all.filter((r) => r.state !== 'completed').length;
        }
        expect(all.filter((r) => r.state === 'completed')).toHaveLength(TASKS);
      },
      { timeout: 90_000, interval: 250 },
    );

    phase('all completed');
    const doneAt = performance.now();
    const all = await rows(db);
    // One row per key, each completed once with the answer to its own prompt.
    expect(all).toHaveLength(TASKS);
    expect(new Set(all.map((r) => r.idempotency_key)).size).toBe(TASKS);
    for (const r of all) {
      expect(r.state).toBe('completed');
      expect(r.answer).toBe(`answer to: ${r.prompt}`);
      expect(`key-${r.prompt.slice('task '.length)}`).toBe(r.idempotency_key);
    }
    // The victim's tasks were finished by a survivor, on a later lease (the fencing token moved on).
    // Only a completion the victim sent just before it died may still have committed, on its lease.
    let takenOver = 0;
    for (const r of all.filter((x) => heldIds.has(x.id))) {
      const before = held.find((h) => h.id === r.id) as Row;
      if (r.lease_owner === victim.peerId) {
        expect(r.lease_token).toBe(before.lease_token);
        continue;
      }
      expect([first.peerId, second.peerId]).toContain(r.lease_owner);
      expect(r.lease_token).toBeGreaterThan(before.lease_token);
      takenOver++;
    }
    expect(takenOver).toBeGreaterThan(0);
    const leaseMs = leaseMsFor(AI_TIMEOUT_MS);
    expect(takenOverAt - killedAt, 'takeover within a few lease lengths').toBeLessThan(leaseMs * 4);

    // At least once: every prompt reached the provider; repeats only for what the victim held.
    const calls = countBy(server.calls, (c: ChatCall) => c.messages.at(-1)?.content ?? null);
    for (let i = 0; i < TASKS; i++)
      expect(calls.get(`task ${i}`) ?? 0, `calls for task ${i}`).toBeGreaterThan(0);
    expect(server.calls.length).toBeGreaterThanOrEqual(TASKS);
    const repeats = server.calls.length - TASKS;
    expect(repeats).toBeLessThanOrEqual(held.length);

    // Any live peer answers for any task of the fleet, whichever peer accepted or ran it.
    await expectAllCompletedAt(first.bot, ids);
    await expectAllCompletedAt(second.bot, ids);
    // Their /status counts the fleet's tasks, not only their own (refreshed every 2 s).
    await vi.waitFor(
      async () => {
        for (const m of [first, second]) {
          const res = await http(`${m.bot.url}/status`, { token: TOKEN });
          expect(res.status, res.body).toBe(200);
          expect(res.json().ai.tasks, `${m.peerId} /status`).toMatchObject({ completed: TASKS, running: 0 });
        }
      },
      { timeout: 30_000, interval: 250 },
    );
    phase('answered by both survivors');

    const byPeer = [...countBy(all, (r) => r.lease_owner)].map(([p, n]) => `${p}: ${n}`).join(', ');
    const ms = (x: number) => `${Math.round(x)} ms`;
    console.log(
      `[ai-tasks-postgres] ${TASKS} tasks run in ${ms(doneAt - startedAt)}; completed by ${byPeer}; ` +
        `${victim.peerId} killed holding ${held.length} leases (${takenOver} taken over) with ${remaining} tasks left; ` +
        `taken over ${ms(takenOverAt - killedAt)} later (lease ${leaseMs} ms) with ${leftAtTakeover} left; ` +
        `${server.calls.length} provider calls (${repeats} repeated); phases: ${phases.join(', ')}`,
    );
  });
});
