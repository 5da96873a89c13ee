/**
 * The paper broker: places, fills and cancels orders of the paper account against live (or
 * simulated) order books through the fill model, and books every fill in the ledger. Funds held by
 * open orders are reserved, so two open orders never spend the same balance. Placing is idempotent
 * by client order id: a repeat returns the first order and places nothing.
 */
import { randomUUID } from 'node:crypto';
import { type Broker, newOrder, OrderRejected, type OrderRequest } from './broker.js';
import { BookLiquidity, type FillPolicy, type FillResult, fillLimit, fillMarket } from './fill-model.js';
import { applyFill, equity, InsufficientFunds, markToMarket } from './ledger.js';
import type { MarketInfo, OrderBook } from './market.js';
import { type AccountRecord, type LedgerStore, type OrderRecord, utcDay } from './store.js';

export class PaperBroker implements Broker {
  private account: AccountRecord;
  private readonly liquidity = new Map<string, BookLiquidity>();

  constructor(
    private readonly store: LedgerStore,
    private readonly markets: ReadonlyMap<string, MarketInfo>,
    quote: string,
    startingBalance: number,
    private readonly policy: FillPolicy,
    private readonly now: () => number,
  ) {
    this.account = store.loadAccount(quote, startingBalance, now());
  }

  get state(): AccountRecord {
    return this.account;
  }

  /** The paper account is its own exchange: nothing to reconcile. */
  reconcile(): void {}

  /** Places an order and fills what the book allows now. A repeated client order id returns the first. */
  place(req: OrderRequest, book: OrderBook): OrderRecord {
    const existing = this.store.orderByClientId(req.clientOrderId);
    if (existing) return existing;
    const market = this.market(req.symbol);
    if (!(req.amount > 0) || req.amount < market.minAmount) {
      throw new OrderRejected(`amount ${req.amount} is below the market minimum ${market.minAmount}`);
    }
    if (req.type === 'limit' && !(req.price && req.price > 0))
      throw new OrderRejected('a limit order needs a price');
    const reference =
      req.type === 'limit'
        ? (req.price as number)
        : ((req.side === 'buy' ? book.asks[0]?.[0] : book.bids[0]?.[0]) ?? 0);
    const worst =
      req.type === 'market' && req.side === 'buy' ? reference * (1 + this.policy.maxSlippage) : reference;
    this.checkFunds(req, market, worst);

    const now = this.now();
    const order = newOrder(`paper-${randomUUID()}`, req, now);
    const liquidity = this.liquidityOf(req.symbol);
    const result =
      req.type === 'market'
        ? fillMarket(book, liquidity, req.side, req.amount, market, this.policy)
        : fillLimit(book, liquidity, req.side, req.amount, req.price as number, market, 'taker');
    this.store.transaction(() => {
      this.store.insertOrder(order);
      this.book(order, result, market, now);
      if (order.type === 'market' && order.status === 'open') {
        // A market order takes what it can now; the rest is not left to fill later at any price.
        order.status = 'canceled';
        order.reason = `unfilled ${round(order.amount - order.filled)}: ${result.shortfall ?? 'depth'}`;
      }
      this.store.updateOrder(order);
    });
    return order;
  }

  /** Fills resting limit orders of `book.symbol` that the book now crosses; returns those that filled. */
  onBook(book: OrderBook): OrderRecord[] {
    const touched: OrderRecord[] = [];
    const market = this.markets.get(book.symbol);
    if (!market) return touched;
    const liquidity = this.liquidityOf(book.symbol);
    for (const order of this.store.openOrders()) {
      if (order.symbol !== book.symbol || order.type !== 'limit' || order.price === null) continue;
      const result = fillLimit(
        book,
        liquidity,
        order.side,
        order.amount - order.filled,
        order.price,
        market,
        'maker',
      );
      if (result.filled <= 0) continue;
      const now = this.now();
      this.store.transaction(() => {
        this.book(order, result, market, now);
        this.store.updateOrder(order);
      });
      touched.push(order);
    }
    return touched;
  }

  /** Cancels every open order (kill switch, shutdown, a lost lease); returns how many. */
  cancelAll(reason: string): number {
    const open = this.store.openOrders();
    const now = this.now();
    this.store.transaction(() => {
      for (const order of open) {
        order.status = 'canceled';
        order.reason = reason;
        order.updatedAt = now;
        this.store.updateOrder(order);
      }
    });
    return open.length;
  }

  /** Marks the account to market: drawdown, the day's starting equity, a point of the equity curve. */
  mark(marks: Record<string, number>): void {
    this.account = markAccount(this.store, this.account, marks, this.now());
  }

  private book(order: OrderRecord, result: FillResult, market: MarketInfo, now: number): void {
    if (result.filled <= 0) return;
    let state = this.account.state;
    for (const piece of result.pieces) {
      state = applyFill(state, {
        ...market,
        side: order.side,
        price: piece.price,
        amount: piece.amount,
        fee: piece.fee,
      });
      this.store.insertFill(order.id, order.symbol, order.side, piece, now);
    }
    const notional = (order.average ?? 0) * order.filled + (result.averagePrice ?? 0) * result.filled;
    order.filled += result.filled;
    order.average = notional / order.filled;
    order.fee += result.fee;
    order.updatedAt = now;
    if (order.amount - order.filled <= 1e-12) order.status = 'closed';
    this.account = { ...this.account, state };
    this.store.saveAccount(this.account, now);
  }

  private checkFunds(req: OrderRequest, market: MarketInfo, price: number): void {
    const reserved = { quote: 0, base: 0 };
    for (const o of this.store.openOrders()) {
      if (o.symbol !== req.symbol && o.side === 'sell') continue;
      const left = o.amount - o.filled;
      if (o.side === 'buy') reserved.quote += left * (o.price ?? 0) * (1 + market.taker);
      else reserved.base += left;
    }
    const balances = this.account.state.balances;
    if (req.side === 'buy') {
      const need = req.amount * price * (1 + market.taker);
      const have = (balances[market.quote] ?? 0) - reserved.quote;
      if (need > have + 1e-9) throw new InsufficientFunds(market.quote, need, have);
    } else {
      const have = (balances[market.base] ?? 0) - reserved.base;
      if (req.amount > have + 1e-12) throw new InsufficientFunds(market.base, req.amount, have);
    }
  }

  private market(symbol: string): MarketInfo {
    const m = this.markets.get(symbol);
    if (!m) throw new OrderRejected(`unknown symbol ${symbol}`);
    return m;
  }

  private liquidityOf(symbol: string): BookLiquidity {
    let l = this.liquidity.get(symbol);
    if (!l) {
      l = new BookLiquidity();
      this.liquidity.set(symbol, l);
    }
    return l;
  }
}

function round(n: number): number {
  return Math.round(n * 1e8) / 1e8;
}

/** Marks an account to market and records it: drawdown, the day's starting equity, a point of the curve. */
export function markAccount(
  store: LedgerStore,
  account: AccountRecord,
  marks: Record<string, number>,
  now: number,
): AccountRecord {
  const state = markToMarket(account.state, account.quote, marks);
  const value = equity(state, account.quote, marks);
  const day = utcDay(now);
  const next = { ...account, state, ...(day !== account.day ? { day, dayEquity: value } : {}) };
  store.transaction(() => {
    store.saveAccount(next, now);
    store.recordEquity(now, value);
  });
  return next;
}
