/**
 * The trading ledger: ledger state, orders, fills, latched protections and the equity curve.
 * `LedgerStore` is what the brokers and the engine use; `TradingStore` below keeps it in SQLite
 * (each peer's own DATA_DIR), `PgTradingStore` (store-pg.ts) in the fleet's PostgreSQL.
 * Every change that belongs together (an order's fill, its ledger update, its fill row) commits in
 * one transaction, so a kill -9 leaves either all of it or none.
 */
import type { Db } from '../../store/db.js';
import type { FillPiece, Side } from './fill-model.js';
import type { Fence } from './lease.js';
import { type LedgerState, openingLedger } from './ledger.js';
import type { ProtectionName } from './protections.js';

export type OrderStatus = 'open' | 'closed' | 'canceled' | 'rejected';
export type OrderType = 'market' | 'limit';

export interface OrderRecord {
  id: string;
  clientOrderId: string;
  /** The exchange's id of a live order, once known. */
  exchangeId?: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  amount: number;
  price: number | null;
  status: OrderStatus;
  filled: number;
  average: number | null;
  fee: number;
  reason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface FillRecord {
  seq: number;
  orderId: string;
  symbol: string;
  side: Side;
  price: number;
  amount: number;
  fee: number;
  role: string;
  at: number;
}

export interface AccountRecord {
  quote: string;
  state: LedgerState;
  /** UTC date (YYYY-MM-DD) of `dayEquity`. */
  day: string;
  /** Equity at the first mark of `day`: the base of the daily loss limit. */
  dayEquity: number;
}

interface OrderRow {
  id: string;
  client_order_id: string;
  exchange_id: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  amount: number;
  price: number | null;
  status: OrderStatus;
  filled: number;
  average: number | null;
  fee: number;
  reason: string | null;
  created_at: number;
  updated_at: number;
}

const toOrder = (r: OrderRow): OrderRecord => ({
  id: r.id,
  clientOrderId: r.client_order_id,
  exchangeId: r.exchange_id,
  symbol: r.symbol,
  side: r.side,
  type: r.type,
  amount: r.amount,
  price: r.price,
  status: r.status,
  filled: r.filled,
  average: r.average,
  fee: r.fee,
  reason: r.reason,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

/**
 * The ledger as the brokers and the engine see it. Reads and writes are synchronous; a backend
 * whose database is remote keeps a write-through cache and commits the writes in `flush()`, which
 * the engine awaits after every tick and the live broker awaits before an order leaves (so
 * "committed before the order is sent" holds for both backends).
 */
export interface LedgerStore {
  readonly account: string;
  /**
   * (Re)loads the ledger from the database and writes from now on under `fence` (the account
   * lease), dropping writes not yet committed. SQLite: nothing to do.
   */
  load(fence?: Fence | null): Promise<void>;
  /** Commits the writes made since the last flush, or throws (then none of them is committed). */
  flush(): Promise<void>;
  loadAccount(quote: string, startingBalance: number, now: number): AccountRecord;
  saveAccount(a: AccountRecord, now: number): void;
  insertOrder(o: OrderRecord): void;
  updateOrder(o: OrderRecord): void;
  orderByClientId(clientOrderId: string): OrderRecord | undefined;
  openOrders(): OrderRecord[];
  recentOrders(limit: number): OrderRecord[];
  orderTimesSince(since: number): number[];
  insertFill(orderId: string, symbol: string, side: Side, piece: FillPiece, at: number): void;
  fills(limit: number): FillRecord[];
  latchedProtections(): Map<ProtectionName, { reason: string; trippedAt: number }>;
  trip(name: ProtectionName, reason: string, at: number): void;
  /** Operator reset of a latched protection; true when one was latched. */
  reset(name: ProtectionName): boolean;
  recordEquity(at: number, equity: number): void;
  equityCurve(limit: number): { at: number; equity: number }[];
  /** Runs `fn`; its writes commit together or not at all. */
  transaction<T>(fn: () => T): T;
}

/** The ledger in the peer's SQLite: every write commits when it is made. */
export class TradingStore implements LedgerStore {
  private readonly s: Statements;

  constructor(
    private readonly db: Db,
    readonly account: string,
  ) {
    this.s = prepare(db);
  }

  async load(): Promise<void> {}

  async flush(): Promise<void> {}

  /** The account, opened with `startingBalance` of `quote` the first time. */
  loadAccount(quote: string, startingBalance: number, now: number): AccountRecord {
    const row = this.s.account.get(this.account) as
      | { quote: string; state: string; day: string; day_equity: number }
      | undefined;
    if (row)
      return { quote: row.quote, state: JSON.parse(row.state), day: row.day, dayEquity: row.day_equity };
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
    this.s.saveAccount.run(this.account, a.quote, JSON.stringify(a.state), a.day, a.dayEquity, now);
  }

  insertOrder(o: OrderRecord): void {
    this.s.insertOrder.run({ exchangeId: null, ...o, account: this.account });
  }

  updateOrder(o: OrderRecord): void {
    this.s.updateOrder.run({ exchangeId: null, ...o, account: this.account });
  }

  orderByClientId(clientOrderId: string): OrderRecord | undefined {
    const r = this.s.orderByClientId.get(this.account, clientOrderId) as OrderRow | undefined;
    return r && toOrder(r);
  }

  openOrders(): OrderRecord[] {
    return (this.s.openOrders.all(this.account) as OrderRow[]).map(toOrder);
  }

  recentOrders(limit: number): OrderRecord[] {
    return (this.s.recentOrders.all(this.account, limit) as OrderRow[]).map(toOrder);
  }

  orderTimesSince(since: number): number[] {
    return (this.s.orderTimesSince.all(this.account, since) as { created_at: number }[]).map(
      (r) => r.created_at,
    );
  }

  insertFill(orderId: string, symbol: string, side: Side, piece: FillPiece, at: number): void {
    this.s.insertFill.run(
      orderId,
      this.account,
      symbol,
      side,
      piece.price,
      piece.amount,
      piece.fee,
      piece.role,
      at,
    );
  }

  fills(limit: number): FillRecord[] {
    return (this.s.fills.all(this.account, limit) as Record<string, unknown>[]).map((r) => ({
      seq: r.seq as number,
      orderId: r.order_id as string,
      symbol: r.symbol as string,
      side: r.side as Side,
      price: r.price as number,
      amount: r.amount as number,
      fee: r.fee as number,
      role: r.role as string,
      at: r.at as number,
    }));
  }

  latchedProtections(): Map<ProtectionName, { reason: string; trippedAt: number }> {
    const rows = this.s.protections.all(this.account) as {
      name: ProtectionName;
      reason: string;
      tripped_at: number;
    }[];
    return new Map(rows.map((r) => [r.name, { reason: r.reason, trippedAt: r.tripped_at }]));
  }

  trip(name: ProtectionName, reason: string, at: number): void {
    this.s.trip.run(this.account, name, reason, at);
  }

  /** Operator reset of a latched protection; true when one was latched. */
  reset(name: ProtectionName): boolean {
    return this.s.reset.run(this.account, name).changes > 0;
  }

  /** One point of the equity curve per minute; a week is kept. */
  recordEquity(at: number, equity: number): void {
    const minute = Math.floor(at / 60_000) * 60_000;
    this.s.equityPoint.run(this.account, minute, equity);
    this.s.pruneEquity.run(this.account, minute - 7 * 24 * 3_600_000);
  }

  equityCurve(limit: number): { at: number; equity: number }[] {
    return (this.s.equityCurve.all(this.account, limit) as { at: number; equity: number }[]).reverse();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

type Statements = ReturnType<typeof prepare>;

function prepare(db: Db) {
  return {
    account: db.prepare('SELECT quote, state, day, day_equity FROM trading_account WHERE account = ?'),
    saveAccount: db.prepare(
      `INSERT INTO trading_account (account, quote, state, day, day_equity, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (account) DO UPDATE SET state = excluded.state, day = excluded.day,
         day_equity = excluded.day_equity, updated_at = excluded.updated_at`,
    ),
    insertOrder: db.prepare(
      `INSERT INTO trading_order (id, client_order_id, exchange_id, account, symbol, side, type, amount, price,
         status, filled, average, fee, reason, created_at, updated_at)
       VALUES (@id, @clientOrderId, @exchangeId, @account, @symbol, @side, @type, @amount, @price,
         @status, @filled, @average, @fee, @reason, @createdAt, @updatedAt)`,
    ),
    updateOrder: db.prepare(
      `UPDATE trading_order SET status = @status, filled = @filled, average = @average, fee = @fee,
         reason = @reason, exchange_id = @exchangeId, updated_at = @updatedAt
       WHERE id = @id AND account = @account`,
    ),
    orderByClientId: db.prepare('SELECT * FROM trading_order WHERE account = ? AND client_order_id = ?'),
    openOrders: db.prepare(
      "SELECT * FROM trading_order WHERE account = ? AND status = 'open' ORDER BY created_at",
    ),
    recentOrders: db.prepare(
      'SELECT * FROM trading_order WHERE account = ? ORDER BY created_at DESC, id DESC LIMIT ?',
    ),
    orderTimesSince: db.prepare('SELECT created_at FROM trading_order WHERE account = ? AND created_at >= ?'),
    insertFill: db.prepare(
      `INSERT INTO trading_fill (order_id, account, symbol, side, price, amount, fee, role, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    fills: db.prepare('SELECT * FROM trading_fill WHERE account = ? ORDER BY seq DESC LIMIT ?'),
    protections: db.prepare('SELECT name, reason, tripped_at FROM trading_protection WHERE account = ?'),
    trip: db.prepare(
      'INSERT OR IGNORE INTO trading_protection (account, name, reason, tripped_at) VALUES (?, ?, ?, ?)',
    ),
    reset: db.prepare('DELETE FROM trading_protection WHERE account = ? AND name = ?'),
    equityPoint: db.prepare('INSERT OR REPLACE INTO trading_equity (account, at, equity) VALUES (?, ?, ?)'),
    equityCurve: db.prepare(
      'SELECT at, equity FROM trading_equity WHERE account = ? ORDER BY at DESC LIMIT ?',
    ),
    pruneEquity: db.prepare('DELETE FROM trading_equity WHERE account = ? AND at < ?'),
  };
}
