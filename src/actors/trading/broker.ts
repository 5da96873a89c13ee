/**
 * What the engine trades through: the paper broker (paper-broker.ts) or the live one
 * (live-broker.ts). Methods may answer synchronously (paper) or asynchronously (live); the engine
 * awaits both.
 */
import type { Side } from './fill-model.js';
import type { OrderBook } from './market.js';
import type { AccountRecord, OrderRecord, OrderType } from './store.js';

export interface OrderRequest {
  clientOrderId: string;
  symbol: string;
  side: Side;
  type: OrderType;
  /** Base currency. */
  amount: number;
  /** Limit price; required for limit orders. */
  price?: number;
}

/** An order the broker refuses before it reaches the market (amount, price, unknown symbol). */
export class OrderRejected extends Error {}

export interface Broker {
  readonly state: AccountRecord;
  /** Brings orders and balances in line with the exchange; the engine places nothing before it. */
  reconcile(): Promise<void> | void;
  /** Places an order; a repeated client order id returns the first order and places nothing. */
  place(req: OrderRequest, book: OrderBook): Promise<OrderRecord> | OrderRecord;
  /** Lets resting orders fill (paper) or refreshes their state (live). */
  onBook(book: OrderBook): Promise<unknown> | unknown;
  /** Cancels every open order; returns how many. */
  cancelAll(reason: string): Promise<number> | number;
  /** Marks the account to market: drawdown, the day's starting equity, the equity curve. */
  mark(marks: Record<string, number>): void;
}

/** A new order's record: open, nothing filled yet. */
export function newOrder(
  id: string,
  req: OrderRequest,
  now: number,
  reason: string | null = null,
): OrderRecord {
  return {
    id,
    clientOrderId: req.clientOrderId,
    exchangeId: null,
    symbol: req.symbol,
    side: req.side,
    type: req.type,
    amount: req.amount,
    price: req.price ?? null,
    status: 'open',
    filled: 0,
    average: null,
    fee: 0,
    reason,
    createdAt: now,
    updatedAt: now,
  };
}
