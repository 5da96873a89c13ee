/**
 * The SQLite backend: one file per peer in DATA_DIR (WAL). Writes go through GroupCommit, so
 * concurrent enqueues, claims and completions share one immediate transaction and one fsync.
 * Claims are `UPDATE ... RETURNING` inside that immediate transaction: SQLite's single writer makes
 * two claimers (in this process or another one on the same file) never see the same item.
 */
import { type Db, openDb } from '../store/db.js';
import { applyNamedMigrations } from '../store/migrations.js';
import { closedError, leaseLost, notFound, wrongState } from './errors.js';
import { GroupCommit } from './group-commit.js';
import { byRunOrder, foldDepths, type ItemRow, listLimit, toClaimed, toItem, toJson } from './rows.js';
import { backoffDelayMs, errorMessage, QueueSettingsTable } from './settings.js';
import { SQLITE_QUEUE_MIGRATIONS } from './sqlite-schema.js';
import {
  type ClaimedItem,
  type ClaimOptions,
  type Clock,
  type EnqueueOptions,
  type EnqueueResult,
  type FailOptions,
  type Lease,
  type ListFilter,
  type ListPage,
  type Queue,
  type QueueDepths,
  type QueueItem,
  type QueueItemState,
  type QueueOptions,
  type QueueSettings,
  type ReleaseOptions,
  type StoreConnection,
  systemClock,
} from './types.js';

export interface SqliteQueueOptions extends QueueOptions {
  /**
   * FULL (default) fsyncs the WAL at every commit: an accepted item survives power loss and OS
   * crashes. NORMAL survives `kill -9` only (the OS may lose the last commits on power loss).
   */
  synchronous?: 'FULL' | 'NORMAL';
}

/**
 * Opens a queue on its own connection to DATA_DIR's database file (or `:memory:`), so its
 * synchronous setting does not change the other stores' connection.
 */
export function openSqliteQueue(dataDir: string | ':memory:', options: SqliteQueueOptions = {}): SqliteQueue {
  return new SqliteQueue(openDb(dataDir), { ...options, ownsDb: true });
}

export class SqliteQueue implements Queue {
  readonly backend = 'sqlite' as const;
  readonly #db: Db;
  readonly #ownsDb: boolean;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #settings: QueueSettingsTable;
  readonly #commit: GroupCommit;
  readonly #sql;
  #closed = false;
  readonly #openedAt = Date.now();

  constructor(db: Db, options: SqliteQueueOptions & { ownsDb?: boolean } = {}) {
    this.#db = db;
    this.#ownsDb = options.ownsDb ?? false;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#settings = new QueueSettingsTable(options);
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
    applyNamedMigrations(db, SQLITE_QUEUE_MIGRATIONS);
    this.#commit = new GroupCommit(db);
    this.#sql = prepare(db);
  }

  /** Largest group commit so far (benchmark figure). */
  get maxBatch(): number {
    return this.#commit.maxBatch;
  }

  /** The connection's synchronous pragma: FULL or NORMAL. */
  synchronousMode(): string {
    const level = this.#db.pragma('synchronous', { simple: true }) as number;
    return ['OFF', 'NORMAL', 'FULL', 'EXTRA'][level] ?? String(level);
  }

  define(queue: string, settings: Partial<QueueSettings>): void {
    this.#settings.define(queue, settings);
  }

  settings(queue: string): Readonly<QueueSettings> {
    return this.#settings.get(queue);
  }

  enqueue<P>(queue: string, payload: P, options: EnqueueOptions = {}): Promise<EnqueueResult<P>> {
    const maxAttempts = options.maxAttempts ?? this.#settings.get(queue).maxAttempts;
    const json = toJson(payload) ?? 'null';
    const key = options.idempotencyKey ?? null;
    return this.#write(() => {
      const now = this.#clock.now();
      const runAt = now + Math.max(0, options.delayMs ?? 0);
      const row = this.#sql.insert.get(queue, json, key, maxAttempts, runAt, now, now) as ItemRow | undefined;
      if (row) return { item: toItem<P>(row), created: true };
      // The key matched: the first item answers, nothing is created.
      const first = this.#sql.byKey.get(queue, key) as ItemRow;
      return { item: toItem<P>(first), created: false };
    });
  }

  claim<P>(queue: string, options: ClaimOptions): Promise<ClaimedItem<P>[]> {
    const settings = this.#settings.get(queue);
    const leaseMs = options.leaseMs ?? settings.leaseMs;
    const want = Math.max(0, Math.floor(options.limit ?? 1));
    return this.#write(() => {
      const now = this.#clock.now();
      this.#sql.expire.run(now, now, now, queue, now);
      if (want === 0 || this.#sql.paused.get(queue)) return [];
      let limit = want;
      if (Number.isFinite(settings.concurrency)) {
        const running = (this.#sql.countRunning.get(queue) as { n: number }).n;
        limit = Math.min(limit, settings.concurrency - running);
      }
      if (Number.isFinite(settings.concurrencyPerOwner)) {
        const mine = (this.#sql.countRunningOwner.get(queue, options.owner) as { n: number }).n;
        limit = Math.min(limit, settings.concurrencyPerOwner - mine);
      }
      if (limit <= 0) return [];
      const rows = this.#sql.claim.all(
        options.owner,
        now + leaseMs,
        now,
        now,
        queue,
        now,
        limit,
      ) as ItemRow[];
      return rows.sort(byRunOrder).map((row) => toClaimed<P>(row));
    });
  }

  heartbeat(lease: Lease, extendMs?: number): Promise<Lease> {
    const ms = extendMs ?? this.#settings.get(lease.queue).leaseMs;
    return this.#write(() => {
      const now = this.#clock.now();
      const row = this.#sql.heartbeat.get(now + ms, now, lease.id, lease.token, now) as
        | { lease_expires_at: number }
        | undefined;
      if (!row) throw leaseLost(lease);
      return { ...lease, expiresAt: row.lease_expires_at };
    });
  }

  complete<R>(lease: Lease, result?: R): Promise<QueueItem<unknown, R>> {
    const json = toJson(result);
    return this.#write(() => {
      const now = this.#clock.now();
      const row = this.#sql.complete.get(json, now, now, lease.id, lease.token, now) as ItemRow | undefined;
      if (!row) throw leaseLost(lease);
      return toItem<unknown, R>(row);
    });
  }

  fail(lease: Lease, error: unknown, options: FailOptions = {}): Promise<QueueItem> {
    const settings = this.#settings.get(lease.queue);
    const message = errorMessage(error);
    return this.#write(() => {
      const now = this.#clock.now();
      const held = this.#sql.held.get(lease.id, lease.token, now) as ItemRow | undefined;
      if (!held) throw leaseLost(lease);
      const dead = options.permanent === true || held.attempts >= held.max_attempts;
      const delay = options.retryInMs ?? backoffDelayMs(settings, held.attempts, this.#random);
      const row = this.#sql.fail.get(
        dead ? 'dead' : 'failed',
        message,
        dead ? now : now + delay,
        now,
        dead ? now : null,
        lease.id,
      ) as ItemRow;
      return toItem(row);
    });
  }

  release(lease: Lease, options: ReleaseOptions = {}): Promise<QueueItem> {
    const delay = Math.max(0, options.delayMs ?? 0);
    return this.#write(() => {
      const now = this.#clock.now();
      const row = this.#sql.release.get(now + delay, now, lease.id, lease.token, now) as ItemRow | undefined;
      if (!row) throw leaseLost(lease);
      return toItem(row);
    });
  }

  get<P = unknown, R = unknown>(id: string): Promise<QueueItem<P, R> | null> {
    return this.#read(() => {
      const row = this.#sql.get.get(id) as ItemRow | undefined;
      return row ? toItem<P, R>(row) : null;
    });
  }

  list<P = unknown>(filter: ListFilter = {}): Promise<ListPage<P>> {
    return this.#read(() => {
      const limit = listLimit(filter.limit);
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (clause: string, value: unknown) => {
        where.push(clause);
        params.push(value);
      };
      if (filter.queue !== undefined) add('queue = ?', filter.queue);
      if (filter.state !== undefined) add('state = ?', filter.state);
      if (filter.before !== undefined) add('id < ?', Number(filter.before));
      const sql = `SELECT * FROM queue_items ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
                   ORDER BY id DESC LIMIT ?`;
      const rows = this.#db.prepare(sql).all(...params, limit + 1) as ItemRow[];
      const page = rows.slice(0, limit).map((row) => toItem<P>(row));
      return { items: page, nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
    });
  }

  retry(id: string): Promise<QueueItem> {
    return this.#write(() => {
      const now = this.#clock.now();
      const row = this.#sql.retry.get(now, now, id) as ItemRow | undefined;
      if (row) return toItem(row);
      throw this.#whyNot(id, 'retry', 'dead, failed or cancelled');
    });
  }

  cancel(id: string): Promise<QueueItem> {
    return this.#write(() => {
      const now = this.#clock.now();
      const row = this.#sql.cancel.get(now, now, id) as ItemRow | undefined;
      if (row) return toItem(row);
      throw this.#whyNot(id, 'cancel', 'queued or failed');
    });
  }

  pause(queue: string): Promise<void> {
    return this.#write(() => void this.#sql.setPaused.run(queue, 1));
  }

  resume(queue: string): Promise<void> {
    return this.#write(() => void this.#sql.setPaused.run(queue, 0));
  }

  isPaused(queue: string): Promise<boolean> {
    return this.#read(() => Boolean(this.#sql.paused.get(queue)));
  }

  depths(): Promise<Record<string, QueueDepths>> {
    return this.#read(() => {
      const rows = this.#sql.depths.all() as Array<{ queue: string; state: QueueItemState; n: number }>;
      return foldDepths(rows, this.#settings.defined());
    });
  }

  prune(): Promise<number> {
    return this.#write(() => {
      const now = this.#clock.now();
      const queues = this.#sql.queues.all() as Array<{ queue: string }>;
      let removed = 0;
      for (const { queue } of queues) {
        removed += this.#sql.prune.run(queue, now - this.#settings.get(queue).retentionMs).changes;
      }
      return removed;
    });
  }

  connection(): StoreConnection {
    return { kind: 'sqlite', state: 'connected', since: this.#openedAt, lastError: null };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#commit.drained();
    if (this.#ownsDb) this.#db.close();
  }

  #write<T>(op: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    return this.#commit.run(op);
  }

  #read<T>(op: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    try {
      return Promise.resolve(op());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #whyNot(id: string, action: string, allowed: string): Error {
    const row = this.#sql.get.get(id) as ItemRow | undefined;
    return row ? wrongState(id, row.state, action, allowed) : notFound(id);
  }
}

function prepare(db: Db) {
  return {
    insert: db.prepare(
      `INSERT INTO queue_items (queue, state, payload, idempotency_key, max_attempts, run_at, created_at, updated_at)
       VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)
       ON CONFLICT (queue, idempotency_key) DO NOTHING
       RETURNING *`,
    ),
    byKey: db.prepare('SELECT * FROM queue_items WHERE queue = ? AND idempotency_key = ?'),
    // A lease that ran out counts as a failed attempt; the item is runnable at once (or dead), in
    // its old place in line: run_at = now would put it behind every item queued since, and a
    // backlog that never drains would starve it.
    expire: db.prepare(
      `UPDATE queue_items
       SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
           last_error = 'lease expired', run_at = MIN(run_at, ?), updated_at = ?,
           finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END
       WHERE queue = ? AND state = 'running' AND lease_expires_at <= ?`,
    ),
    paused: db.prepare('SELECT 1 FROM queue_control WHERE queue = ? AND paused = 1'),
    countRunning: db.prepare(`SELECT COUNT(*) AS n FROM queue_items WHERE queue = ? AND state = 'running'`),
    countRunningOwner: db.prepare(
      `SELECT COUNT(*) AS n FROM queue_items WHERE queue = ? AND state = 'running' AND lease_owner = ?`,
    ),
    claim: db.prepare(
      `UPDATE queue_items
       SET state = 'running', attempts = attempts + 1, lease_owner = ?, lease_token = lease_token + 1,
           lease_expires_at = ?, heartbeat_at = ?, updated_at = ?
       WHERE id IN (SELECT id FROM queue_items
                    WHERE queue = ? AND state IN ('queued', 'failed') AND run_at <= ?
                    ORDER BY run_at, id LIMIT ?)
       RETURNING *`,
    ),
    heartbeat: db.prepare(
      `UPDATE queue_items SET lease_expires_at = ?, heartbeat_at = ?
       WHERE id = ? AND state = 'running' AND lease_token = ? AND lease_expires_at > ?
       RETURNING lease_expires_at`,
    ),
    complete: db.prepare(
      `UPDATE queue_items SET state = 'completed', result = ?, finished_at = ?, updated_at = ?
       WHERE id = ? AND state = 'running' AND lease_token = ? AND lease_expires_at > ?
       RETURNING *`,
    ),
    held: db.prepare(
      `SELECT * FROM queue_items WHERE id = ? AND state = 'running' AND lease_token = ? AND lease_expires_at > ?`,
    ),
    fail: db.prepare(
      `UPDATE queue_items SET state = ?, last_error = ?, run_at = ?, updated_at = ?, finished_at = ?
       WHERE id = ? RETURNING *`,
    ),
    // The claim's attempt is taken back; the token moves on so the released lease stays fenced.
    release: db.prepare(
      `UPDATE queue_items
       SET attempts = MAX(attempts - 1, 0), state = CASE WHEN attempts > 1 THEN 'failed' ELSE 'queued' END,
           lease_token = lease_token + 1, run_at = ?, updated_at = ?
       WHERE id = ? AND state = 'running' AND lease_token = ? AND lease_expires_at > ?
       RETURNING *`,
    ),
    get: db.prepare('SELECT * FROM queue_items WHERE id = ?'),
    retry: db.prepare(
      `UPDATE queue_items SET state = 'queued', attempts = 0, run_at = ?, updated_at = ?, finished_at = NULL
       WHERE id = ? AND state IN ('dead', 'failed', 'cancelled') RETURNING *`,
    ),
    cancel: db.prepare(
      `UPDATE queue_items SET state = 'cancelled', finished_at = ?, updated_at = ?
       WHERE id = ? AND state IN ('queued', 'failed') RETURNING *`,
    ),
    setPaused: db.prepare(
      `INSERT INTO queue_control (queue, paused) VALUES (?, ?)
       ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused`,
    ),
    depths: db.prepare('SELECT queue, state, COUNT(*) AS n FROM queue_items GROUP BY queue, state'),
    queues: db.prepare('SELECT DISTINCT queue FROM queue_items'),
    prune: db.prepare(
      `DELETE FROM queue_items WHERE queue = ? AND state IN ('completed', 'cancelled') AND finished_at <= ?`,
    ),
  };
}
