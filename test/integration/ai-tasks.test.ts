/**
 * Durability of AI tasks with real processes on SQLite: 500 tasks submitted over HTTP while the
 * worker process is SIGKILLed several times (the continuous-mode supervisor respawns it). Every
 * accepted task must end `completed`, none lost, exactly one task (and one completion) per key.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import { type BotProcess, http, startBot } from '../helpers/process.js';

const TOKEN = randomBytes(24).toString('base64url');
const TASKS = 500;

async function submit(bot: BotProcess, i: number): Promise<void> {
  // While the worker is down the connection is refused; the same key makes a resend safe.
  await vi.waitFor(
    async () => {
      const res = await bot.post('/ai/tasks', { prompt: `task ${i}`, idempotencyKey: `key-${i}` }, TOKEN);
      expect(res.status).toBe(202);
    },
    { timeout: 30_000, interval: 50 },
  );
}

async function tasks(bot: BotProcess): Promise<{ id: string; status: string; idempotencyKey: string }[]> {
  // With the token: the listing then shows each task's idempotency key.
  const res = await http(`${bot.url}/ai/tasks?limit=500`, { token: TOKEN }).catch(() => undefined);
  if (res?.status !== 200) return [];
  return res.json().tasks;
}

async function killWorker(bot: BotProcess): Promise<number> {
  const worker = await bot.waitForWorker();
  process.kill(worker, 'SIGKILL');
  await bot.waitForWorker({ not: worker, timeoutMs: 30_000 });
  return worker;
}

describe('AI tasks survive SIGKILL of the worker (SQLite, real processes)', () => {
  it(`submits ${TASKS} tasks, kills the worker 4 times during the run; every task completes once`, {
    timeout: 180_000,
  }, async () => {
    const server = await startFakeOpenAi(() => ({ kind: 'ok', delayMs: 5 }));
    const bot = await startBot({
      env: {
        CONTINUOUS_MODE: 'true',
        API_TOKEN: TOKEN,
        AI_BASE_URL: server.baseUrl,
        AI_CONCURRENCY: '8',
        AI_TIMEOUT: '2000',
        AI_RETRY_BASE_MS: '50',
        AI_MAX_REQUESTS_PER_HOUR: '100000',
        FREELANCE_ENABLED: 'false',
        WORKER_RESPAWN_BASE_MS: '100',
        WORKER_RESPAWN_MAX_MS: '500',
      },
    });
    const kills: number[] = [];
    for (let i = 0; i < TASKS; i++) {
      await submit(bot, i);
      // Tasks run as fast as they arrive, so the kills come during the submission: each one cuts
      // calls in flight and leaves leases for the next worker to take over.
      if (i > 0 && i % 100 === 0) kills.push(await killWorker(bot));
    }
    await vi.waitFor(
      async () => expect((await tasks(bot)).filter((t) => t.status === 'completed')).toHaveLength(TASKS),
      { timeout: 90_000, interval: 250 },
    );
    const all = await tasks(bot);
    expect(all).toHaveLength(TASKS);
    expect(new Set(all.map((t) => t.idempotencyKey)).size).toBe(TASKS);
    expect(new Set(all.map((t) => t.id)).size).toBe(TASKS);
    expect(kills).toHaveLength(4);
    // At least once: a call cut by a kill may be made again, never skipped.
    const prompts = new Set(server.calls.map((c) => c.messages.at(-1)?.content));
    expect(prompts.size).toBe(TASKS);
    console.log(
      `[ai-tasks] ${TASKS} tasks, ${kills.length} worker SIGKILLs, ${server.calls.length} provider calls (${server.calls.length - TASKS} repeated after kills)`,
    );
  });
});
