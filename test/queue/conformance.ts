/**
 * The queue's one contract as tests, parameterised by a backend factory (as js-libp2p's
 * interface-compliance-tests are): sqlite.test.ts and postgres.test.ts run it against both
 * backends. A behaviour one backend cannot give is a failing test here, not a comment.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Queue, QueueOptions } from '../../src/queue/types.js';

/** A fresh, empty store per test; `open` connects one more queue to it (like another peer). */
export interface BackendStore {
  open(options?: QueueOptions): Promise<Queue>;
}

export interface BackendFactory {
  name: string;
  store(): Promise<BackendStore>;
}

/** Time that moves only when the test says so. */
export class FakeClock {
  constructor(public t = 1_700_000_000_000) {}
  now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

/** The i-th element, which the test expects to exist. */
export function at<T>(items: readonly T[], i = 0): T {
  const item = items[i];
  if (item === undefined) throw new Error(`expected at least ${i + 1} item(s), got ${items.length}`);
  return item;
}

function pair<T>(items: readonly T[]): [T, T] {
  return [at(items, 0), at(items, 1)];
}

async function errorCode(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
  throw new Error('expected a rejection');
}

export function queueConformance(factory: BackendFactory): void {
  describe(`queue conformance: ${factory.name}`, () => {
    /** Opens `n` queues on one fresh store, sharing one fake clock; closed when the test ends. */
    async function setup(options: QueueOptions = {}, n = 1) {
      const clock = new FakeClock();
      const store = await factory.store();
      const queues: Queue[] = [];
      for (let i = 0; i < n; i++) {
        const q = await store.open({ clock, random: () => 0.5, ...options });
        onTestFinished(() => q.close());
        queues.push(q);
      }
      return { clock, q: queues[0] as Queue, queues };
    }

    it('enqueues, claims under a lease and completes with a result', async () => {
      const { q, clock } = await setup();
      const { item, created } = await q.enqueue('mail', { to: 'a' });
      expect(created).toBe(true);
      expect(item).toMatchObject({
        queue: 'mail',
        state: 'queued',
        payload: { to: 'a' },
        attempts: 0,
        lease: null,
      });
      const got = await q.claim<{ to: string }>('mail', { owner: 'peer-a', leaseMs: 5_000 });
      expect(got).toHaveLength(1);
      const claimed = at(got);
      expect(claimed).toMatchObject({ id: item.id, state: 'running', attempts: 1 });
      expect(claimed.claim).toMatchObject({ id: item.id, owner: 'peer-a', expiresAt: clock.t + 5_000 });
      expect(claimed.payload.to).toBe('a');
      const done = await q.complete(claimed.claim, { sent: true });
      expect(done).toMatchObject({ state: 'completed', result: { sent: true }, finishedAt: clock.t });
      expect(await q.get(item.id)).toMatchObject({ state: 'completed', result: { sent: true } });
      expect(await q.claim('mail', { owner: 'peer-a' })).toEqual([]);
    });

    it('claims oldest first, up to the limit, and only from its own queue', async () => {
      const { q } = await setup();
      const ids = [];
      for (let i = 0; i < 5; i++) ids.push((await q.enqueue('a', i)).item.id);
      await q.enqueue('b', 'other');
      const got = await q.claim('a', { owner: 'p', limit: 3 });
      expect(got.map((i) => i.id)).toEqual(ids.slice(0, 3));
      expect((await q.claim('a', { owner: 'p', limit: 10 })).map((i) => i.payload)).toEqual([3, 4]);
    });

    it('returns the first item for a repeated idempotency key, also after completion, until pruned', async () => {
      const { q, clock } = await setup({ defaults: { retentionMs: 60_000 } });
      const first = await q.enqueue('ai', { prompt: 'x' }, { idempotencyKey: 'k1' });
      const again = await q.enqueue('ai', { prompt: 'changed' }, { idempotencyKey: 'k1' });
      expect(again.created).toBe(false);
      expect(again.item).toMatchObject({ id: first.item.id, payload: { prompt: 'x' } });
      // Concurrent repeats (one group commit on SQLite, racing connections on PostgreSQL) create one.
      const burst = await Promise.all([1, 2, 3].map(() => q.enqueue('ai', 'y', { idempotencyKey: 'k2' })));
      expect(new Set(burst.map((r) => r.item.id)).size).toBe(1);
      expect(burst.filter((r) => r.created)).toHaveLength(1);
      // The key is per queue.
      expect((await q.enqueue('other', 'z', { idempotencyKey: 'k1' })).created).toBe(true);
      const c = at(await q.claim('ai', { owner: 'p' }));
      await q.complete(c.claim, 'ok');
      clock.advance(59_000);
      expect(await q.enqueue('ai', 'late', { idempotencyKey: 'k1' })).toMatchObject({
        created: false,
        item: { id: first.item.id, state: 'completed' },
      });
      clock.advance(1_000);
      expect(await q.prune()).toBe(1);
      const fresh = await q.enqueue('ai', 'after', { idempotencyKey: 'k1' });
      expect(fresh.created).toBe(true);
      expect(fresh.item.id).not.toBe(first.item.id);
    });

    it('lets another peer take over an item whose lease expired, with a new fencing token', async () => {
      // Two connections: peer A's machine "dies" holding the lease, peer B takes the item over.
      const { queues, clock } = await setup({ defaults: { leaseMs: 1_000 } }, 2);
      const [qa, qb] = queues as [Queue, Queue];
      const { item } = await qa.enqueue('w', 1);
      const a = at(await qa.claim('w', { owner: 'peer-a' }));
      expect(await qb.claim('w', { owner: 'peer-b' })).toEqual([]);
      clock.advance(999);
      expect(await qb.claim('w', { owner: 'peer-b' })).toEqual([]);
      clock.advance(1);
      const b = at(await qb.claim('w', { owner: 'peer-b' }));
      expect(b).toMatchObject({ id: item.id, attempts: 2 });
      expect(b.claim.token).toBeGreaterThan(a.claim.token);
      expect(b.lastError).toBe('lease expired');
      // The first holder is fenced off: nothing it says changes the item.
      expect(await errorCode(qa.complete(a.claim, 'late'))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      expect(await errorCode(qa.fail(a.claim, new Error('late')))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      expect(await errorCode(qa.heartbeat(a.claim))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      expect(await qa.get(item.id)).toMatchObject({ state: 'running', lease: { owner: 'peer-b' } });
      await qb.complete(b.claim, 'from b');
      expect(await qa.get(item.id)).toMatchObject({ state: 'completed', result: 'from b' });
    });

    it('takes an expired item over in its place in line, before items queued after it', async () => {
      // A dead peer's item must not go to the back of the queue when its lease runs out: under a
      // backlog that never drains (producers as fast as the fleet) it would never run again.
      const { queues, clock } = await setup({ defaults: { leaseMs: 1_000 } }, 2);
      const [qa, qb] = queues as [Queue, Queue];
      const { item: old } = await qa.enqueue('w', 'old');
      at(await qa.claim('w', { owner: 'peer-a' }));
      clock.advance(500);
      const { item: newer } = await qb.enqueue('w', 'newer');
      clock.advance(600);
      const taken = at(await qb.claim('w', { owner: 'peer-b' }));
      expect(taken).toMatchObject({ id: old.id, attempts: 2, lastError: 'lease expired' });
      expect(at(await qb.claim('w', { owner: 'peer-b' }))).toMatchObject({ id: newer.id, attempts: 1 });
    });

    it('refuses a late completion after the lease expired even before anyone reclaimed it', async () => {
      const { q, clock } = await setup({ defaults: { leaseMs: 1_000 } });
      const { item } = await q.enqueue('w', 1);
      const a = at(await q.claim('w', { owner: 'peer-a' }));
      clock.advance(1_500);
      expect(await errorCode(q.complete(a.claim, 'late'))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      expect((await q.get(item.id))?.state).toBe('running');
      const again = at(await q.claim('w', { owner: 'peer-a' }));
      expect(again?.claim.token).toBe(a.claim.token + 1);
      // The stale token stays refused even when the same owner holds the new lease.
      expect(await errorCode(q.complete(a.claim, 'stale'))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      await q.complete(again.claim, 'fresh');
    });

    it('refuses only the stale completion of a concurrent burst; the others commit', async () => {
      const { q, clock } = await setup({ defaults: { leaseMs: 1_000 } });
      await q.enqueue('w', 'stale');
      const stale = at(await q.claim('w', { owner: 'a' }));
      clock.advance(1_000);
      for (let i = 0; i < 5; i++) await q.enqueue('w', i);
      const fresh = await q.claim('w', { owner: 'b', limit: 10 });
      expect(fresh).toHaveLength(6);
      const settled = await Promise.allSettled([
        q.complete(stale.claim, 'late'),
        ...fresh.map((i) => q.complete(i.claim, i.payload)),
        q.complete(at(fresh).claim, 'twice'),
      ]);
      expect(settled.map((s) => s.status)).toEqual(['rejected', ...fresh.map(() => 'fulfilled'), 'rejected']);
      expect((await q.depths()).w?.completed).toBe(6);
      expect((await q.get(stale.id))?.result).toBe('stale');
    });

    it('keeps a lease alive with heartbeats', async () => {
      const { q, clock } = await setup({ defaults: { leaseMs: 1_000 } });
      await q.enqueue('w', 1);
      const a = at(await q.claim('w', { owner: 'peer-a' }));
      let lease = a.claim;
      for (let i = 0; i < 3; i++) {
        clock.advance(800);
        lease = await q.heartbeat(lease);
        expect(lease.expiresAt).toBe(clock.t + 1_000);
        expect(await q.claim('w', { owner: 'peer-b' })).toEqual([]);
      }
      expect((await q.complete(lease)).state).toBe('completed');
    });

    it('releases a leased item without spending the attempt, and fences the released lease', async () => {
      const { q, clock } = await setup({ defaults: { leaseMs: 1_000, maxAttempts: 2 } });
      const { item } = await q.enqueue('w', 1);
      const a = at(await q.claim('w', { owner: 'peer-a' }));
      const released = await q.release(a.claim, { delayMs: 500 });
      expect(released).toMatchObject({ id: item.id, state: 'queued', attempts: 0, runAt: clock.t + 500 });
      expect(await errorCode(q.complete(a.claim, 'late'))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      expect(await errorCode(q.release(a.claim))).toBe('QB_ERR_QUEUE_LEASE_LOST');
      expect(await q.claim('w', { owner: 'peer-b' })).toEqual([]);
      clock.advance(500);
      // Released many times (a kill switch toggled on and off), it never runs out of attempts.
      for (let i = 0; i < 3; i++) {
        const c = at(await q.claim('w', { owner: 'peer-b' }));
        expect(c.attempts).toBe(1);
        expect(c.claim.token).toBeGreaterThan(a.claim.token);
        await q.release(c.claim);
      }
      // After a real failure the attempt counts, and a release keeps that count and the error.
      const b = at(await q.claim('w', { owner: 'peer-b' }));
      await q.fail(b.claim, 'boom', { retryInMs: 0 });
      const c = at(await q.claim('w', { owner: 'peer-b' }));
      expect(c.attempts).toBe(2);
      expect(await q.release(c.claim)).toMatchObject({ state: 'failed', attempts: 1, lastError: 'boom' });
      const d = at(await q.claim('w', { owner: 'peer-b' }));
      expect((await q.complete(d.claim, 'done')).state).toBe('completed');
      // A lease that ran out cannot be released either.
      await q.enqueue('w', 2);
      const e = at(await q.claim('w', { owner: 'peer-a' }));
      clock.advance(1_000);
      expect(await errorCode(q.release(e.claim))).toBe('QB_ERR_QUEUE_LEASE_LOST');
    });

    it('reports its store connected', async () => {
      const { q } = await setup();
      expect(q.connection()).toMatchObject({ kind: q.backend, state: 'connected', lastError: null });
    });

    it('retries a failed item on the exponential backoff schedule', async () => {
      const settings = { maxAttempts: 6, backoffBaseMs: 1_000, backoffMaxMs: 8_000, jitter: 0.2 };
      const { q, clock } = await setup({ queues: { b: settings } });
      const { item } = await q.enqueue('b', 'x');
      const delays: number[] = [];
      for (let attempt = 1; attempt <= 5; attempt++) {
        const c = at(await q.claim('b', { owner: 'p' }));
        expect(c?.attempts).toBe(attempt);
        const failed = await q.fail(c.claim, new Error(`boom ${attempt}`));
        expect(failed).toMatchObject({ state: 'failed', lastError: `boom ${attempt}` });
        delays.push(failed.runAt - clock.t);
        clock.advance(failed.runAt - clock.t - 1);
        expect(await q.claim('b', { owner: 'p' })).toEqual([]);
        clock.advance(1);
      }
      // random() = 0.5 puts the jitter factor at exactly 1.
      expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000]);
      const last = at(await q.claim('b', { owner: 'p' }));
      expect((await q.fail(last.claim, 'final')).state).toBe('dead');
      expect((await q.get(item.id))?.attempts).toBe(6);
    });

    it('spreads retry delays with jitter inside [1 - jitter, 1 + jitter]', async () => {
      for (const [r, expected] of [
        [0, 800],
        [0.999_999, 1_200],
      ] as const) {
        const { q } = await setup({ random: () => r, defaults: { backoffBaseMs: 1_000, jitter: 0.2 } });
        await q.enqueue('j', 1);
        const c = at(await q.claim('j', { owner: 'p' }));
        const failed = await q.fail(c.claim, 'x');
        expect(failed.runAt - failed.updatedAt).toBe(expected);
      }
    });

    it('dead-letters after the attempt limit and lets an operator retry', async () => {
      const { q } = await setup({ defaults: { maxAttempts: 2, backoffBaseMs: 0 } });
      const { item } = await q.enqueue('d', 1);
      for (let i = 0; i < 2; i++) {
        const c = at(await q.claim('d', { owner: 'p' }));
        await q.fail(c.claim, new Error('nope'));
      }
      const dead = await q.get(item.id);
      expect(dead).toMatchObject({ state: 'dead', attempts: 2, lastError: 'nope' });
      expect(dead?.finishedAt).not.toBeNull();
      expect(await q.claim('d', { owner: 'p' })).toEqual([]);
      expect(await q.retry(item.id)).toMatchObject({ state: 'queued', attempts: 0, finishedAt: null });
      expect(await errorCode(q.retry(item.id))).toBe('QB_ERR_QUEUE_ITEM_STATE');
      expect(await errorCode(q.retry('999999'))).toBe('QB_ERR_NOT_FOUND');
      const c = at(await q.claim('d', { owner: 'p' }));
      expect(c?.attempts).toBe(1);
      await q.complete(c.claim, 'finally');
    });

    it('dead-letters at once on a permanent failure, and when the last lease expires', async () => {
      const { q, clock } = await setup({ defaults: { maxAttempts: 1, leaseMs: 1_000 } });
      const one = await q.enqueue('d', 1);
      const two = await q.enqueue('d', 2);
      const [a, b] = pair(await q.claim('d', { owner: 'p', limit: 2 }));
      expect((await q.fail(a.claim, 'bad input', { permanent: true })).state).toBe('dead');
      clock.advance(1_000);
      expect(await q.claim('d', { owner: 'p' })).toEqual([]);
      expect(await q.get(two.item.id)).toMatchObject({ state: 'dead', lastError: 'lease expired' });
      expect((await q.get(one.item.id))?.state).toBe('dead');
      expect(b).toBeDefined();
    });

    it('cancels a queued item, and refuses to cancel a running one', async () => {
      const { q } = await setup();
      const one = await q.enqueue('c', 1);
      const two = await q.enqueue('c', 2);
      expect((await q.cancel(one.item.id)).state).toBe('cancelled');
      const c = at(await q.claim('c', { owner: 'p', limit: 5 }));
      expect(c?.id).toBe(two.item.id);
      expect(await errorCode(q.cancel(two.item.id))).toBe('QB_ERR_QUEUE_ITEM_STATE');
      expect(await errorCode(q.cancel('424242'))).toBe('QB_ERR_NOT_FOUND');
      expect((await q.retry(one.item.id)).state).toBe('queued');
    });

    it('stops claiming while paused, on every queue sharing the store, and loses nothing', async () => {
      const { queues } = await setup({}, 2);
      const [a, b] = queues as [Queue, Queue];
      await a.enqueue('p', 1);
      await a.enqueue('p', 2);
      const running = at(await a.claim('p', { owner: 'x' }));
      await a.pause('p');
      expect(await b.isPaused('p')).toBe(true);
      expect(await b.claim('p', { owner: 'y' })).toEqual([]);
      expect(await a.isPaused('other')).toBe(false);
      // Work already running finishes normally while paused.
      expect((await a.complete(running.claim)).state).toBe('completed');
      expect((await a.depths()).p).toMatchObject({ queued: 1, completed: 1 });
      await b.resume('p');
      expect((await a.claim('p', { owner: 'x' })).map((i) => i.payload)).toEqual([2]);
    });

    it('prunes completed and cancelled items after the retention period, never dead ones', async () => {
      const { q, clock } = await setup({ defaults: { retentionMs: 10_000, maxAttempts: 1 } });
      const done = await q.enqueue('r', 'done');
      const dead = await q.enqueue('r', 'dead');
      const cancelled = await q.enqueue('r', 'cancelled');
      const [c1, c2] = pair(await q.claim('r', { owner: 'p', limit: 2 }));
      await q.complete(c1.claim);
      await q.fail(c2.claim, 'x');
      await q.cancel(cancelled.item.id);
      clock.advance(9_999);
      expect(await q.prune()).toBe(0);
      clock.advance(1);
      expect(await q.prune()).toBe(2);
      expect(await q.get(done.item.id)).toBeNull();
      expect(await q.get(cancelled.item.id)).toBeNull();
      expect((await q.get(dead.item.id))?.state).toBe('dead');
    });

    it('keeps to the per-queue and per-owner concurrency limits', async () => {
      const { q } = await setup({ queues: { lim: { concurrency: 3, concurrencyPerOwner: 2 } } });
      for (let i = 0; i < 10; i++) await q.enqueue('lim', i);
      const a = await q.claim('lim', { owner: 'a', limit: 10 });
      expect(a).toHaveLength(2);
      const b = await q.claim('lim', { owner: 'b', limit: 10 });
      expect(b).toHaveLength(1);
      expect(await q.claim('lim', { owner: 'c', limit: 10 })).toEqual([]);
      await q.complete(at(a).claim);
      expect(await q.claim('lim', { owner: 'a', limit: 10 })).toHaveLength(1);
      // Other queues are not limited.
      for (let i = 0; i < 5; i++) await q.enqueue('free', i);
      expect(await q.claim('free', { owner: 'a', limit: 10 })).toHaveLength(5);
    });

    it('keeps the fleet-wide concurrency limit when peers claim at once on separate connections', async () => {
      const { queues } = await setup({ queues: { lim: { concurrency: 3 } } }, 2);
      const [a, b] = queues as [Queue, Queue];
      for (let i = 0; i < 20; i++) await a.enqueue('lim', i);
      const claims = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).claim('lim', { owner: `p${i}`, limit: 2 })),
      );
      expect(claims.flat()).toHaveLength(3);
      expect((await b.depths()).lim?.running).toBe(3);
    });

    it('never hands the same item to two claimers on separate connections', async () => {
      const { queues } = await setup({}, 2);
      const [a, b] = queues as [Queue, Queue];
      const total = 300;
      await Promise.all(Array.from({ length: total }, (_, i) => a.enqueue('race', i)));
      const seen: string[] = [];
      const drain = async (q: Queue, owner: string) => {
        for (let round = 0; round < total; round++) {
          const got = await q.claim('race', { owner, limit: 7 });
          if (got.length === 0) return;
          seen.push(...got.map((i) => i.id));
          await Promise.all(got.map((i) => q.complete(i.claim)));
        }
      };
      await Promise.all([drain(a, 'a'), drain(b, 'b'), drain(a, 'a2'), drain(b, 'b2')]);
      expect(seen).toHaveLength(total);
      expect(new Set(seen).size).toBe(total);
      expect((await a.depths()).race?.completed).toBe(total);
    });

    it('acknowledges concurrent enqueues only once they are durable and visible to other connections', async () => {
      const { queues } = await setup({}, 2);
      const [a, b] = queues as [Queue, Queue];
      const results = await Promise.all(Array.from({ length: 100 }, (_, i) => a.enqueue('burst', { i })));
      expect(new Set(results.map((r) => r.item.id)).size).toBe(100);
      expect((await b.depths()).burst?.queued).toBe(100);
    });

    it('lists by queue and state, newest first, with a cursor', async () => {
      const { q } = await setup();
      for (let i = 0; i < 7; i++) await q.enqueue('l', i);
      await q.enqueue('m', 'x');
      const c = at(await q.claim('l', { owner: 'p' }));
      const first = await q.list({ queue: 'l', state: 'queued', limit: 4 });
      expect(first.items.map((i) => i.payload)).toEqual([6, 5, 4, 3]);
      expect(first.nextCursor).toBe(first.items.at(-1)?.id);
      const second = await q.list({ queue: 'l', state: 'queued', limit: 4, before: first.nextCursor ?? '' });
      expect(second.items.map((i) => i.payload)).toEqual([2, 1]);
      expect(second.nextCursor).toBeNull();
      expect((await q.list({ state: 'running' })).items.map((i) => i.id)).toEqual([c.id]);
      expect((await q.list()).items).toHaveLength(8);
      expect(await q.get('nope')).toBeNull();
      expect(await q.get('99999999999999999999')).toBeNull();
      expect(await errorCode(q.retry('9999999999999999999'))).toBe('QB_ERR_NOT_FOUND');
      expect(await errorCode(q.cancel('-1'))).toBe('QB_ERR_NOT_FOUND');
    });

    it('reports depths by state, with zeros for defined queues', async () => {
      const { q } = await setup({ queues: { empty: {} } });
      await q.enqueue('x', 1);
      await q.enqueue('x', 2);
      await q.claim('x', { owner: 'p' });
      const depths = await q.depths();
      expect(depths.x).toEqual({ queued: 1, running: 1, completed: 0, failed: 0, dead: 0, cancelled: 0 });
      expect(depths.empty).toEqual({ queued: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 });
    });

    it('delays an item enqueued with delayMs', async () => {
      const { q, clock } = await setup();
      await q.enqueue('later', 1, { delayMs: 5_000 });
      expect(await q.claim('later', { owner: 'p' })).toEqual([]);
      clock.advance(5_000);
      expect(await q.claim('later', { owner: 'p' })).toHaveLength(1);
    });

    it('refuses every call after close', async () => {
      const { q } = await setup();
      await q.close();
      await q.close();
      expect(await errorCode(q.enqueue('x', 1))).toBe('QB_ERR_QUEUE_CLOSED');
      expect(await errorCode(q.claim('x', { owner: 'p' }))).toBe('QB_ERR_QUEUE_CLOSED');
    });
  });
}
