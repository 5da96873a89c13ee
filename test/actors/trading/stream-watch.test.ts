/**
 * The background stream loop with scripted updates (no socket): it keeps the latest value while it
 * is fresh, reports a failure as `reconnecting` and offers no value meanwhile, subscribes again
 * with backoff, and stops for good.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { StreamWatch } from '../../../src/actors/trading/stream-watch.js';

/** Updates the test hands out one at a time: each `next()` waits for the test to push or fail. */
function scripted<T>() {
  const pending: PromiseWithResolvers<T>[] = [];
  let calls = 0;
  return {
    next: () => {
      calls += 1;
      const d = Promise.withResolvers<T>();
      pending.push(d);
      return d.promise;
    },
    push: (value: T) => pending.shift()?.resolve(value),
    fail: (err: Error) => pending.shift()?.reject(err),
    calls: () => calls,
  };
}

describe('StreamWatch', () => {
  it('keeps the latest value while fresh, shows a failure as reconnecting, and recovers', async () => {
    const s = scripted<number>();
    const clock = { t: 1_000 };
    const failures: unknown[] = [];
    const w = new StreamWatch({
      next: s.next,
      retry: { baseMs: 10, maxMs: 20 },
      now: () => clock.t,
      onFailure: (err) => failures.push(err),
    });
    onTestFinished(() => w.stop());
    expect(w.state).toBe('connecting');
    expect(w.fresh(1_000)).toBeUndefined();

    s.push(1);
    await w.settled(1_000);
    await vi.waitFor(() => expect(w.fresh(1_000)).toBe(1));
    s.push(2);
    await vi.waitFor(() => expect(w.fresh(1_000)).toBe(2));
    expect(w.state).toBe('streaming');
    // Silent past the freshness bound: no value, though the stream did not fail.
    clock.t += 1_001;
    expect(w.fresh(1_000)).toBeUndefined();

    await vi.waitFor(() => expect(s.calls()).toBe(3));
    s.fail(new Error('connection closed'));
    await vi.waitFor(() => expect(w.state).toBe('reconnecting'));
    expect(w.error).toBe('connection closed');
    expect(w.fresh(Number.POSITIVE_INFINITY)).toBeUndefined();
    // Subscribes again after the backoff; a second failure in the streak is not reported again.
    await vi.waitFor(() => expect(s.calls()).toBe(4));
    s.fail(new Error('refused'));
    await vi.waitFor(() => expect(s.calls()).toBe(5));
    expect(failures).toHaveLength(1);
    s.push(3);
    await vi.waitFor(() => expect(w.fresh(1_000)).toBe(3));
    expect(w.state).toBe('streaming');
  });

  it('settles at the first failure when no update ever came, and stops for good', async () => {
    const s = scripted<number>();
    const w = new StreamWatch({ next: s.next, retry: { baseMs: 5_000, maxMs: 5_000 } });
    const waited = w.settled(10_000);
    s.fail(new Error('refused'));
    await waited;
    expect(w.state).toBe('reconnecting');
    w.stop();
    expect(w.state).toBe('closed');
    // Stopped during its backoff: it never subscribes again.
    expect(s.calls()).toBe(1);
  });
});
