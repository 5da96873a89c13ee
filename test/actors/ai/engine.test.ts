import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { AiEngine } from '../../../src/actors/ai/engine.js';
import { AI_MIGRATIONS } from '../../../src/actors/ai/migrations.js';
import type { Provider } from '../../../src/actors/ai/provider.js';
import { AI_QUEUE, type TaskPayload } from '../../../src/actors/ai/tasks.js';
import { UsageLedger } from '../../../src/actors/ai/usage.js';
import { testConfig } from '../../../src/config.js';
import { openSqliteQueue } from '../../../src/queue/sqlite.js';
import { openDb } from '../../../src/store/db.js';
import { applyNamedMigrations } from '../../../src/store/migrations.js';
import { silentLogger } from '../../helpers/logger.js';

/** A fake clock at 10:59:59, or the real one (the breaker's own timing runs on Date.now). */
function setup(env: Record<string, string>, provider: Provider, realClock = false) {
  const clock = { now: Date.parse('2026-05-01T10:59:59.000Z') };
  const now = realClock ? () => Date.now() : () => clock.now;
  const db = openDb(':memory:');
  applyNamedMigrations(db, AI_MIGRATIONS);
  const queue = openSqliteQueue(':memory:');
  const config = testConfig('/tmp/unused-qb-engine', { AI_BASE_URL: 'http://127.0.0.1:1/v1', ...env }).ai;
  const usage = new UsageLedger(db, now);
  const engine = new AiEngine({
    queue,
    usage,
    config,
    provider,
    defaultSystem: () => 'sys',
    owner: 'peer-1',
    logger: silentLogger(),
    now,
  });
  onTestFinished(async () => {
    engine.stop();
    await queue.close();
    db.close();
  });
  return { clock, queue, usage, engine };
}

const answer: Provider = async (req) => ({
  text: `ok ${req.prompt}`,
  usage: { promptTokens: 5, completionTokens: 5, totalTokens: 10 },
});

async function completed(queue: ReturnType<typeof openSqliteQueue>): Promise<number> {
  return (await queue.depths())[AI_QUEUE]?.completed ?? 0;
}

describe('AiEngine spending guard', () => {
  it('pauses at the hourly request cap and resumes on its own in the next clock hour', async () => {
    const { clock, queue, engine, usage } = setup({ AI_MAX_REQUESTS_PER_HOUR: '2' }, answer);
    for (let i = 0; i < 3; i++)
      await queue.enqueue<TaskPayload>(AI_QUEUE, { prompt: `p${i}`, origin: 'api' });
    engine.start();
    await vi.waitFor(async () => expect(await completed(queue)).toBe(2));
    await vi.waitFor(() => expect(engine.paused?.kind).toBe('spend-cap'));
    expect(engine.paused?.until).toBe('2026-05-01T11:00:00.000Z');
    expect(usage.current()).toEqual({ requests: 2, tokens: 20 });

    clock.now = Date.parse('2026-05-01T11:00:00.500Z');
    // No wake() from the test: the engine's own timer notices the new window.
    await vi.waitFor(async () => expect(await completed(queue)).toBe(3), { timeout: 5_000 });
    expect(engine.paused).toBeNull();
    expect(usage.current()).toEqual({ requests: 1, tokens: 10 });
    expect(usage.history(2).map((h) => h.requests)).toEqual([2, 1]);
  });

  it('pauses at the token cap', async () => {
    const { queue, engine } = setup({ AI_MAX_TOKENS_PER_HOUR: '15' }, answer);
    for (let i = 0; i < 3; i++)
      await queue.enqueue<TaskPayload>(AI_QUEUE, { prompt: `p${i}`, origin: 'api' });
    engine.start();
    await vi.waitFor(() => expect(engine.paused?.kind).toBe('spend-cap'));
    expect(engine.paused?.reason).toContain('AI_MAX_TOKENS_PER_HOUR');
    // The two calls started together (AI_CONCURRENCY 2) may pass the cap; no third one starts.
    await vi.waitFor(async () => expect(await completed(queue)).toBe(2));
    expect((await queue.depths())[AI_QUEUE]?.queued).toBe(1);
  });

  it('never runs more calls at once than AI_CONCURRENCY', async () => {
    let live = 0;
    let peak = 0;
    const slow: Provider = async (req) => {
      live++;
      peak = Math.max(peak, live);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 5));
      live--;
      return { text: req.prompt, usage: null as never };
    };
    const { queue, engine } = setup({ AI_CONCURRENCY: '3' }, slow);
    for (let i = 0; i < 20; i++)
      await queue.enqueue<TaskPayload>(AI_QUEUE, { prompt: `p${i}`, origin: 'api' });
    engine.start();
    await vi.waitFor(async () => expect(await completed(queue)).toBe(20), { timeout: 10_000 });
    expect(peak).toBe(3);
  });
});

describe('AiEngine circuit breaker', () => {
  it('spends no attempt without a provider call: past an open breaker only the probe is claimed', async () => {
    let calls = 0;
    const failing: Provider = async () => {
      calls++;
      throw new Error('connection reset');
    };
    const { queue, engine } = setup(
      {
        AI_CONCURRENCY: '4',
        AI_BREAKER_FAILURES: '1',
        AI_BREAKER_HALF_OPEN_MS: '100',
        AI_RETRY_BASE_MS: '1',
        AI_MAX_ATTEMPTS: '100',
      },
      failing,
      true,
    );
    for (let i = 0; i < 4; i++)
      await queue.enqueue<TaskPayload>(AI_QUEUE, { prompt: `p${i}`, origin: 'api' });
    engine.start();
    // Several open -> probe -> open rounds.
    await vi.waitFor(() => expect(calls).toBeGreaterThanOrEqual(8), { timeout: 10_000 });
    engine.stop();
    await vi.waitFor(() => expect(engine.inFlightCount).toBe(0));
    const page = await queue.list<TaskPayload>({ queue: AI_QUEUE });
    const attempts = page.items.reduce((n, t) => n + t.attempts, 0);
    expect(attempts).toBe(calls);
  });
});
