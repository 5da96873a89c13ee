/**
 * The worker loop every subsystem uses: claim up to `concurrency` items, heartbeat each lease while
 * its handler runs, complete or fail it, poll again when idle, and on stop claim nothing more and
 * wait for the running handlers (drain). Pause needs nothing here: a paused queue's claim returns
 * no items, so the loop simply keeps polling until it is resumed.
 */
import { isQbError } from '../errors.js';
import type { ClaimedItem, Lease, QueueWorker, WorkerOptions } from './types.js';

const DEFAULT_POLL_MS = 1_000;
const DEFAULT_DRAIN_TIMEOUT_MS = 30_000;
const DEFAULT_PRUNE_INTERVAL_MS = 60_000;

interface Run {
  controller: AbortController;
  done: Promise<void>;
  /** Stops heartbeating, so the lease runs out and another worker can take the item over. */
  release(): void;
}

export function createWorker<P = unknown, R = unknown>(options: WorkerOptions<P, R>): QueueWorker {
  const { queue, name, owner, handler } = options;
  const concurrency = Math.max(1, options.concurrency ?? 1);
  const pollMs = options.pollMs ?? DEFAULT_POLL_MS;
  const drainTimeoutMs = options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  const pruneIntervalMs = options.pruneIntervalMs ?? DEFAULT_PRUNE_INTERVAL_MS;
  const report = (err: unknown, item?: ClaimedItem<P>) => options.onError?.(err, item);

  let started = false;
  let stopping = false;
  let claiming = false;
  let claimAgain = false;
  let pollTimer: NodeJS.Timeout | undefined;
  let pruneTimer: NodeJS.Timeout | undefined;
  const running = new Map<string, Run>();
  let stopped: Promise<void> | undefined;

  function schedulePoll(): void {
    if (stopping || pollTimer) return;
    pollTimer = setTimeout(() => {
      pollTimer = undefined;
      void fill();
    }, pollMs);
  }

  /** Claims as many items as there are free slots; one claim at a time. */
  async function fill(): Promise<void> {
    if (stopping) return;
    if (claiming) {
      claimAgain = true;
      return;
    }
    claiming = true;
    try {
      for (;;) {
        claimAgain = false;
        const free = concurrency - running.size;
        if (free <= 0 || stopping) return;
        // The store is unreachable: claim nothing (every call would fail) until it is back.
        if (queue.connection().state !== 'connected') {
          schedulePoll();
          return;
        }
        let items: ClaimedItem<P>[];
        try {
          items = await queue.claim<P>(name, { owner, limit: free });
        } catch (err) {
          report(err);
          schedulePoll();
          return;
        }
        for (const item of items) start(item);
        // A full batch suggests more work waits: claim again at once; otherwise wait for a poll.
        if (items.length < free && !claimAgain) {
          schedulePoll();
          return;
        }
      }
    } finally {
      claiming = false;
    }
  }

  function start(item: ClaimedItem<P>): void {
    const controller = new AbortController();
    const run: Run = { controller, done: Promise.resolve(), release: () => undefined };
    running.set(item.id, run);
    run.done = runOne(item, run).finally(() => {
      running.delete(item.id);
      void fill();
    });
  }

  async function runOne(item: ClaimedItem<P>, run: Run): Promise<void> {
    const { controller } = run;
    let lease: Lease = item.claim;
    let lost = false;
    const heartbeatMs = options.heartbeatMs ?? Math.max(1, Math.floor(queue.settings(name).leaseMs / 3));
    const heartbeat = setInterval(() => {
      queue.heartbeat(lease).then(
        (next) => {
          lease = next;
        },
        (err: unknown) => {
          if (isQbError(err) && err.code === 'QB_ERR_QUEUE_LEASE_LOST') {
            lost = true;
            controller.abort(err);
          }
          report(err, item);
        },
      );
    }, heartbeatMs);
    run.release = () => clearInterval(heartbeat);
    try {
      let result: R;
      try {
        result = await handler(item, { lease, signal: controller.signal });
      } catch (err) {
        clearInterval(heartbeat);
        if (lost) return;
        await queue
          .fail(lease, err, { permanent: (err as { permanent?: unknown } | null)?.permanent === true })
          .catch((e: unknown) => report(e, item));
        return;
      }
      clearInterval(heartbeat);
      if (lost) return;
      await queue.complete(lease, result).catch((e: unknown) => report(e, item));
    } finally {
      clearInterval(heartbeat);
    }
  }

  async function prune(): Promise<void> {
    await queue.prune().catch((err: unknown) => report(err));
  }

  return {
    start() {
      if (started) return;
      started = true;
      if (pruneIntervalMs > 0) pruneTimer = setInterval(() => void prune(), pruneIntervalMs);
      void fill();
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(pollTimer);
        clearInterval(pruneTimer);
        pollTimer = undefined;
        const drained = Promise.allSettled([...running.values()].map((r) => r.done));
        const { promise: timeout, resolve } = Promise.withResolvers<'timeout'>();
        const timer = setTimeout(() => resolve('timeout'), drainTimeoutMs);
        if ((await Promise.race([drained, timeout])) === 'timeout') {
          // Past the drain timeout: abort the handlers and stop their heartbeats without waiting for
          // them (a handler may ignore its signal); their leases run out and another worker runs them.
          for (const r of running.values()) {
            r.release();
            r.controller.abort(new Error('worker stopped before the handler finished'));
          }
        }
        clearTimeout(timer);
      })();
      return stopped;
    },
    wake() {
      if (!started || stopping) return;
      clearTimeout(pollTimer);
      pollTimer = undefined;
      void fill();
    },
    get active() {
      return running.size;
    },
  };
}
