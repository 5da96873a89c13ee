import { describe, expect, it, vi } from 'vitest';
import { buildTestApp, type TestApp } from '../../helpers/app.js';
import { startFakeOpenAi } from '../../helpers/fake-openai.js';
import { atomDoc, jsonFeedDoc, rssDoc, startFeedServer } from '../../helpers/feed-server.js';
import { startWebhookReceiver, TEST_WEBHOOK_SECRET } from '../../helpers/webhook-receiver.js';

async function setup(env: Record<string, string> = {}, failFirst = 0) {
  const ai = await startFakeOpenAi(() => ({ kind: 'ok', text: 'PROPOSAL: I will build it in TypeScript.' }));
  const receiver = await startWebhookReceiver(TEST_WEBHOOK_SECRET, failFirst);
  const t = await buildTestApp({
    env: {
      AI_BASE_URL: ai.baseUrl,
      AI_RETRY_BASE_MS: '50',
      FREELANCE_KEYWORDS: 'typescript,node.js',
      FREELANCE_EXCLUDE: 'wordpress',
      FREELANCE_MIN_BUDGET: '100',
      FREELANCE_WEBHOOK_URL: receiver.url,
      FREELANCE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      ...env,
    },
  });
  return { t, ai, receiver };
}

async function post(t: TestApp, body: Record<string, unknown>) {
  const res = await t.authed({ method: 'POST', url: '/freelance/jobs', payload: body });
  expect(res.statusCode, res.body).toBe(202);
  return res.json() as { id: string; status: string; reason?: string };
}

const job = async (t: TestApp, id: string) => (await t.authed({ url: `/freelance/jobs/${id}` })).json();

describe('freelance jobs end to end', () => {
  it('a matched job gets an AI proposal, waits for approval, and is delivered signed after refusals', async () => {
    const { t, receiver, ai } = await setup({}, 2);
    const { id, status } = await post(t, {
      title: 'TypeScript API',
      description: 'REST',
      budget: 500,
      currency: 'usd',
      url: 'https://jobs.test/1',
    });
    expect(status).toBe('drafting');
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('awaiting-approval'), {
      timeout: 5_000,
    });
    expect((await job(t, id)).proposal).toContain('PROPOSAL');
    expect(ai.calls[0]?.messages[1]?.content).toContain('TypeScript API');
    // Nothing leaves without a decision.
    expect(receiver.attempts).toHaveLength(0);

    expect((await t.app.inject({ method: 'POST', url: `/freelance/jobs/${id}/approve` })).statusCode).toBe(
      401,
    );
    const ok = await t.authed({ method: 'POST', url: `/freelance/jobs/${id}/approve` });
    expect(ok.statusCode).toBe(200);
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('delivered'), { timeout: 10_000 });
    // Two refusals, then acknowledged; every attempt signed and carrying the same webhook id.
    expect(receiver.attempts.map((a) => a.status)).toEqual([500, 500, 204]);
    expect(receiver.attempts.every((a) => a.verified)).toBe(true);
    expect(new Set(receiver.attempts.map((a) => a.id)).size).toBe(1);
    const delivered = receiver.accepted.get((await job(t, id)).deliveryId);
    expect(delivered?.body).toMatchObject({
      type: 'freelance.job.approved',
      data: {
        approvedBy: 'operator',
        job: { id, title: 'TypeScript API', budget: 500, currency: 'USD' },
        proposal: expect.stringContaining('PROPOSAL'),
      },
    });
    // A second approval is harmless and delivers nothing more.
    expect((await t.authed({ method: 'POST', url: `/freelance/jobs/${id}/approve` })).statusCode).toBe(409);
  });

  it('keeps unmatched jobs as skipped with the reason, and a repeat URL is the same job', async () => {
    const { t, ai } = await setup();
    const low = await post(t, { title: 'TypeScript fix', budget: 20 });
    expect(low).toMatchObject({ status: 'skipped', reason: 'budget 20 is below the minimum 100' });
    const wp = await post(t, { title: 'TypeScript WordPress theme', budget: 900 });
    expect(wp.reason).toContain('wordpress');
    const a = await post(t, { title: 'Node.js bot', budget: 300, url: 'https://jobs.test/same' });
    const b = await post(t, { title: 'Node.js bot', budget: 300, url: 'https://jobs.test/same' });
    expect(b.id).toBe(a.id);
    await vi.waitFor(async () => expect((await job(t, a.id)).status).toBe('awaiting-approval'));
    expect(ai.calls).toHaveLength(1);
  });

  it('reject decides; deciding again is 409; bad bodies are 400 naming the field; a huge job is 413', async () => {
    const { t } = await setup();
    const { id } = await post(t, { title: 'TypeScript CLI', budget: 300 });
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('awaiting-approval'));
    const rej = await t.authed({
      method: 'POST',
      url: `/freelance/jobs/${id}/reject`,
      payload: { reason: 'too vague' },
    });
    expect(rej.json()).toMatchObject({ status: 'rejected', reason: 'rejected: too vague' });
    const again = await t.authed({ method: 'POST', url: `/freelance/jobs/${id}/approve` });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('QB_ERR_JOB_STATE');
    const bad = await t.authed({
      method: 'POST',
      url: '/freelance/jobs',
      payload: { title: 'x', budget: 'lots' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('budget');
    const huge = await t.authed({
      method: 'POST',
      url: '/freelance/jobs',
      payload: { title: 'x', description: 'd'.repeat(40_000) },
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.message).toContain('32768 bytes');
    const anon = (await t.app.inject({ url: `/freelance/jobs/${id}` })).json();
    expect(anon.title).toBeUndefined();
  });

  it('auto-execute skips approval, but the hourly execution cap still holds', async () => {
    const { t, receiver } = await setup({
      FREELANCE_AUTO_EXECUTE: 'true',
      FREELANCE_MAX_EXECUTIONS_PER_HOUR: '1',
    });
    const a = await post(t, { title: 'TypeScript one', budget: 300 });
    const b = await post(t, { title: 'TypeScript two', budget: 300 });
    await vi.waitFor(
      async () => {
        const states = [(await job(t, a.id)).status, (await job(t, b.id)).status].sort();
        expect(states).toEqual(['approved', 'delivered']);
      },
      { timeout: 8_000 },
    );
    const fl = (await t.app.inject({ url: '/status' })).json().freelance;
    await vi.waitFor(async () =>
      expect((await t.app.inject({ url: '/status' })).json().freelance.delivery.paused).toContain(
        'FREELANCE_MAX_EXECUTIONS_PER_HOUR',
      ),
    );
    expect(fl.delivery.executionsThisHour).toBe(1);
    expect(receiver.accepted.size).toBe(1);
    expect([...receiver.accepted.values()][0]?.body).toMatchObject({ data: { approvedBy: 'auto' } });
  });

  it('a delivery refused past FREELANCE_WEBHOOK_MAX_ATTEMPTS is dead, with the reason', async () => {
    const { t, receiver } = await setup({ FREELANCE_WEBHOOK_MAX_ATTEMPTS: '2' }, 1_000);
    const { id } = await post(t, { title: 'TypeScript dead', budget: 300 });
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('awaiting-approval'));
    await t.authed({ method: 'POST', url: `/freelance/jobs/${id}/approve` });
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('dead'), { timeout: 10_000 });
    expect((await job(t, id)).reason).toContain('receiver answered 500');
    expect(receiver.attempts).toHaveLength(2);
  });

  it('the kill switch holds deliveries and drafting; deactivation resumes them', async () => {
    const { t, receiver, ai } = await setup();
    const { id } = await post(t, { title: 'TypeScript halt', budget: 300 });
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('awaiting-approval'));
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: true, reason: 'stop' } });
    await vi.waitFor(() => expect(t.subsystem('freelance').state).toBe('halted'));
    await t.authed({ method: 'POST', url: `/freelance/jobs/${id}/approve` });
    const other = await post(t, { title: 'TypeScript later', budget: 300 });
    expect((await job(t, id)).status).toBe('approved');
    expect((await job(t, other.id)).status).toBe('drafting');
    expect(receiver.attempts).toHaveLength(0);
    expect(ai.calls).toHaveLength(1);
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: false, reason: 'go' } });
    await vi.waitFor(async () => expect((await job(t, id)).status).toBe('delivered'), { timeout: 8_000 });
    await vi.waitFor(async () => expect((await job(t, other.id)).status).toBe('awaiting-approval'), {
      timeout: 8_000,
    });
  });

  it('polls RSS, Atom and JSON feeds with conditional requests; broken feeds fail alone, with their reasons', async () => {
    const feeds = await startFeedServer();
    feeds.route('/rss', {
      kind: 'doc',
      contentType: 'application/rss+xml',
      etag: '"r1"',
      body: rssDoc([
        { guid: 'r-1', title: 'TypeScript from RSS' },
        { guid: 'r-2', title: 'Logo design' },
      ]),
    });
    feeds.route('/atom', {
      kind: 'doc',
      contentType: 'application/atom+xml',
      etag: '"a1"',
      body: atomDoc([{ id: 'a-1', title: 'Node.js from Atom', href: 'https://x.test/a1' }]),
    });
    feeds.route('/json', {
      kind: 'doc',
      contentType: 'application/feed+json',
      body: jsonFeedDoc([{ id: 'j-1', title: 'TypeScript from JSON', budget: 50, currency: 'EUR' }]),
    });
    feeds.route('/broken', { kind: 'invalid-xml' });
    feeds.route('/huge', { kind: 'huge', bytes: 3 * 1024 * 1024 });
    feeds.route('/loop', { kind: 'redirect-loop' });
    feeds.route('/hang', { kind: 'hang' });
    const urls = ['/rss', '/atom', '/json', '/broken', '/huge', '/loop', '/hang'].map((p) => feeds.url(p));
    const { t } = await setup({
      FREELANCE_FEEDS: urls.join(','),
      FREELANCE_POLL_INTERVAL: '200',
      // Long enough for 20 redirect hops on a loaded machine, short enough for the hang.
      FREELANCE_FEED_TIMEOUT: '2000',
    });
    await vi.waitFor(() => expect(feeds.hits.get('/rss')?.notModified ?? 0).toBeGreaterThanOrEqual(2), {
      timeout: 8_000,
    });
    const jobs = (await t.authed({ url: '/freelance/jobs' })).json().jobs as {
      title: string;
      status: string;
      reason: string | null;
    }[];
    // Polled several times, yet one job per item.
    expect(jobs.map((j) => j.title).sort()).toEqual([
      'Logo design',
      'Node.js from Atom',
      'TypeScript from JSON',
      'TypeScript from RSS',
    ]);
    expect(jobs.find((j) => j.title === 'TypeScript from JSON')).toMatchObject({
      status: 'skipped',
      reason: 'budget 50 is below the minimum 100',
    });
    const fl = (await t.app.inject({ url: '/status' })).json().freelance;
    const feed = (path: string) => fl.feeds.find((f: { url: string }) => f.url.endsWith(path));
    await vi.waitFor(
      async () => {
        const now = (await t.app.inject({ url: '/status' })).json().freelance;
        expect(now.feeds.filter((f: { state: string }) => f.state === 'failing')).toHaveLength(4);
      },
      { timeout: 8_000 },
    );
    const fl2 = (await t.app.inject({ url: '/status' })).json().freelance;
    const reason = (path: string) => fl2.feeds.find((f: { url: string }) => f.url.endsWith(path)).lastError;
    expect(reason('/broken')).toContain('invalid XML');
    expect(reason('/huge')).toContain('byte limit');
    expect(reason('/loop')).toMatch(/redirect/i);
    expect(reason('/hang')).toContain('timed out after 2000 ms');
    expect(feed('/rss')).toMatchObject({ state: 'ok' });
    expect(fl2.feeds.filter((f: { state: string }) => f.state === 'ok')).toHaveLength(3);
    // Backoff: the broken feed is asked less often than the healthy ones.
    expect(feeds.hits.get('/broken')?.total).toBeLessThan(feeds.hits.get('/rss')?.total ?? 0);
  });
});
