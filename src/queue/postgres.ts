/**
 * The PostgreSQL backend (DATABASE_URL): every peer of the fleet claims from the same tables with
 * `FOR UPDATE SKIP LOCKED`, so any peer can run any item, and the claims of a machine that died are
 * taken over once their lease runs out.
 *
 * Hand-written SQL rather than pg-boss: pg-boss 12 lets a worker complete a job whatever happened
 * to its claim (no fencing token refusing a late completion after the lease expired and another
 * worker took the item), and its singleton/dedup keys stop deduplicating once the job completes,
 * while our idempotency key must keep answering with the first item for the whole retention period.
 * Both are the guarantees the conformance suite tests, so the SQL lives here, beside the SQLite twin.
 */
import pg from 'pg';
import { QbError } from '../errors.js';
import type { NamedMigration } from '../store/migrations.js';
import { Batcher } from './batcher.js';
import { closedError, leaseLost, notFound, wrongState } from './errors.js';
import {
  type ConnectionLog,
  isConnectionError,
  isStoreUnavailable,
  PgConnection,
  storeUnavailable,
} from './pg-connection.js';
import { migratePostgres, POSTGRES_QUEUE_MIGRATIONS } from './postgres-schema.js';
import { byRunOrder, foldDepths, type ItemRow, listLimit, toClaimed, toItem, toJson } from './rows.js';
import { backoffDelayMs, errorMessage, QueueSettingsTable } from './settings.js';
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
  type SharedPoolOptions,
  type SharedSql,
  type StoreConnection,
  systemClock,
} from './types.js';

export interface PostgresQueueOptions extends QueueOptions {
  /**
   * The server ends a session of ours that sits this long inside a transaction, ms. Default 60000.
   * A peer whose machine vanishes mid-transaction sends no FIN: without this the server would keep
   * its row locks (and advisory locks) until TCP keepalive gives up, about 2 h on Linux, and the
   * fleet could not take those items over. Our transactions take milliseconds between statements.
   */
  idleInTransactionTimeoutMs?: number;

  /** postgres://user:pass@host:port/db (DATABASE_URL). */
  connectionString: string;
  /** Pool size per peer. Default 10. */
  maxConnections?: number;
  /** Where the loss and the recovery of the server are logged. */
  log?: ConnectionLog | undefined;
  /** Reconnect backoff, ms: first and longest delay. Defaults 250 and 10000. */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Migrations beyond the queue's own (features' shared tables), applied with them. */
  migrations?: readonly NamedMigration[];
}

/** A connect that hangs (a blackholed host) counts as a failure after this long, ms. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Longest a completion, failure or release waits for a lost server to come back, ms. */
const SETTLE_WAIT_MS = 30_000;
/** Tries of a completion, failure or release across an outage before it is given up. */
const SETTLE_TRIES = 5;

const INT8_OID = 20;
const INT8_MAX = 2n ** 63n - 1n;

/** Only a BIGINT can be an id; anything else is simply not found (never a database error). */
function isRowId(id: string): boolean {
  return /^\d{1,19}$/.test(id) && BigInt(id) <= INT8_MAX;
}

/** Times and ids are BIGINT: parse them as numbers (ms timestamps fit in 2^53). */
/** BIGINT as numbers: ms timestamps, ids and tokens fit in 2^53. */
export const pgTypes = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as never,
};

/**
 * Connects, applies the schema's named migrations, and returns the queue. An unreachable server is
 * no error: the queue starts `reconnecting` (every call refused with QB_ERR_STORE_UNAVAILABLE) and
 * connects and migrates in the background. Any other failure (bad credentials, a failing
 * migration) is thrown.
 */
export async function openPostgresQueue(options: PostgresQueueOptions): Promise<PostgresQueue> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.maxConnections ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    types: pgTypes,
    // Sent at connect: the server applies it to every session of this pool.
    idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 60_000,
  });
  const migrations = [...POSTGRES_QUEUE_MIGRATIONS, ...(options.migrations ?? [])];
  let migrated = false;
  const probe = async () => {
    const client = await pool.connect();
    // A checked-out client has no pool listener: a connection lost mid-migration would otherwise
    // be an unhandled 'error' that kills the process. The query itself rejects and says why.
    const ignore = () => {};
    client.on('error', ignore);
    try {
      if (migrated) await client.query('SELECT 1');
      else {
        await migratePostgres(client, migrations);
        migrated = true;
      }
    } catch (err) {
      client.off('error', ignore);
      client.release(err as Error);
      throw err;
    }
    client.off('error', ignore);
    client.release();
  };
  const connection = new PgConnection({
    probe,
    clock: options.clock ?? systemClock,
    log: options.log,
    ...options.reconnect,
  });
  // An idle client's error (server restart) must not crash the process; it also tells us the
  // server went away before any query does.
  pool.on('error', (err) => connection.translate(err));
  try {
    await probe();
  } catch (err) {
    if (!isConnectionError(err)) {
      await pool.end().catch(() => undefined);
      throw err;
    }
    connection.lost(err, true);
  }
  const newPool = (o: SharedPoolOptions) => {
    const extra = new pg.Pool({
      connectionString: options.connectionString,
      max: o.max,
      types: pgTypes,
      query_timeout: o.queryTimeoutMs,
      connectionTimeoutMillis: o.connectionTimeoutMs ?? CONNECT_TIMEOUT_MS,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? 60_000,
    });
    extra.on('error', () => undefined);
    // The pool listens for its idle clients' errors only; a client checked out when the server goes
    // away emits 'error' with no listener, an uncaught exception. Its query rejects and says why.
    extra.on('connect', (client) => client.on('error', () => undefined));
    return extra;
  };
  return new PostgresQueue(pool, options, connection, newPool);
}

type Exec = Pick<pg.ClientBase, 'query'>;

interface EnqueueRequest {
  queue: string;
  payload: string;
  key: string | null;
  maxAttempts: number;
  delayMs: number;
}

interface CompleteRequest {
  lease: Lease;
  result: string | null;
}

export class PostgresQueue implements Queue {
  readonly backend = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #settings: QueueSettingsTable;
  readonly #inflight = new Set<Promise<unknown>>();
  readonly #enqueues = new Batcher<EnqueueRequest, EnqueueResult>((batch) => this.#flushEnqueues(batch));
  readonly #completions = new Batcher<CompleteRequest, QueueItem>((batch) => this.#flushCompletions(batch));
  #closed = false;
  readonly #connection: PgConnection;
  readonly shared: SharedSql;

  constructor(
    pool: pg.Pool,
    options: QueueOptions,
    connection: PgConnection,
    newPool: (o: SharedPoolOptions) => pg.Pool,
  ) {
    this.shared = {
      query: <R>(text: string, params: unknown[] = []) =>
        this.#run(async () => (await this.#pool.query(text, params)).rows as R[]),
      newPool,
    };
    this.#pool = pool;
    this.#connection = connection;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#settings = new QueueSettingsTable(options);
  }

  define(queue: string, settings: Partial<QueueSettings>): void {
    this.#settings.define(queue, settings);
  }

  settings(queue: string): Readonly<QueueSettings> {
    return this.#settings.get(queue);
  }

  enqueue<P>(queue: string, payload: P, options: EnqueueOptions = {}): Promise<EnqueueResult<P>> {
    const maxAttempts = options.maxAttempts ?? this.#settings.get(queue).maxAttempts;
    return this.#run(() =>
      this.#enqueues.add({
        queue,
        payload: toJson(payload) ?? 'null',
        key: options.idempotencyKey ?? null,
        maxAttempts,
        delayMs: Math.max(0, options.delayMs ?? 0),
      }),
    ) as Promise<EnqueueResult<P>>;
  }

  /**
   * Group commit: the enqueues of one event-loop turn become one INSERT (one commit, one WAL
   * flush). Ids are drawn from the sequence first so that each request finds its own row; a key
   * that conflicts (with a stored item or an earlier one of the same batch) answers with that item.
   */
  async #flushEnqueues(batch: EnqueueRequest[]): Promise<Array<EnqueueResult | Error>> {
    const now = this.#clock.now();
    const { rows } = await this.#pool.query<{ ord: number; id: number; created: boolean }>(
      `WITH input AS MATERIALIZED (
         SELECT nextval(pg_get_serial_sequence('queue_items', 'id')) AS id, t.*
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bigint[]) WITH ORDINALITY AS t(q, p, k, m, r, ord)),
       ins AS (
         INSERT INTO queue_items (id, queue, state, payload, idempotency_key, max_attempts, run_at, created_at, updated_at)
         SELECT id, q, 'queued', p, k, m, r, $6, $6 FROM input ORDER BY ord
         ON CONFLICT (queue, idempotency_key) DO NOTHING
         RETURNING id)
       SELECT input.ord, input.id, (ins.id IS NOT NULL) AS created
       FROM input LEFT JOIN ins ON ins.id = input.id ORDER BY input.ord`,
      [
        batch.map((r) => r.queue),
        batch.map((r) => r.payload),
        batch.map((r) => r.key),
        batch.map((r) => r.maxAttempts),
        batch.map((r) => now + r.delayMs),
        now,
      ],
    );
    const conflicts = batch.filter((_, i) => !rows[i]?.created);
    const firsts = new Map<string, ItemRow>();
    if (conflicts.length > 0) {
      const found = await this.#pool.query<ItemRow>(
        `SELECT q.* FROM queue_items q
         JOIN unnest($1::text[], $2::text[]) AS k(queue, key) ON q.queue = k.queue AND q.idempotency_key = k.key`,
        [conflicts.map((r) => r.queue), conflicts.map((r) => r.key)],
      );
      for (const row of found.rows) firsts.set(`${row.queue}\u0000${row.idempotency_key}`, row);
    }
    return batch.map((req, i) => {
      const row = rows[i];
      if (row?.created) {
        return {
          created: true,
          item: toItem({
            id: row.id,
            queue: req.queue,
            state: 'queued',
            payload: req.payload,
            result: null,
            last_error: null,
            idempotency_key: req.key,
            attempts: 0,
            max_attempts: req.maxAttempts,
            run_at: now + req.delayMs,
            created_at: now,
            updated_at: now,
            finished_at: null,
            lease_owner: null,
            lease_token: 0,
            lease_expires_at: null,
            heartbeat_at: null,
          }),
        };
      }
      const first = firsts.get(`${req.queue}\u0000${req.key}`);
      // The first item vanished (pruned) between the two statements: the caller may simply retry.
      if (!first) return new QbError('QB_ERR_INTERNAL', `enqueue with key ${req.key} raced with pruning`);
      return { created: false, item: toItem(first) };
    });
  }

  claim<P>(queue: string, options: ClaimOptions): Promise<ClaimedItem<P>[]> {
    const settings = this.#settings.get(queue);
    const leaseMs = options.leaseMs ?? settings.leaseMs;
    const want = Math.max(0, Math.floor(options.limit ?? 1));
    const limited = Number.isFinite(settings.concurrency) || Number.isFinite(settings.concurrencyPerOwner);
    return this.#run(async () => {
      const now = this.#clock.now();
      // A lease that ran out counts as a failed attempt; the item is runnable at once (or dead), in
      // its old place in line (run_at = now would starve it behind a backlog that never drains).
      // SKIP LOCKED: rows another peer is sweeping or finishing right now are left to it.
      await this.#pool.query(
        `UPDATE queue_items
         SET state = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'failed' END,
             last_error = 'lease expired', run_at = LEAST(run_at, $1), updated_at = $1,
             finished_at = CASE WHEN attempts >= max_attempts THEN $1 ELSE NULL END
         WHERE id IN (SELECT id FROM queue_items
                      WHERE queue = $2 AND state = 'running' AND lease_expires_at <= $1
                      FOR UPDATE SKIP LOCKED)`,
        [now, queue],
      );
      if (want === 0) return [];
      if (!limited) return this.#pick<P>(this.#pool, queue, options.owner, now, leaseMs, want);
      // Counting running items and claiming must not interleave between peers: one advisory lock
      // per queue (held to the end of the transaction) makes the limit exact fleet-wide.
      return this.#tx(async (c) => {
        await c.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`qb.queue:${queue}`]);
        let limit = want;
        if (Number.isFinite(settings.concurrency)) {
          const r = await c.query<{ n: number }>(
            `SELECT COUNT(*)::int AS n FROM queue_items WHERE queue = $1 AND state = 'running'`,
            [queue],
          );
          limit = Math.min(limit, settings.concurrency - (r.rows[0]?.n ?? 0));
        }
        if (Number.isFinite(settings.concurrencyPerOwner)) {
          const r = await c.query<{ n: number }>(
            `SELECT COUNT(*)::int AS n FROM queue_items WHERE queue = $1 AND state = 'running' AND lease_owner = $2`,
            [queue, options.owner],
          );
          limit = Math.min(limit, settings.concurrencyPerOwner - (r.rows[0]?.n ?? 0));
        }
        if (limit <= 0) return [];
        return this.#pick<P>(c, queue, options.owner, now, leaseMs, limit);
      });
    });
  }

  async #pick<P>(
    db: Exec,
    queue: string,
    owner: string,
    now: number,
    leaseMs: number,
    limit: number,
  ): Promise<ClaimedItem<P>[]> {
    const { rows } = await db.query<ItemRow>(
      `WITH picked AS (
         SELECT id FROM queue_items
         WHERE queue = $1 AND state IN ('queued', 'failed') AND run_at <= $2
           AND NOT EXISTS (SELECT 1 FROM queue_control WHERE queue = $1 AND paused)
         ORDER BY run_at, id LIMIT $3
         FOR UPDATE SKIP LOCKED)
       UPDATE queue_items q
       SET state = 'running', attempts = q.attempts + 1, lease_owner = $4, lease_token = q.lease_token + 1,
           lease_expires_at = $5, heartbeat_at = $2, updated_at = $2
       FROM picked WHERE q.id = picked.id
       RETURNING q.*`,
      [queue, now, limit, owner, now + leaseMs],
    );
    return rows.sort(byRunOrder).map((row) => toClaimed<P>(row));
  }

  heartbeat(lease: Lease, extendMs?: number): Promise<Lease> {
    const ms = extendMs ?? this.#settings.get(lease.queue).leaseMs;
    return this.#run(async () => {
      const now = this.#clock.now();
      const { rows } = await this.#pool.query<{ lease_expires_at: number }>(
        `UPDATE queue_items SET lease_expires_at = $1, heartbeat_at = $2
         WHERE id = $3 AND state = 'running' AND lease_token = $4 AND lease_expires_at > $2
         RETURNING lease_expires_at`,
        [now + ms, now, lease.id, lease.token],
      );
      if (!rows[0]) throw leaseLost(lease);
      return { ...lease, expiresAt: rows[0].lease_expires_at };
    });
  }

  complete<R>(lease: Lease, result?: R): Promise<QueueItem<unknown, R>> {
    const json = toJson(result);
    return this.#settle(lease, () => this.#completions.add({ lease, result: json })) as Promise<
      QueueItem<unknown, R>
    >;
  }

  /** Group commit of the completions of one event-loop turn: one UPDATE, each fenced by its token. */
  async #flushCompletions(batch: CompleteRequest[]): Promise<Array<QueueItem | Error>> {
    const now = this.#clock.now();
    const { rows } = await this.#pool.query<ItemRow>(
      `UPDATE queue_items q SET state = 'completed', result = v.result, finished_at = $4, updated_at = $4
       FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS v(id, token, result)
       WHERE q.id = v.id AND q.state = 'running' AND q.lease_token = v.token AND q.lease_expires_at > $4
       RETURNING q.*`,
      [batch.map((r) => r.lease.id), batch.map((r) => r.lease.token), batch.map((r) => r.result), now],
    );
    const done = new Map(rows.map((row) => [`${row.id}/${row.lease_token}`, row]));
    return batch.map((req) => {
      const key = `${req.lease.id}/${req.lease.token}`;
      const row = done.get(key);
      // Each completed row answers one request; a second completion of the same lease is refused.
      done.delete(key);
      return row ? toItem(row) : leaseLost(req.lease);
    });
  }

  fail(lease: Lease, error: unknown, options: FailOptions = {}): Promise<QueueItem> {
    const settings = this.#settings.get(lease.queue);
    const message = errorMessage(error);
    return this.#settle(lease, () =>
      this.#tx(async (c) => {
        const now = this.#clock.now();
        const held = await c.query<ItemRow>(
          `SELECT * FROM queue_items
           WHERE id = $1 AND state = 'running' AND lease_token = $2 AND lease_expires_at > $3
           FOR UPDATE`,
          [lease.id, lease.token, now],
        );
        const row = held.rows[0];
        if (!row) throw leaseLost(lease);
        const dead = options.permanent === true || row.attempts >= row.max_attempts;
        const delay = options.retryInMs ?? backoffDelayMs(settings, row.attempts, this.#random);
        const updated = await c.query<ItemRow>(
          `UPDATE queue_items SET state = $1, last_error = $2, run_at = $3, updated_at = $4, finished_at = $5
           WHERE id = $6 RETURNING *`,
          [dead ? 'dead' : 'failed', message, dead ? now : now + delay, now, dead ? now : null, lease.id],
        );
        return toItem(updated.rows[0] as ItemRow);
      }),
    );
  }

  release(lease: Lease, options: ReleaseOptions = {}): Promise<QueueItem> {
    const delay = Math.max(0, options.delayMs ?? 0);
    return this.#settle(lease, async () => {
      const now = this.#clock.now();
      // The claim's attempt is taken back; the token moves on so the released lease stays fenced.
      const { rows } = await this.#pool.query<ItemRow>(
        `UPDATE queue_items
         SET attempts = GREATEST(attempts - 1, 0), state = CASE WHEN attempts > 1 THEN 'failed' ELSE 'queued' END,
             lease_token = lease_token + 1, run_at = $1, updated_at = $2
         WHERE id = $3 AND state = 'running' AND lease_token = $4 AND lease_expires_at > $2
         RETURNING *`,
        [now + delay, now, lease.id, lease.token],
      );
      if (!rows[0]) throw leaseLost(lease);
      return toItem(rows[0]);
    });
  }

  get<P = unknown, R = unknown>(id: string): Promise<QueueItem<P, R> | null> {
    return this.#run(async () => {
      const row = await this.#row(this.#pool, id);
      return row ? toItem<P, R>(row) : null;
    });
  }

  list<P = unknown>(filter: ListFilter = {}): Promise<ListPage<P>> {
    return this.#run(async () => {
      const limit = listLimit(filter.limit);
      const where: string[] = [];
      const params: unknown[] = [];
      const add = (clause: string, value: unknown) => {
        params.push(value);
        where.push(clause.replace('?', `$${params.length}`));
      };
      if (filter.queue !== undefined) add('queue = ?', filter.queue);
      if (filter.state !== undefined) add('state = ?', filter.state);
      if (filter.before !== undefined) add('id < ?', Number(filter.before));
      params.push(limit + 1);
      const { rows } = await this.#pool.query<ItemRow>(
        `SELECT * FROM queue_items ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
         ORDER BY id DESC LIMIT $${params.length}`,
        params,
      );
      const page = rows.slice(0, limit).map((row) => toItem<P>(row));
      return { items: page, nextCursor: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
    });
  }

  retry(id: string): Promise<QueueItem> {
    return this.#run(async () => {
      if (!isRowId(id)) throw notFound(id);
      const now = this.#clock.now();
      const { rows } = await this.#pool.query<ItemRow>(
        `UPDATE queue_items SET state = 'queued', attempts = 0, run_at = $1, updated_at = $1, finished_at = NULL
         WHERE id = $2 AND state IN ('dead', 'failed', 'cancelled') RETURNING *`,
        [now, id],
      );
      if (rows[0]) return toItem(rows[0]);
      throw await this.#whyNot(id, 'retry', 'dead, failed or cancelled');
    });
  }

  cancel(id: string): Promise<QueueItem> {
    return this.#run(async () => {
      if (!isRowId(id)) throw notFound(id);
      const now = this.#clock.now();
      const { rows } = await this.#pool.query<ItemRow>(
        `UPDATE queue_items SET state = 'cancelled', finished_at = $1, updated_at = $1
         WHERE id = $2 AND state IN ('queued', 'failed') RETURNING *`,
        [now, id],
      );
      if (rows[0]) return toItem(rows[0]);
      throw await this.#whyNot(id, 'cancel', 'queued or failed');
    });
  }

  pause(queue: string): Promise<void> {
    return this.#setPaused(queue, true);
  }

  resume(queue: string): Promise<void> {
    return this.#setPaused(queue, false);
  }

  isPaused(queue: string): Promise<boolean> {
    return this.#run(async () => {
      const { rows } = await this.#pool.query('SELECT 1 FROM queue_control WHERE queue = $1 AND paused', [
        queue,
      ]);
      return rows.length > 0;
    });
  }

  depths(): Promise<Record<string, QueueDepths>> {
    return this.#run(async () => {
      const { rows } = await this.#pool.query<{ queue: string; state: QueueItemState; n: number }>(
        'SELECT queue, state, COUNT(*)::int AS n FROM queue_items GROUP BY queue, state',
      );
      return foldDepths(rows, this.#settings.defined());
    });
  }

  prune(): Promise<number> {
    return this.#run(async () => {
      const now = this.#clock.now();
      const { rows } = await this.#pool.query<{ queue: string }>('SELECT DISTINCT queue FROM queue_items');
      let removed = 0;
      for (const { queue } of rows) {
        const r = await this.#pool.query(
          `DELETE FROM queue_items WHERE queue = $1 AND state IN ('completed', 'cancelled') AND finished_at <= $2`,
          [queue, now - this.#settings.get(queue).retentionMs],
        );
        removed += r.rowCount ?? 0;
      }
      return removed;
    });
  }

  connection(): StoreConnection {
    return this.#connection.view();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#connection.close();
    await Promise.allSettled([...this.#inflight]);
    await this.#pool.end();
  }

  #setPaused(queue: string, paused: boolean): Promise<void> {
    return this.#run(async () => {
      await this.#pool.query(
        `INSERT INTO queue_control (queue, paused) VALUES ($1, $2)
         ON CONFLICT (queue) DO UPDATE SET paused = excluded.paused`,
        [queue, paused],
      );
    });
  }

  async #row(db: Exec, id: string): Promise<ItemRow | undefined> {
    if (!isRowId(id)) return undefined;
    const { rows } = await db.query<ItemRow>('SELECT * FROM queue_items WHERE id = $1', [id]);
    return rows[0];
  }

  async #whyNot(id: string, action: string, allowed: string): Promise<Error> {
    const row = await this.#row(this.#pool, id);
    return row ? wrongState(id, row.state, action, allowed) : notFound(id);
  }

  /**
   * Runs one operation, refused after close and while the server is unreachable (at once, rather
   * than waiting on a dead server); close waits for the ones under way. A connection error becomes
   * QB_ERR_STORE_UNAVAILABLE and starts the reconnect loop.
   */
  #run<T>(op: () => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(closedError());
    if (!this.#connection.connected) return Promise.reject(storeUnavailable());
    const p = op().catch((err: unknown) => {
      throw this.#connection.translate(err);
    });
    this.#inflight.add(p);
    const forget = () => this.#inflight.delete(p);
    p.then(forget, forget);
    return p;
  }

  /**
   * The outcome of a leased item (complete, fail, release) must not be dropped for a short outage:
   * it waits for the server and tries again, a few times and no longer than the lease could still
   * be valid. Given up, the error is thrown; the lease then runs out and the item runs again.
   * (A commit whose answer was lost may be tried twice: the second is refused as lease lost.)
   */
  async #settle<T>(lease: Lease, op: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.#run(op);
      } catch (err) {
        const left = lease.expiresAt - this.#clock.now();
        if (!isStoreUnavailable(err) || tries >= SETTLE_TRIES || left <= 0 || this.#closed) throw err;
        if (!(await this.#connection.whenConnected(Math.min(left, SETTLE_WAIT_MS)))) throw err;
      }
    }
  }

  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect();
    let broken: Error | undefined;
    // The pool listens for the errors of idle clients only: a connection lost while this one is
    // checked out emits 'error' with no listener, an uncaught exception that kills the process.
    // The query under way fails with it anyway; keep it to discard the client.
    const lost = (err: Error) => {
      broken = err;
    };
    c.on('error', lost);
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch((e: Error) => {
        broken = e;
      });
      throw err;
    } finally {
      c.off('error', lost);
      c.release(broken);
    }
  }
}
