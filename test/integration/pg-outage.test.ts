/**
 * PostgreSQL lost mid-run, with a real peer process: the server is killed (pg_ctl stop -m
 * immediate) while AI tasks are in flight and more are being submitted, then started again. The
 * peer never exits (same worker process throughout), refuses what it cannot commit with 503,
 * resumes by itself, and every task ends completed exactly once per idempotency key. The outage is
 * logged once, not once per poll.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import { postgresUnavailable, startRestartablePostgres } from '../helpers/postgres.js';
import { type BotProcess, http, startBot } from '../helpers/process.js';

const TOKEN = randomBytes(24).toString('base64url');
const TASKS = 120;

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL outage test: ${unavailable}`);

interface TaskView {
  id: string;
  status: string;
  idempotencyKey: string;
}

async function tasks(bot: BotProcess): Promise<TaskView[]> {
  const res = await http(`${bot.url}/ai/tasks?limit=500`, { token: TOKEN }).catch(() => undefined);
  if (res?.status !== 200) return [];
  return res.json().tasks;
}

describe.skipIf(unavailable !== null)('PostgreSQL lost mid-run (real process)', () => {
  it('keeps serving, refuses with 503 while down, resumes, and completes every task once', {
    timeout: 180_000,
  }, async () => {
    const server = await startRestartablePostgres({ fsync: false });
    onTestFinished(() => server.stop());
    const url = await server.createDatabase('outage_mid_run');
    const openai = await startFakeOpenAi(() => ({ kind: 'ok', delayMs: 400 }));
    const bot = await startBot({
      env: {
        CONTINUOUS_MODE: 'true',
        API_TOKEN: TOKEN,
        DATABASE_URL: url,
        AI_BASE_URL: openai.baseUrl,
        AI_CONCURRENCY: '8',
        AI_TIMEOUT: '3000',
        AI_RETRY_BASE_MS: '50',
        AI_MAX_REQUESTS_PER_HOUR: '100000',
        FREELANCE_ENABLED: 'false',
      },
    });
    const worker = await bot.waitForWorker();

    let refused = 0;
    const submit = (i: number) =>
      vi.waitFor(
        async () => {
          const res = await bot.post('/ai/tasks', { prompt: `task ${i}`, idempotencyKey: `key-${i}` }, TOKEN);
          if (res.status === 503) {
            expect(res.json().error.code).toBe('QB_ERR_STORE_UNAVAILABLE');
            refused++;
          }
          expect(res.status).toBe(202);
        },
        { timeout: 60_000, interval: 100 },
      );

    for (let i = 0; i < TASKS / 2; i++) await submit(i);
    // Calls are in flight (400 ms each, 8 at a time) and more wait: kill the server under them.
    await vi.waitFor(() => expect(openai.calls.length).toBeGreaterThan(8));
    expect(openai.calls.length).toBeLessThan(TASKS / 2);
    expect((await bot.get('/status')).json().ai.inFlight).toBeGreaterThan(0);
    await server.halt('immediate');
    await vi.waitFor(
      async () => {
        const res = await bot.get('/ready');
        expect(res.status).toBe(503);
        expect(JSON.stringify(res.json().reasons)).toContain('database unreachable');
      },
      { timeout: 15_000 },
    );
    expect((await bot.get('/health')).status).toBe(200);
    expect((await bot.get('/status')).json().store).toMatchObject({
      kind: 'postgres',
      state: 'reconnecting',
    });
    const down = await bot.post('/ai/tasks', { prompt: 'while down', idempotencyKey: 'key-down' }, TOKEN);
    expect(down.status).toBe(503);
    expect(down.json().error.code).toBe('QB_ERR_STORE_UNAVAILABLE');

    // Submissions go on during the outage (refused, then retried with their key) and after it.
    const rest = (async () => {
      for (let i = TASKS / 2; i < TASKS; i++) await submit(i);
    })();
    // A few seconds of outage (20 refusals, 100 ms apart): long enough for the workers to pause.
    await vi.waitFor(() => expect(refused).toBeGreaterThanOrEqual(20), { timeout: 30_000 });
    expect((await bot.get('/status')).json().ai.paused).toMatchObject({ kind: 'store' });
    await server.resume();
    await rest;

    await vi.waitFor(
      async () => expect((await tasks(bot)).filter((t) => t.status === 'completed')).toHaveLength(TASKS),
      { timeout: 90_000, interval: 250 },
    );
    const all = await tasks(bot);
    expect(all).toHaveLength(TASKS);
    expect(new Set(all.map((t) => t.idempotencyKey)).size).toBe(TASKS);
    expect(all.map((t) => t.idempotencyKey)).not.toContain('key-down');
    // The peer never exited: the same worker served throughout.
    expect(bot.isRunning()).toBe(true);
    expect(bot.workersSeen()).toEqual([worker]);
    expect((await bot.get('/ready')).status).toBe(200);
    // One warning for the loss, one line for the recovery; no error per poll or per request.
    const lines = bot.stdout().split('\n');
    const count = (re: RegExp) => lines.filter((l) => re.test(l)).length;
    expect(count(/PostgreSQL connection lost/)).toBeGreaterThanOrEqual(1);
    expect(count(/PostgreSQL connection lost/)).toBeLessThanOrEqual(3);
    expect(count(/PostgreSQL reachable again/)).toBe(count(/PostgreSQL connection lost/));
    expect(count(/could not claim/)).toBe(0);
    expect(count(/"level":50/)).toBeLessThan(20);
    console.log(
      `[pg-outage] ${TASKS} tasks, ${refused} POSTs refused with 503 during the outage, ${openai.calls.length} provider calls (${openai.calls.length - TASKS} repeated), ${count(/"level":50/)} error lines`,
    );
  });
});
