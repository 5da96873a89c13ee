import { describe, expect, it, onTestFinished } from 'vitest';
import type { Queue } from '../../../src/queue/types.js';
import { buildTestApp } from '../../helpers/app.js';
import { postgresUnavailable, startPostgres } from '../../helpers/postgres.js';

const pgMissing = postgresUnavailable();
if (pgMissing) console.warn(`skipping the DATABASE_URL peer test: ${pgMissing}`);

async function setup() {
  // The AI and freelance features define and work their own queues; these tests own the queue.
  const t = await buildTestApp({ env: { AI_ENABLED: 'false', FREELANCE_ENABLED: 'false' } });
  const queue = t.deps.queue as Queue;
  expect(queue.backend).toBe('sqlite');
  return { ...t, queue };
}

describe('queue routes', () => {
  it('GET /queues shows depths by state and the paused flag without the token', async () => {
    const t = await setup();
    await t.queue.enqueue('mail', { to: 'a' });
    await t.queue.enqueue('mail', { to: 'b' });
    await t.queue.claim('mail', { owner: 'p' });
    await t.queue.pause('mail');
    const res = await t.app.inject({ method: 'GET', url: '/queues' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      backend: 'sqlite',
      queues: {
        mail: { queued: 1, running: 1, completed: 0, failed: 0, dead: 0, cancelled: 0, paused: true },
      },
    });
  });

  it('lists items by state with a cursor, and reads one, only with the token', async () => {
    const t = await setup();
    for (let i = 0; i < 5; i++) await t.queue.enqueue('jobs', { i });
    await t.queue.enqueue('other', { i: 99 });
    expect((await t.app.inject({ method: 'GET', url: '/queues/jobs/items' })).statusCode).toBe(401);
    const first = await t.authed({ method: 'GET', url: '/queues/jobs/items?state=queued&limit=3' });
    expect(first.statusCode).toBe(200);
    const page = first.json();
    expect(page.items.map((x: { payload: { i: number } }) => x.payload.i)).toEqual([4, 3, 2]);
    const second = await t.authed({
      method: 'GET',
      url: `/queues/jobs/items?state=queued&before=${page.nextCursor}`,
    });
    expect(second.json().items.map((x: { payload: { i: number } }) => x.payload.i)).toEqual([1, 0]);
    expect(second.json().nextCursor).toBeNull();
    const id = page.items[0].id;
    expect((await t.app.inject({ method: 'GET', url: `/queues/jobs/items/${id}` })).statusCode).toBe(401);
    expect((await t.authed({ method: 'GET', url: `/queues/jobs/items/${id}` })).json()).toMatchObject({
      id,
      queue: 'jobs',
      state: 'queued',
    });
    // An item is found only under its own queue.
    expect((await t.authed({ method: 'GET', url: `/queues/other/items/${id}` })).statusCode).toBe(404);
    const bad = await t.authed({ method: 'GET', url: '/queues/jobs/items?state=lost' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('QB_ERR_VALIDATION');
  });

  it('retries a dead item and cancels a queued one; mutations need the token and change nothing without it', async () => {
    const t = await setup();
    t.queue.define('jobs', { maxAttempts: 1 });
    const dead = await t.queue.enqueue('jobs', 'dead');
    const [claimed] = await t.queue.claim('jobs', { owner: 'p' });
    if (!claimed) throw new Error('nothing claimed');
    await t.queue.fail(claimed.claim, new Error('boom'));
    const waiting = await t.queue.enqueue('jobs', 'waiting');

    const url = `/queues/jobs/items/${dead.item.id}/retry`;
    expect((await t.app.inject({ method: 'POST', url })).statusCode).toBe(401);
    expect((await t.queue.get(dead.item.id))?.state).toBe('dead');
    const retried = await t.authed({ method: 'POST', url });
    expect(retried.statusCode).toBe(200);
    expect(retried.json()).toMatchObject({ state: 'queued', attempts: 0 });
    const again = await t.authed({ method: 'POST', url });
    expect(again.statusCode).toBe(409);
    expect(again.json().error.code).toBe('QB_ERR_QUEUE_ITEM_STATE');

    const cancel = `/queues/jobs/items/${waiting.item.id}/cancel`;
    expect((await t.app.inject({ method: 'POST', url: cancel })).statusCode).toBe(401);
    expect((await t.authed({ method: 'POST', url: cancel })).json().state).toBe('cancelled');
    expect((await t.authed({ method: 'POST', url: '/queues/jobs/items/424242/cancel' })).statusCode).toBe(
      404,
    );
  });

  it('pauses and resumes a queue with the token', async () => {
    const t = await setup();
    expect((await t.app.inject({ method: 'POST', url: '/queues/jobs/pause' })).statusCode).toBe(401);
    expect(await t.queue.isPaused('jobs')).toBe(false);
    expect((await t.authed({ method: 'POST', url: '/queues/jobs/pause' })).json()).toEqual({
      queue: 'jobs',
      paused: true,
    });
    expect(await t.queue.isPaused('jobs')).toBe(true);
    expect((await t.authed({ method: 'POST', url: '/queues/jobs/resume' })).json().paused).toBe(false);
  });

  it('reports depths in /status (queues) and /metrics (qb_queue_items)', async () => {
    const t = await setup();
    await t.queue.enqueue('ai', 1);
    const status = await t.app.inject({ method: 'GET', url: '/status' });
    expect(status.json().queues).toEqual({
      ai: { queued: 1, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0, paused: false },
    });
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/qb_queue_items\{[^}]*queue="ai",state="queued"[^}]*\} 1/);
    expect(metrics.body).toMatch(/qb_queue_items\{[^}]*queue="ai",state="dead"[^}]*\} 0/);
  });
});

describe.skipIf(pgMissing !== null)('a peer with DATABASE_URL', () => {
  it('keeps its queue in that PostgreSQL database', async () => {
    const server = await startPostgres({ fsync: false });
    onTestFinished(() => server.stop());
    const url = await server.createDatabase('peer_queue');
    const t = await buildTestApp({ env: { DATABASE_URL: url } });
    await t.deps.queue?.enqueue('ai', { prompt: 'x' });
    const res = await t.app.inject({ method: 'GET', url: '/queues' });
    expect(res.json()).toMatchObject({ backend: 'postgres', queues: { ai: { queued: 1 } } });
  });
});
