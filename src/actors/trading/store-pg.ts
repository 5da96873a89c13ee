/**
 * The trading ledger in the fleet's PostgreSQL (DATABASE_URL), so a peer that takes an account over
 * continues from the ledger its previous holder left.
 *
 * Why a write-through cache rather than an async store interface: the fill model, the brokers and
 * the protections read and write the ledger many times per decision, synchronously, and their
 * "all of it or none" units are small synchronous blocks (`transaction(fn)`). Keeping them
 * synchronous keeps that code identical for both backends; the price is that a write is durable
 * only at `flush()`, which the engine awaits at the end of every tick and the live broker awaits
 * between writing an order's row and sending the order. A paper order is nothing outside this
 * ledger, so a crash before its flush loses nothing anyone saw; a live order is never sent before
 * its row is committed.
 *
 * Every flush is fenced: in the same transaction it locks the account's lease row (FOR SHARE, so a
 * takeover waits for it) and writes only if the row still holds this store's token, holder and an
 * unexpired expiry by the database's clock. A stale holder's flush fails with
 * QB_ERR_TRADING_LEASE_LOST and commits nothing.
 */
import type pg from 'pg';
import { QbError } from '../../errors.js';
import { migratePostgres } from '../../queue/postgres-schema.js';
import type { FillPiece, Side } from './fill-model.js';
import type { Fence } from './lease.js';
import { openingLedger } from './ledger.js';
import { POSTGRES_TRADING_MIGRATIONS } from './pg-schema.js';
import type { ProtectionName } from './protections.js';
import { type AccountRecord, type FillRecord, type LedgerStore, type OrderRecord, utcDay } from './store.js';
import { toFill, toOrder } from './store-pg-rows.js';

/** How much of the ledger the cache keeps: open orders always, the newest others and fills. */
const MAX_CACHED_ORDERS = 20_000;
const MAX_CACHED_FILLS = 1_000;
const MAX_EQUITY_POINTS = 10_080;

interface Op {
  text: string;
  values: unknown[];
}

export class LeaseLost extends QbError {
  constructor(message: string) {
    super('QB_ERR_TRADING_LEASE_LOST', message);
  }
}

export class PgTradingStore implements LedgerStore {
  private fence: Fence | null = null;
  private pending: Op[] = [];
  private inTransaction = false;
  private migrated = false;
  private flushing: Promise<void> = Promise.resolve();
  private accountRecord: AccountRecord | undefined;
  private readonly orders = new Map<string, OrderRecord>();
  private readonly byClientId = new Map<string, OrderRecord>();
  private fillCache: FillRecord[] = [];
  private nextSeq = 1;
  private protections = new Map<ProtectionName, { reason: string; trippedAt: number }>();
  private equity = new Map<number, number>();

  constructor(
    private readonly pool: pg.Pool,
    readonly account: string,
  ) {}

  async load(fence: Fence | null = null): Promise<void> {
    if (!this.migrated) {
      const client = await this.pool.connect();
      try {
        await migratePostgres(client, POSTGRES_TRADING_MIGRATIONS);
      } finally {
        client.release();
      }
      this.migrated = true;
    }
    // Wait for a flush in flight, then read everything in one snapshot.
    await this.flushing.catch(() => undefined);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const a = this.account;
      const account = await client.query(
        'SELECT quote, state, day, day_equity FROM trading_account WHERE account = $1',
        [a],
      );
      // Every open order, and the newest others (client order ids of recent decisions stay known;
      // the unique index refuses an older repeat anyway).
      const orders = await client.query(
        `SELECT * FROM trading_order WHERE account = $1 AND status = 'open'
         UNION
         (SELECT * FROM trading_order WHERE account = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
         ORDER BY created_at DESC, id DESC`,
        [a, MAX_CACHED_ORDERS],
      );
      const fills = await client.query(
        'SELECT * FROM trading_fill WHERE account = $1 ORDER BY seq DESC LIMIT $2',
        [a, MAX_CACHED_FILLS],
      );
      const protections = await client.query(
        'SELECT name, reason, tripped_at FROM trading_protection WHERE account = $1',
        [a],
      );
      const equity = await client.query(
        'SELECT at, equity FROM trading_equity WHERE account = $1 ORDER BY at DESC LIMIT $2',
        [a, MAX_EQUITY_POINTS],
      );
      await client.query('COMMIT');
      const row = account.rows[0];
      this.accountRecord = row
        ? { quote: row.quote, state: JSON.parse(row.state), day: row.day, dayEquity: row.day_equity }
        : undefined;
      this.orders.clear();
      this.byClientId.clear();
      for (const r of [...orders.rows].reverse()) this.cacheOrder(toOrder(r));
      this.fillCache = fills.rows.reverse().map(toFill);
      this.nextSeq = (this.fillCache.at(-1)?.seq ?? 0) + 1;
      this.protections = new Map(
        protections.rows.map((r) => [
          r.name as ProtectionName,
          { reason: r.reason, trippedAt: r.tripped_at },
        ]),
      );
      this.equity = new Map(equity.rows.reverse().map((r) => [r.at as number, r.equity as number]));
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    this.pending = [];
    this.fence = fence;
  }

  flush(): Promise<void> {
    const ops = this.pending;
    this.pending = [];
    const fence = this.fence;
    const run = this.flushing.catch(() => undefined).then(() => this.commit(ops, fence));
    this.flushing = run;
    return run;
  }

  private async commit(ops: Op[], fence: Fence | null): Promise<void> {
    if (ops.length === 0) return;
    if (!fence) throw new LeaseLost(`this peer does not hold the lease of ${this.account}: nothing written`);
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      // The fence: the lease row must still be ours, unexpired by the database's clock. FOR SHARE
      // makes a takeover (an UPDATE of that row) wait until this transaction ends.
      const held = await client.query(
        `SELECT 1 FROM trading_lease
         WHERE account = $1 AND token = $2 AND holder_peer = $3 AND holder_boot = $4 AND expires_at > now()
         FOR SHARE`,
        [this.account, fence.token, fence.peerId, fence.bootId],
      );
      if (held.rowCount === 0) {
        throw new LeaseLost(
          `ledger write refused: lease token ${fence.token} of ${this.account} is no longer held by this peer`,
        );
      }
      for (const op of ops) await client.query(op.text, op.values);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  private write(text: string, values: unknown[]): void {
    this.pending.push({ text, values });
  }

  private stamp(): [number | null, string | null] {
    return [this.fence?.token ?? null, this.fence ? `${this.fence.peerId}/${this.fence.bootId}` : null];
  }

  loadAccount(quote: string, startingBalance: number, now: number): AccountRecord {
    if (this.accountRecord) return this.accountRecord;
    const fresh: AccountRecord = {
      quote,
      state: openingLedger(quote, startingBalance),
      day: utcDay(now),
      dayEquity: startingBalance,
    };
    this.saveAccount(fresh, now);
    return fresh;
  }

  saveAccount(a: AccountRecord, now: number): void {
    this.accountRecord = a;
    this.write(
      `INSERT INTO trading_account (account, quote, state, day, day_equity, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (account) DO UPDATE SET state = EXCLUDED.state, day = EXCLUDED.day,
         day_equity = EXCLUDED.day_equity, updated_at = EXCLUDED.updated_at`,
      [this.account, a.quote, JSON.stringify(a.state), a.day, a.dayEquity, now],
    );
  }

  insertOrder(o: OrderRecord): void {
    this.cacheOrder({ ...o });
    const [token, holder] = this.stamp();
    this.write(
      `INSERT INTO trading_order (id, client_order_id, exchange_id, account, symbol, side, type, amount, price,
         status, filled, average, fee, reason, created_at, updated_at, lease_token, holder)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
      [
        o.id,
        o.clientOrderId,
        o.exchangeId ?? null,
        this.account,
        o.symbol,
        o.side,
        o.type,
        o.amount,
        o.price,
        o.status,
        o.filled,
        o.average,
        o.fee,
        o.reason,
        o.createdAt,
        o.updatedAt,
        token,
        holder,
      ],
    );
  }

  updateOrder(o: OrderRecord): void {
    const cached = this.orders.get(o.id);
    if (cached) Object.assign(cached, o);
    this.write(
      `UPDATE trading_order SET status = $1, filled = $2, average = $3, fee = $4, reason = $5, exchange_id = $6,
         updated_at = $7 WHERE id = $8 AND account = $9`,
      [o.status, o.filled, o.average, o.fee, o.reason, o.exchangeId ?? null, o.updatedAt, o.id, this.account],
    );
  }

  orderByClientId(clientOrderId: string): OrderRecord | undefined {
    const o = this.byClientId.get(clientOrderId);
    return o && { ...o };
  }

  openOrders(): OrderRecord[] {
    return [...this.orders.values()].filter((o) => o.status === 'open').map((o) => ({ ...o }));
  }

  recentOrders(limit: number): OrderRecord[] {
    return [...this.orders.values()]
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1))
      .slice(0, limit)
      .map((o) => ({ ...o }));
  }

  orderTimesSince(since: number): number[] {
    return [...this.orders.values()].filter((o) => o.createdAt >= since).map((o) => o.createdAt);
  }

  insertFill(orderId: string, symbol: string, side: Side, piece: FillPiece, at: number): void {
    const seq = this.nextSeq++;
    this.fillCache.push({ seq, orderId, symbol, side, ...piece, at });
    if (this.fillCache.length > MAX_CACHED_FILLS) this.fillCache.shift();
    const [token, holder] = this.stamp();
    this.write(
      `INSERT INTO trading_fill (order_id, account, symbol, side, price, amount, fee, role, at, lease_token, holder)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        orderId,
        this.account,
        symbol,
        side,
        piece.price,
        piece.amount,
        piece.fee,
        piece.role,
        at,
        token,
        holder,
      ],
    );
  }

  fills(limit: number): FillRecord[] {
    return this.fillCache.slice(-limit).reverse();
  }

  latchedProtections(): Map<ProtectionName, { reason: string; trippedAt: number }> {
    return new Map(this.protections);
  }

  trip(name: ProtectionName, reason: string, at: number): void {
    if (this.protections.has(name)) return;
    this.protections.set(name, { reason, trippedAt: at });
    this.write(
      `INSERT INTO trading_protection (account, name, reason, tripped_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING`,
      [this.account, name, reason, at],
    );
  }

  /** Only the lease holder's ledger is the account's: elsewhere a reset would be dropped, so it is refused. */
  reset(name: ProtectionName): boolean {
    if (!this.fence)
      throw new LeaseLost(
        `this peer does not trade ${this.account}: reset the protection on the peer that holds the account lease`,
      );
    if (!this.protections.delete(name)) return false;
    this.write('DELETE FROM trading_protection WHERE account = $1 AND name = $2', [this.account, name]);
    return true;
  }

  recordEquity(at: number, equity: number): void {
    const minute = Math.floor(at / 60_000) * 60_000;
    this.equity.set(minute, equity);
    const oldest = minute - 7 * 24 * 3_600_000;
    for (const key of this.equity.keys()) {
      if (key >= oldest) break;
      this.equity.delete(key);
    }
    this.write(
      `INSERT INTO trading_equity (account, at, equity) VALUES ($1, $2, $3)
       ON CONFLICT (account, at) DO UPDATE SET equity = EXCLUDED.equity`,
      [this.account, minute, equity],
    );
    if (minute % 3_600_000 === 0)
      this.write('DELETE FROM trading_equity WHERE account = $1 AND at < $2', [this.account, oldest]);
  }

  equityCurve(limit: number): { at: number; equity: number }[] {
    return [...this.equity.entries()]
      .sort((a, b) => a[0] - b[0])
      .slice(-limit)
      .map(([at, equity]) => ({ at, equity }));
  }

  /**
   * The writes of `fn` go into the same flush, which is one PostgreSQL transaction; if `fn` throws,
   * they are dropped (the cache may hold part of them until the next load, which the engine does
   * after any failure).
   */
  transaction<T>(fn: () => T): T {
    if (this.inTransaction) return fn();
    const mark = this.pending.length;
    this.inTransaction = true;
    try {
      return fn();
    } catch (err) {
      this.pending.length = mark;
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  private cacheOrder(o: OrderRecord): void {
    this.orders.set(o.id, o);
    this.byClientId.set(o.clientOrderId, o);
    if (this.orders.size <= MAX_CACHED_ORDERS) return;
    for (const [id, old] of this.orders) {
      if (old.status === 'open') continue;
      this.orders.delete(id);
      this.byClientId.delete(old.clientOrderId);
      break;
    }
  }
}
