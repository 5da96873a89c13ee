import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { openSqliteQueue } from '../../src/queue/sqlite.js';
import type { QueueOptions, WorkerOptions } from '../../src/queue/types.js';
import { createWorker } from '../../src/queue/worker.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeClock } from './conformance.js';

function setup(options: QueueOptions = {}) {
  const q = openSqliteQueue(tempDir('qb-worker-'), options);
  onTestFinished(() => q.close());
  return q;
}

function worker<P, R>(options: WorkerOptions<P, R>) {
  const w = createWorker(options);
  onTestFinished(() => w.stop());
  w.start();
  return w;
}

describe('queue worker loop', () => {
  it('runs items up to its concurrency and completes them with the handler result', async () => {
    const q = setup();
    for (let i = 0; i < 12; i++) await q.enqueue('jobs', i);
    let now = 0;
    let peak = 0;
    const w = worker<number, number>({
      queue: q,
      name: 'jobs',
      owner: 'peer',
      concurrency: 3,
      pollMs: 20,
      handler: async (item) => {
        peak = Math.max(peak, ++now);
        await new Promise((r) => setTimeout(r, 5));
        now--;
        return item.payload * 2;
      },
    });
    await vi.waitFor(async () => expect((await q.depths()).jobs?.completed).toBe(12), { timeout: 10_000 });
    expect(peak).toBe(3);
    expect(
      (await q.list({ queue: 'jobs' })).items.map((i) => i.result).sort((a, b) => Number(a) - Number(b)),
    ).toEqual([0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22]);
    expect(w.active).toBe(0);
  });

  it('fails a throwing handler with backoff, retries it, and dead-letters a permanent failure', async () => {
    const q = setup({ defaults: { backoffBaseMs: 10, jitter: 0 } });
    const flaky = await q.enqueue('f', 'flaky');
    const broken = await q.enqueue('f', 'broken');
    let tries = 0;
    worker<string, string>({
      queue: q,
      name: 'f',
      owner: 'peer',
      concurrency: 2,
      pollMs: 10,
      handler: async (item) => {
        if (item.payload === 'broken') throw Object.assign(new Error('bad input'), { permanent: true });
        if (++tries < 3) throw new Error(`try ${tries}`);
        return 'ok';
      },
    });
    await vi.waitFor(async () => expect((await q.get(flaky.item.id))?.state).toBe('completed'), {
      timeout: 10_000,
    });
    expect(await q.get(flaky.item.id)).toMatchObject({ attempts: 3, lastError: 'try 2', result: 'ok' });
    expect(await q.get(broken.item.id)).toMatchObject({ state: 'dead', attempts: 1, lastError: 'bad input' });
  });

  it('claims nothing while the queue is paused and picks the work up after resume', async () => {
    const q = setup();
    await q.pause('p');
    await q.enqueue('p', 1);
    let calls = 0;
    const claim = vi.spyOn(q, 'claim');
    worker({ queue: q, name: 'p', owner: 'peer', pollMs: 10, handler: async () => ++calls });
    await vi.waitFor(() => expect(claim.mock.calls.length).toBeGreaterThanOrEqual(3));
    expect(calls).toBe(0);
    expect((await q.depths()).p?.queued).toBe(1);
    await q.resume('p');
    await vi.waitFor(async () => expect((await q.depths()).p?.completed).toBe(1));
  });

  it('claims nothing while the store is unreachable and picks the work up when it is back', async () => {
    const q = setup();
    await q.enqueue('jobs', 1);
    let state: 'connected' | 'reconnecting' = 'reconnecting';
    let looks = 0;
    const claims = vi.fn();
    // The SQLite queue seen through a store that lost its server (as PostgreSQL reports it).
    const outage = new Proxy(q, {
      get(target, prop, receiver) {
        if (prop === 'connection')
          return () => {
            looks++;
            return { ...target.connection(), kind: 'postgres', state };
          };
        if (prop === 'claim')
          return (...args: Parameters<typeof q.claim>) => {
            claims();
            return target.claim(...args);
          };
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const errors = vi.fn();
    worker<number, number>({
      queue: outage,
      name: 'jobs',
      owner: 'p',
      pollMs: 10,
      handler: async (i) => i.payload,
      onError: errors,
    });
    // Several polls looked at the store, and none of them claimed.
    await vi.waitFor(() => expect(looks).toBeGreaterThanOrEqual(5));
    expect(claims).not.toHaveBeenCalled();
    expect(errors).not.toHaveBeenCalled();
    state = 'connected';
    await vi.waitFor(async () => expect((await q.depths()).jobs?.completed).toBe(1));
  });

  it('heartbeats a lease that is shorter than the handler', async () => {
    const q = setup({ defaults: { leaseMs: 150 } });
    const { item } = await q.enqueue('slow', 1);
    const other = vi.fn();
    worker({
      queue: q,
      name: 'slow',
      owner: 'a',
      pollMs: 10,
      handler: () => new Promise((r) => setTimeout(() => r('done'), 600)),
    });
    // A second worker polls the whole time and must never get the item.
    worker({ queue: q, name: 'slow', owner: 'b', pollMs: 10, handler: async () => other() });
    await vi.waitFor(async () => expect((await q.get(item.id))?.state).toBe('completed'), {
      timeout: 10_000,
    });
    expect(await q.get(item.id)).toMatchObject({ attempts: 1, lease: { owner: 'a' } });
    expect(other).not.toHaveBeenCalled();
  });

  it('aborts the handler when its lease is lost and does not complete the item', async () => {
    const clock = new FakeClock();
    const q = setup({ clock, defaults: { leaseMs: 1_000 } });
    const { item } = await q.enqueue('lost', 1);
    const aborted = Promise.withResolvers<unknown>();
    const errors: string[] = [];
    worker({
      queue: q,
      name: 'lost',
      owner: 'a',
      pollMs: 10,
      heartbeatMs: 10,
      // The reclaimed run never ends either (its lease never runs out on the fake clock).
      drainTimeoutMs: 50,
      onError: (err) => errors.push((err as { code: string }).code),
      handler: (_item, { signal }) =>
        new Promise((_resolve, reject) => {
          signal.addEventListener('abort', () => {
            aborted.resolve(signal.reason);
            reject(signal.reason);
          });
        }),
    });
    await vi.waitFor(async () => expect((await q.get(item.id))?.state).toBe('running'));
    clock.advance(5_000);
    expect(await aborted.promise).toMatchObject({ code: 'QB_ERR_QUEUE_LEASE_LOST' });
    expect(errors).toContain('QB_ERR_QUEUE_LEASE_LOST');
    // The item went back to be reclaimed (here by the same worker), not completed by the stale lease.
    await vi.waitFor(async () => expect((await q.get(item.id))?.attempts).toBe(2));
  });

  it('stops claiming on stop and waits for running handlers to finish (drain)', async () => {
    const q = setup();
    await q.enqueue('d', 1);
    await q.enqueue('d', 2);
    const release = Promise.withResolvers<void>();
    const started = Promise.withResolvers<void>();
    const w = createWorker({
      queue: q,
      name: 'd',
      owner: 'peer',
      pollMs: 10,
      handler: async () => {
        started.resolve();
        await release.promise;
        return 'drained';
      },
    });
    w.start();
    await started.promise;
    let stopped = false;
    const stopping = w.stop().then(() => {
      stopped = true;
    });
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    release.resolve();
    await stopping;
    const depths = (await q.depths()).d;
    expect(depths).toMatchObject({ completed: 1, queued: 1, running: 0 });
    await w.stop();
  });

  it('gives up waiting after the drain timeout and lets the lease run out', async () => {
    const q = setup({ defaults: { leaseMs: 60_000 } });
    const { item } = await q.enqueue('hang', 1);
    const w = createWorker({
      queue: q,
      name: 'hang',
      owner: 'peer',
      pollMs: 10,
      drainTimeoutMs: 50,
      handler: () => new Promise(() => undefined),
    });
    w.start();
    await vi.waitFor(async () => expect((await q.get(item.id))?.state).toBe('running'));
    const t0 = performance.now();
    await w.stop();
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect((await q.get(item.id))?.state).toBe('running');
  });
});
