/**
 * The queue figures a peer puts in its mesh summary: per queue, the items still to do (queued,
 * running, failed awaiting retry) and dead ones waiting for an operator. The summary is built
 * synchronously several times a second, so it reads a snapshot that `refresh` renews in the
 * background; a figure is therefore at most one refresh old.
 */
import type { Queue, QueueDepths } from './types.js';

/** The mesh protocol's limits on the summary's `queues` record. */
const MAX_NAME_LENGTH = 32;
const MAX_QUEUES = 32;

/** `{name: backlog}` plus `{"name.dead": n}` when items are dead; names the protocol cannot carry are left out. */
export function summariseDepths(depths: Record<string, QueueDepths>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, d] of Object.entries(depths).slice(0, MAX_QUEUES)) {
    if (name.length > MAX_NAME_LENGTH) continue;
    out[name] = d.queued + d.running + d.failed;
    const dead = `${name}.dead`;
    if (d.dead > 0 && dead.length <= MAX_NAME_LENGTH) out[dead] = d.dead;
  }
  return out;
}

export class QueueSummary {
  #snapshot: Record<string, number> = {};
  #refreshing = false;
  #lastRefresh = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly queue: Queue,
    /** Counting by state scans the items: at most one refresh per this many ms. */
    private readonly minIntervalMs = 2_000,
  ) {}

  /** The last snapshot; starts a refresh when the snapshot is older than minIntervalMs. */
  current(): Record<string, number> {
    if (performance.now() - this.#lastRefresh >= this.minIntervalMs) void this.refresh();
    return this.#snapshot;
  }

  async refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    this.#lastRefresh = performance.now();
    try {
      this.#snapshot = summariseDepths(await this.queue.depths());
    } catch {
      // Store unreachable (PostgreSQL down) or closed: keep the last figures; /status says more.
    } finally {
      this.#refreshing = false;
    }
  }
}
