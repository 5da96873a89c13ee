/**
 * Two peers on one PostgreSQL (DATABASE_URL): the AI request cap and the freelance execution cap
 * hold for the fleet, not per peer, and a freelance job accepted by one peer is seen, approved and
 * delivered through the other.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { testConfig } from '../../../src/config.js';
import { assemblePeer } from '../../../src/peer.js';
import { buildTestApp, TEST_TOKEN, type TestApp } from '../../helpers/app.js';
import { startFakeOpenAi } from '../../helpers/fake-openai.js';
import { silentLogger } from '../../helpers/logger.js';
import { postgresUnavailable, startPostgres } from '../../helpers/postgres.js';
import { tempDir } from '../../helpers/tmp.js';
import { startWebhookReceiver, TEST_WEBHOOK_SECRET } from '../../helpers/webhook-receiver.js';

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the shared PostgreSQL feature tests: ${unavailable}`);

let dbs = 0;

/** Two apps (each with its own DATA_DIR) sharing one fresh database. */
async function twoPeers(env: Record<string, string>): Promise<[TestApp, TestApp]> {
  const server = await startPostgres({ fsync: false });
  onTestFinished(() => server.stop());
  const url = await server.createDatabase(`fleet_shared_${++dbs}`);
  const a = await buildTestApp({ env: { DATABASE_URL: url, ...env } });
  const b = await buildTestApp({ env: { DATABASE_URL: url, ...env } });
  return [a, b];
}

const status = async (t: TestApp) => (await t.app.inject({ url: '/status' })).json();

describe.skipIf(unavailable !== null)('features on a shared PostgreSQL', () => {
  it('the AI request cap holds for the fleet: N calls per hour in all, not N per peer', {
    timeout: 60_000,
  }, async () => {
    const openai = await startFakeOpenAi(() => ({ kind: 'ok', delayMs: 20 }));
    const peers = await twoPeers({
      AI_BASE_URL: openai.baseUrl,
      AI_MAX_REQUESTS_PER_HOUR: '3',
      AI_RETRY_BASE_MS: '50',
      FREELANCE_ENABLED: 'false',
    });
    for (let i = 0; i < 8; i++) {
      const peer = peers[i % 2] as TestApp;
      const res = await peer.authed({ method: 'POST', url: '/ai/tasks', payload: { prompt: `p${i}` } });
      expect(res.statusCode).toBe(202);
    }
    for (const peer of peers) {
      await vi.waitFor(
        async () => expect((await status(peer)).ai.paused).toMatchObject({ kind: 'spend-cap' }),
        {
          timeout: 15_000,
        },
      );
    }
    const [a] = peers;
    const tasks = (await a.authed({ url: '/ai/tasks?limit=50' })).json().tasks as { status: string }[];
    expect(tasks.filter((t) => t.status === 'completed')).toHaveLength(3);
    expect(tasks.filter((t) => t.status === 'queued')).toHaveLength(5);
    expect(openai.calls).toHaveLength(3);
    for (const peer of peers) {
      await vi.waitFor(async () =>
        expect((await status(peer)).ai.spend).toMatchObject({ requests: 3, maxRequests: 3 }),
      );
    }
  });

  it('a job posted to peer A is approved via peer B; the execution cap holds for the fleet', {
    timeout: 60_000,
  }, async () => {
    const openai = await startFakeOpenAi(() => ({ kind: 'ok', text: 'PROPOSAL' }));
    const receiver = await startWebhookReceiver(TEST_WEBHOOK_SECRET, 0);
    const [a, b] = await twoPeers({
      AI_BASE_URL: openai.baseUrl,
      AI_RETRY_BASE_MS: '50',
      FREELANCE_KEYWORDS: 'typescript',
      FREELANCE_WEBHOOK_URL: receiver.url,
      FREELANCE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      FREELANCE_MAX_EXECUTIONS_PER_HOUR: '1',
    });
    const posted = await a.authed({
      method: 'POST',
      url: '/freelance/jobs',
      payload: { title: 'TypeScript API', budget: 300 },
    });
    expect(posted.statusCode).toBe(202);
    const { id } = posted.json();
    // Peer B sees the job A accepted, with the proposal drafted on either peer.
    await vi.waitFor(
      async () =>
        expect((await b.authed({ url: `/freelance/jobs/${id}` })).json().status).toBe('awaiting-approval'),
      { timeout: 15_000 },
    );
    const approved = await b.authed({ method: 'POST', url: `/freelance/jobs/${id}/approve` });
    expect(approved.statusCode, approved.body).toBe(200);
    await vi.waitFor(
      async () => expect((await a.authed({ url: `/freelance/jobs/${id}` })).json().status).toBe('delivered'),
      { timeout: 15_000 },
    );
    expect(receiver.accepted.size).toBe(1);

    // A second job, posted to B and approved via A: the fleet's one execution this hour is spent.
    const second = (
      await b.authed({
        method: 'POST',
        url: '/freelance/jobs',
        payload: { title: 'TypeScript CLI', budget: 300 },
      })
    ).json().id as string;
    await vi.waitFor(
      async () =>
        expect((await a.authed({ url: `/freelance/jobs/${second}` })).json().status).toBe(
          'awaiting-approval',
        ),
      { timeout: 15_000 },
    );
    expect((await a.authed({ method: 'POST', url: `/freelance/jobs/${second}/approve` })).statusCode).toBe(
      200,
    );
    for (const peer of [a, b]) {
      await vi.waitFor(
        async () =>
          expect((await status(peer)).freelance.delivery.paused ?? '').toContain(
            'FREELANCE_MAX_EXECUTIONS_PER_HOUR',
          ),
        { timeout: 15_000 },
      );
    }
    expect((await b.authed({ url: `/freelance/jobs/${second}` })).json().status).toBe('approved');
    expect(receiver.accepted.size).toBe(1);
    // /status shows the fleet's jobs (a snapshot renewed every 2 s).
    await vi.waitFor(
      async () => expect((await status(a)).freelance.jobs).toMatchObject({ delivered: 1, approved: 1 }),
      { timeout: 10_000 },
    );
  });
  it('a peer that kept its jobs in SQLite brings them into the shared database when it moves to DATABASE_URL', {
    timeout: 60_000,
  }, async () => {
    const dataDir = tempDir('qb-move-');
    const env = { API_TOKEN: TEST_TOKEN, FREELANCE_KEYWORDS: 'rust', AI_ENABLED: 'false' };
    const alone = await assemblePeer(testConfig(dataDir, env), silentLogger());
    const posted = await alone.app.inject({
      method: 'POST',
      url: '/freelance/jobs',
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
      payload: { title: 'TypeScript API', url: 'https://jobs.example/moved' },
    });
    expect(posted.json()).toMatchObject({ status: 'skipped' });
    await alone.app.close();
    await alone.close();

    const server = await startPostgres({ fsync: false });
    onTestFinished(() => server.stop());
    const url = await server.createDatabase('fleet_moved');
    const moved = await assemblePeer(testConfig(dataDir, { ...env, DATABASE_URL: url }), silentLogger());
    onTestFinished(async () => {
      await moved.app.close();
      await moved.close();
    });
    const other = await buildTestApp({ env: { DATABASE_URL: url } });
    await vi.waitFor(
      async () =>
        expect((await other.authed({ url: `/freelance/jobs/${posted.json().id}` })).json()).toMatchObject({
          status: 'skipped',
          url: 'https://jobs.example/moved',
        }),
      { timeout: 10_000 },
    );
  });
});
