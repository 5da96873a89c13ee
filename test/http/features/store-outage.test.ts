/**
 * A peer whose PostgreSQL (DATABASE_URL) is down when it starts: it serves /health, says what is
 * wrong in /ready and /status, refuses what it cannot commit with 503 (nothing half-accepted), and
 * resumes by itself once the server is up.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildTestApp, type TestApp } from '../../helpers/app.js';
import { startFakeOpenAi } from '../../helpers/fake-openai.js';
import { postgresUnavailable, startRestartablePostgres } from '../../helpers/postgres.js';

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL outage tests: ${unavailable}`);

async function ready(t: TestApp) {
  const res = await t.app.inject({ url: '/ready' });
  return { status: res.statusCode, body: res.json() as { ready: boolean; reasons: string[] } };
}

describe.skipIf(unavailable !== null)('PostgreSQL unreachable at start', () => {
  it('serves /health, answers /ready and POSTs 503 naming the database, then resumes by itself', {
    timeout: 90_000,
  }, async () => {
    const server = await startRestartablePostgres({ fsync: false });
    onTestFinished(() => server.stop());
    const url = await server.createDatabase('outage_at_start');
    await server.halt('fast');
    const openai = await startFakeOpenAi(() => ({ kind: 'ok', text: 'drafted' }));
    const t = await buildTestApp({
      env: {
        DATABASE_URL: url,
        AI_BASE_URL: openai.baseUrl,
        AI_RETRY_BASE_MS: '50',
        FREELANCE_KEYWORDS: 'typescript',
      },
    });

    expect((await t.app.inject({ url: '/health' })).statusCode).toBe(200);
    const notReady = await ready(t);
    expect(notReady.status).toBe(503);
    expect(notReady.body.reasons.join('\n')).toMatch(/database unreachable.*PostgreSQL.*reconnecting/);
    const status = (await t.app.inject({ url: '/status' })).json();
    expect(status.store).toMatchObject({ kind: 'postgres', state: 'reconnecting' });
    expect(status.store.lastError).toBeTruthy();
    expect(status.queues).toBeNull();
    await vi.waitFor(async () =>
      expect((await t.app.inject({ url: '/status' })).json().ai.paused).toMatchObject({ kind: 'store' }),
    );

    const refused = await t.authed({
      method: 'POST',
      url: '/ai/tasks',
      payload: { prompt: 'x', idempotencyKey: 'k1' },
    });
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.code).toBe('QB_ERR_STORE_UNAVAILABLE');
    const job = { title: 'TypeScript API', description: 'node work', url: 'https://jobs.example/1' };
    const refusedJob = await t.authed({ method: 'POST', url: '/freelance/jobs', payload: job });
    expect(refusedJob.statusCode).toBe(503);
    expect(refusedJob.json().error.code).toBe('QB_ERR_STORE_UNAVAILABLE');
    // With DATABASE_URL the jobs live in PostgreSQL too: reading them waits for it as well.
    expect((await t.authed({ url: '/freelance/jobs' })).statusCode).toBe(503);
    // The mesh, trading and health parts keep running: the process serves on.
    expect((await t.app.inject({ url: '/health' })).statusCode).toBe(200);

    await server.resume();
    await vi.waitFor(async () => expect((await ready(t)).status).toBe(200), {
      timeout: 30_000,
      interval: 100,
    });
    expect((await t.app.inject({ url: '/status' })).json().store).toMatchObject({ state: 'connected' });

    const accepted = await t.authed({
      method: 'POST',
      url: '/ai/tasks',
      payload: { prompt: 'x', idempotencyKey: 'k1' },
    });
    expect(accepted.statusCode).toBe(202);
    const { id } = accepted.json();
    await vi.waitFor(
      async () =>
        expect((await t.authed({ url: `/ai/tasks/${id}` })).json()).toMatchObject({
          status: 'completed',
          attempts: 1,
        }),
      { timeout: 10_000 },
    );
    const retriedJob = await t.authed({ method: 'POST', url: '/freelance/jobs', payload: job });
    expect(retriedJob.statusCode).toBe(202);
    await vi.waitFor(
      async () =>
        expect((await t.authed({ url: `/freelance/jobs/${retriedJob.json().id}` })).json().status).toBe(
          'awaiting-approval',
        ),
      { timeout: 10_000 },
    );
    // Nothing half-accepted: exactly one task from the refused-then-accepted key, plus the job's
    // proposal, and the one job of the accepted retry.
    const tasks = (await t.authed({ url: '/ai/tasks' })).json().tasks as { id: string }[];
    expect(tasks).toHaveLength(2);
    expect((await t.authed({ url: '/freelance/jobs' })).json().jobs).toHaveLength(1);
  });
});
