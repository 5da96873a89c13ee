/**
 * The durable queue's one contract. Two backends implement it (sqlite.ts in DATA_DIR, postgres.ts
 * when DATABASE_URL is set) and one conformance suite (test/queue) holds both to it.
 *
 * Delivery is at least once: a claim is a lease with a fencing token; a worker whose lease expired
 * (or was taken over) can neither complete nor fail the item, and the item runs again elsewhere.
 * Effects outside the queue stay single only through idempotency keys (see README, "Queue").
 *
 * STABLE: other subsystems build on these names. Add fields; never rename or remove them.
 */

import type pg from 'pg';

/** Every state an item can be in. ONLY APPEND. */
export const QUEUE_ITEM_STATES = ['queued', 'running', 'completed', 'failed', 'dead', 'cancelled'] as const;

/**
 * - queued: waiting for its first claim (or re-queued by an operator retry)
 * - running: claimed under a lease
 * - completed: done; kept for the retention period, then pruned
 * - failed: an attempt failed and the item will run again at `runAt` (backoff)
 * - dead: out of attempts (or failed permanently); waits for an operator retry
 * - cancelled: withdrawn before it ran; kept for the retention period, then pruned
 */
export type QueueItemState = (typeof QUEUE_ITEM_STATES)[number];

/** The lease a claim grants. Pass it back to heartbeat, complete and fail. */
export interface Lease {
  /** The item's id. */
  readonly id: string;
  /** The queue (subsystem kind) the item belongs to. */
  readonly queue: string;
  /** Who holds the lease: a peer id, or a peer id plus a worker suffix. */
  readonly owner: string;
  /** Fencing token: grows by one with every claim of the item; a stale token is refused. */
  readonly token: number;
  /** When the lease runs out, ms since the epoch (by the queue's clock). */
  readonly expiresAt: number;
}

/** One item as stored. Times are ms since the epoch by the queue's clock. */
export interface QueueItem<P = unknown, R = unknown> {
  /** Opaque id (a decimal integer string on both backends; ordered by creation). */
  id: string;
  queue: string;
  state: QueueItemState;
  payload: P;
  /** What `complete` stored; null until then. */
  result: R | null;
  /** The last failure's message (also "lease expired"); null when none. */
  lastError: string | null;
  idempotencyKey: string | null;
  /** Claims so far (each claim is one attempt). */
  attempts: number;
  maxAttempts: number;
  /** Earliest time the item may be claimed (next run after a backoff). */
  runAt: number;
  createdAt: number;
  updatedAt: number;
  /** When it reached completed, dead or cancelled; null otherwise. */
  finishedAt: number | null;
  /** The current or last lease; null before the first claim. */
  lease: { owner: string; token: number; expiresAt: number; heartbeatAt: number } | null;
}

/** An item handed out by `claim`, with the lease that lets its holder finish it. */
export interface ClaimedItem<P = unknown> extends QueueItem<P> {
  state: 'running';
  claim: Lease;
}

export interface EnqueueOptions {
  /**
   * Unique per queue while the first item exists (until it is pruned after its retention period):
   * a repeat returns the first item and creates nothing.
   */
  idempotencyKey?: string;
  /** Overrides the queue's `maxAttempts`. */
  maxAttempts?: number;
  /** Do not run before this delay, ms. Default 0. */
  delayMs?: number;
}

export interface EnqueueResult<P = unknown> {
  item: QueueItem<P>;
  /** false when the idempotency key matched an existing item (nothing was created). */
  created: boolean;
}

export interface ClaimOptions {
  /** Lease holder; usually the peer id. The per-peer concurrency limit counts by owner. */
  owner: string;
  /** Claim at most this many items. Default 1. */
  limit?: number;
  /** Overrides the queue's `leaseMs`. */
  leaseMs?: number;
}

export interface FailOptions {
  /** Go to `dead` now, whatever attempts remain (an error retrying cannot fix). */
  permanent?: boolean;
  /** Overrides the backoff delay for this retry, ms. */
  retryInMs?: number;
}

export interface ReleaseOptions {
  /** Do not run again before this delay, ms. Default 0. */
  delayMs?: number;
}

/** Per-queue (per-subsystem) settings. Every field has a default in DEFAULT_QUEUE_SETTINGS. */
export interface QueueSettings {
  /** Attempts before `dead`. Default 5. */
  maxAttempts: number;
  /** Lease length, ms. A heartbeat extends it by this much. Default 30000. */
  leaseMs: number;
  /** Backoff after failed attempt n: min(backoffMaxMs, backoffBaseMs * 2^(n-1)), then jitter. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Jitter fraction: the delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter]. Default 0.2. */
  jitter: number;
  /** Most items running at once in this queue over the whole fleet (all owners). Default unlimited. */
  concurrency: number;
  /** Most items running at once for one owner (peer). Default unlimited. */
  concurrencyPerOwner: number;
  /** Completed and cancelled items are pruned this long after they finished, ms. Default 7 days. */
  retentionMs: number;
}

export const DEFAULT_QUEUE_SETTINGS: Readonly<QueueSettings> = Object.freeze({
  maxAttempts: 5,
  leaseMs: 30_000,
  backoffBaseMs: 1_000,
  backoffMaxMs: 300_000,
  jitter: 0.2,
  concurrency: Number.POSITIVE_INFINITY,
  concurrencyPerOwner: Number.POSITIVE_INFINITY,
  retentionMs: 7 * 24 * 3_600_000,
});

/** Time source; tests inject a fake one. */
export interface Clock {
  /** ms since the epoch */
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Options every backend accepts. */
export interface QueueOptions {
  clock?: Clock;
  /** Uniform [0, 1) source for backoff jitter; tests inject a fixed one. */
  random?: () => number;
  /** Settings applied to every queue unless overridden. */
  defaults?: Partial<QueueSettings>;
  /** Settings per queue name. `define()` adds more later. */
  queues?: Record<string, Partial<QueueSettings>>;
}

export interface ListFilter {
  queue?: string;
  state?: QueueItemState;
  /** Page size, default 50, at most 500. */
  limit?: number;
  /** Cursor from the previous page (`nextCursor`): items with a smaller id follow (newest first). */
  before?: string;
}

export interface ListPage<P = unknown> {
  items: QueueItem<P>[];
  /** Pass as `before` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** How the queue reaches its store, for /status and /ready. */
export interface StoreConnection {
  kind: 'sqlite' | 'postgres';
  /** `reconnecting`: the server is unreachable; every call fails with QB_ERR_STORE_UNAVAILABLE. */
  state: 'connected' | 'reconnecting';
  /** When the state began, ms since the epoch. */
  since: number;
  /** The last connection error seen (kept after recovery); null when none. */
  lastError: string | null;
}

/**
 * The fleet's shared database (PostgreSQL with DATABASE_URL), for the fleet-wide tables features
 * keep beside the queue (spending caps, freelance jobs). Calls behave as the queue's own: refused
 * with QB_ERR_STORE_UNAVAILABLE while the server is unreachable, refused after close.
 */
export interface SharedSql {
  /** One statement ($1, $2... parameters); BIGINT columns come back as numbers. */
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<R[]>;
  /**
   * Another pool on the same database with its own size and timeouts (the trading ledger and
   * account lease), BIGINT as numbers, idle-client errors ignored (the next query reconnects).
   * Through here so that a feature never loads `pg` itself: a SQLite peer never pays for it.
   */
  newPool(options: SharedPoolOptions): pg.Pool;
}

export interface SharedPoolOptions {
  max: number;
  /** A statement running longer fails (pg's query_timeout). */
  queryTimeoutMs?: number;
  connectionTimeoutMs?: number;
}

/** Counts by state for one queue. */
export type QueueDepths = Record<QueueItemState, number>;

/**
 * The queue. Every method is async on both backends. Errors are QbError with codes:
 * - QB_ERR_QUEUE_LEASE_LOST: heartbeat/complete/fail with an expired or superseded lease
 * - QB_ERR_NOT_FOUND: no item with that id
 * - QB_ERR_QUEUE_ITEM_STATE: retry of an item that is not dead/failed/cancelled, cancel of one that
 *   is not queued/failed
 * - QB_ERR_QUEUE_CLOSED: the backend was closed
 * - QB_ERR_STORE_UNAVAILABLE: the database cannot be reached (PostgreSQL); nothing was committed,
 *   or the commit could not be confirmed (an idempotency key makes the retry safe)
 */
export interface Queue {
  /** 'sqlite' or 'postgres' (for /status and logs). */
  readonly backend: 'sqlite' | 'postgres';
  /** The shared database, when the store is one the whole fleet shares (PostgreSQL); else absent. */
  readonly shared?: SharedSql;

  /** Sets (or merges into) one queue's settings. Call before its workers start. */
  define(queue: string, settings: Partial<QueueSettings>): void;
  /** The effective settings of a queue. */
  settings(queue: string): Readonly<QueueSettings>;

  /** Accepts an item durably: resolves only after the commit. */
  enqueue<P>(queue: string, payload: P, options?: EnqueueOptions): Promise<EnqueueResult<P>>;

  /**
   * Claims up to `limit` runnable items (queued, or failed with runAt <= now), oldest runAt first,
   * within the queue's and the owner's concurrency limits. Returns [] while the queue is paused.
   * Items whose lease expired are first returned to `failed` (or `dead` when out of attempts).
   */
  claim<P>(queue: string, options: ClaimOptions): Promise<ClaimedItem<P>[]>;

  /** Extends a live lease by the queue's leaseMs (or `extendMs`). QB_ERR_QUEUE_LEASE_LOST if gone. */
  heartbeat(lease: Lease, extendMs?: number): Promise<Lease>;

  /** Marks a leased item completed with an optional result. QB_ERR_QUEUE_LEASE_LOST if gone. */
  complete<R>(lease: Lease, result?: R): Promise<QueueItem<unknown, R>>;

  /**
   * Records a failed attempt: `failed` with a backoff runAt, or `dead` when attempts are used up or
   * `permanent`. QB_ERR_QUEUE_LEASE_LOST if the lease is gone.
   */
  fail(lease: Lease, error: unknown, options?: FailOptions): Promise<QueueItem>;

  /**
   * Gives a leased item back without spending the attempt: the holder was cut off from outside
   * (kill switch, pause, subsystem stop), the item itself did not fail. It becomes runnable after
   * `delayMs` (queued, or failed when earlier attempts failed) with its attempt count as before the
   * claim; the fencing token moves on, so the old lease is refused from then on.
   * QB_ERR_QUEUE_LEASE_LOST if the lease is gone.
   */
  release(lease: Lease, options?: ReleaseOptions): Promise<QueueItem>;

  get<P = unknown, R = unknown>(id: string): Promise<QueueItem<P, R> | null>;
  list<P = unknown>(filter?: ListFilter): Promise<ListPage<P>>;

  /** Operator retry: dead, failed or cancelled -> queued now, attempts reset to 0. */
  retry(id: string): Promise<QueueItem>;
  /** Withdraws a queued or failed item -> cancelled. */
  cancel(id: string): Promise<QueueItem>;

  /** Stops claiming in this queue on every peer sharing the store; nothing fails or is lost. */
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  isPaused(queue: string): Promise<boolean>;

  /** Counts by state per queue name (queues with no items are absent unless defined). */
  depths(): Promise<Record<string, QueueDepths>>;

  /** Deletes completed and cancelled items older than their queue's retentionMs. Returns the count. */
  prune(): Promise<number>;

  /** The store's reachability now (SQLite is always connected). */
  connection(): StoreConnection;

  /** Flushes pending batches, then releases the connection(s). Further calls reject. */
  close(): Promise<void>;
}

/** What a worker handler receives beside the item. */
export interface WorkerContext {
  /** The lease the worker heartbeats; valid while `signal` is not aborted. */
  lease: Lease;
  /** Aborted when the lease is lost (heartbeat refused) or the worker stops past its drain timeout. */
  signal: AbortSignal;
}

/**
 * A handler's error with `permanent: true` sends the item straight to `dead` (no retry).
 * Any other throw is a failed attempt, retried with backoff.
 */
export interface PermanentFailure {
  permanent: true;
}

export interface WorkerOptions<P = unknown, R = unknown> {
  queue: Queue;
  /** The queue name (subsystem kind) to work on. */
  name: string;
  /** Lease owner: the peer id. */
  owner: string;
  /** Items this worker runs at once. Default 1. */
  concurrency?: number;
  /** How often to look for work when the last claim found none (or the queue is paused), ms. Default 1000. */
  pollMs?: number;
  /** Heartbeat period, ms. Default a third of the queue's leaseMs. */
  heartbeatMs?: number;
  /** On stop, how long to wait for running handlers before aborting them, ms. Default 30000. */
  drainTimeoutMs?: number;
  /** How often to prune expired completed items, ms; 0 disables. Default 60000. */
  pruneIntervalMs?: number;
  handler: (item: ClaimedItem<P>, context: WorkerContext) => Promise<R>;
  /** Told about errors the loop survives (claim failed, lease lost, complete refused). */
  onError?: (err: unknown, item?: QueueItem) => void;
}

export interface QueueWorker {
  /** Starts claiming. Safe to call twice. */
  start(): void;
  /** Stops claiming and waits for running handlers (drain); safe to call twice or before start. */
  stop(): Promise<void>;
  /** Claims now instead of waiting for the next poll (e.g. right after an enqueue). */
  wake(): void;
  /** Handlers running now. */
  readonly active: number;
}
