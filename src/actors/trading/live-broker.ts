/**
 * The live broker: real orders through ccxt. An order is never blindly retried:
 * 1. its row (with our client order id) is committed before the request leaves, so a crash at any
 *    point leaves a trace to reconcile;
 * 2. after a timeout or a dropped connection the order is looked up by its client order id first:
 *    if the exchange has it, it is adopted; if the exchange says it does not exist, it is marked
 *    rejected and not sent again (the next decision is a new order); if the lookup fails too, the row
 *    stays open and the next reconciliation settles it;
 * 3. at start and after every reconnect, open rows are refreshed from the exchange, orders the
 *    exchange holds under our client-id prefix are adopted, and balances are read, before the engine
 *    places anything new.
 * Realised PnL comes from the fills we book; balances are the exchange's.
 */
import type { Logger } from '../../logger.js';
import { type Broker, newOrder, OrderRejected, type OrderRequest } from './broker.js';
import { classifyExchangeError, isErrorClass, scrubSecrets } from './exchange-errors.js';
import { applyFill } from './ledger.js';
import type { MarketInfo, OrderBook } from './market.js';
import { markAccount } from './paper-broker.js';
import type { AccountRecord, LedgerStore, OrderRecord, OrderStatus } from './store.js';

/** Client order ids of this program start with it (see engine.ts decisionId). */
export const CLIENT_ID_PREFIX = 'qb';
/** How often open orders are refreshed from the exchange, ms (each refresh is one request per order). */
const REFRESH_MS = 5_000;

// biome-ignore lint/suspicious/noExplicitAny: ccxt's exchange and order objects
type Ccxt = any;
// biome-ignore lint/suspicious/noExplicitAny: ccxt's order object
type CcxtOrder = any;

export interface LiveBrokerOptions {
  client: Ccxt;
  store: LedgerStore;
  markets: ReadonlyMap<string, MarketInfo>;
  quote: string;
  now: () => number;
  logger: Logger;
  secrets: readonly (string | undefined)[];
  /**
   * Asked once the order's row is committed, right before the request leaves: false (the account
   * lease ran out while the row was being written) and the order is not sent. Absent: always true.
   */
  mayPlace?: () => boolean;
}

export class LiveBroker implements Broker {
  private account: AccountRecord;
  private lastRefresh = 0;

  constructor(private readonly o: LiveBrokerOptions) {
    this.account = o.store.loadAccount(o.quote, 0, o.now());
  }

  get state(): AccountRecord {
    return this.account;
  }

  async reconcile(): Promise<void> {
    for (const order of this.o.store.openOrders()) await this.refresh(order);
    for (const symbol of this.o.markets.keys()) {
      const remote: CcxtOrder[] = await this.o.client.fetchOpenOrders(symbol);
      for (const r of remote) {
        const clientOrderId = r.clientOrderId as string | undefined;
        if (!clientOrderId?.startsWith(CLIENT_ID_PREFIX) || this.o.store.orderByClientId(clientOrderId))
          continue;
        // Ours, but unknown here (a lost database, another program start): adopt it.
        const now = this.o.now();
        const order = this.fromRemote(r, now);
        this.o.store.insertOrder(order);
        this.o.logger.warn(
          { clientOrderId, symbol },
          'adopted an open order the exchange holds for this account',
        );
      }
    }
    await this.readBalances();
    this.lastRefresh = this.o.now();
  }

  async place(req: OrderRequest, _book: OrderBook): Promise<OrderRecord> {
    const existing = this.o.store.orderByClientId(req.clientOrderId);
    if (existing) return existing;
    if (!this.o.markets.has(req.symbol)) throw new OrderRejected(`unknown symbol ${req.symbol}`);
    const now = this.o.now();
    const order = newOrder(`live-${req.clientOrderId}`, req, now, 'sent; awaiting the exchange');
    // Committed before the request leaves: a crash from here on leaves a row to reconcile. With
    // PostgreSQL the flush is also the fence: a peer that lost the account lease sends nothing.
    this.o.store.insertOrder(order);
    await this.o.store.flush();
    if (this.o.mayPlace && !this.o.mayPlace()) {
      // The row may stay `open` in a ledger this peer can no longer write: the next holder's
      // reconciliation asks the exchange, which never got it, and marks it rejected.
      this.settle(order, 'rejected', 'the account lease ran out before the order was sent: not sent');
      return order;
    }
    try {
      const remote = await this.o.client.createOrder(req.symbol, req.type, req.side, req.amount, req.price, {
        clientOrderId: req.clientOrderId,
      });
      this.apply(order, remote);
    } catch (err) {
      if (classifyExchangeError(err) === 'network') {
        this.o.logger.warn(
          { clientOrderId: req.clientOrderId, err: this.scrub(err) },
          'order request failed in transit: looking it up before anything else',
        );
        await this.lookUp(order);
      } else {
        this.settle(order, 'rejected', `refused by the exchange: ${this.scrub(err)}`);
      }
    }
    return order;
  }

  async onBook(_book: OrderBook): Promise<void> {
    const now = this.o.now();
    if (now - this.lastRefresh < REFRESH_MS) return;
    this.lastRefresh = now;
    for (const order of this.o.store.openOrders()) await this.refresh(order);
    await this.readBalances();
  }

  async cancelAll(reason: string): Promise<number> {
    let cancelled = 0;
    for (const order of this.o.store.openOrders()) {
      try {
        await this.o.client.cancelOrder(order.exchangeId ?? undefined, order.symbol, {
          clientOrderId: order.clientOrderId,
        });
        this.settle(order, 'canceled', reason);
        cancelled += 1;
      } catch (err) {
        if (isErrorClass(err, 'OrderNotFound')) await this.refresh(order);
        else throw err;
      }
    }
    return cancelled;
  }

  mark(marks: Record<string, number>): void {
    this.account = markAccount(this.o.store, this.account, marks, this.o.now());
  }

  /** After a request failed in transit: does the exchange have the order? */
  private async lookUp(order: OrderRecord): Promise<void> {
    try {
      const remote = await this.o.client.fetchOrder(undefined, order.symbol, {
        clientOrderId: order.clientOrderId,
      });
      this.apply(order, remote);
      this.o.logger.warn(
        { clientOrderId: order.clientOrderId, status: order.status },
        'the exchange had the order: adopted, not sent again',
      );
    } catch (err) {
      if (isErrorClass(err, 'OrderNotFound')) {
        this.settle(
          order,
          'rejected',
          'the request failed in transit and the exchange has no such order: not sent again',
        );
      } else {
        order.reason = `unknown after a failed request; reconciled at the next reconnect: ${this.scrub(err)}`;
        this.o.store.updateOrder(order);
        throw err;
      }
    }
  }

  private async refresh(order: OrderRecord): Promise<void> {
    try {
      const remote = await this.o.client.fetchOrder(order.exchangeId ?? undefined, order.symbol, {
        clientOrderId: order.clientOrderId,
      });
      this.apply(order, remote);
    } catch (err) {
      if (!isErrorClass(err, 'OrderNotFound')) throw err;
      this.settle(order, 'rejected', 'the exchange has no such order');
    }
  }

  /** Takes the exchange's view of an order: status, and any new fill into the ledger. */
  private apply(order: OrderRecord, remote: CcxtOrder): void {
    const market = this.o.markets.get(order.symbol);
    const filled = Number(remote.filled ?? 0);
    const average = remote.average === undefined || remote.average === null ? null : Number(remote.average);
    const newAmount = filled - order.filled;
    const now = this.o.now();
    this.o.store.transaction(() => {
      if (market && newAmount > 1e-12) {
        // The part filled since we last looked, at the price that makes the average come out right.
        const price =
          average !== null && order.average !== null
            ? (average * filled - order.average * order.filled) / newAmount
            : (average ?? Number(remote.price ?? 0));
        const totalFee = Number(remote.fee?.cost ?? 0);
        const fee = Math.max(0, totalFee - order.fee);
        this.account = {
          ...this.account,
          state: applyFill(this.account.state, {
            ...market,
            side: order.side,
            price,
            amount: newAmount,
            fee,
          }),
        };
        this.o.store.insertFill(
          order.id,
          order.symbol,
          order.side,
          { price, amount: newAmount, fee, role: 'taker' },
          now,
        );
        order.fee = Math.max(order.fee, totalFee);
        this.o.store.saveAccount(this.account, now);
      }
      order.exchangeId = remote.id ? String(remote.id) : (order.exchangeId ?? null);
      order.filled = filled;
      order.average = average;
      order.status = statusOf(remote.status);
      if (order.status === 'open' || order.status === 'closed') order.reason = null;
      order.updatedAt = now;
      this.o.store.updateOrder(order);
    });
  }

  private settle(order: OrderRecord, status: OrderStatus, reason: string): void {
    order.status = status;
    order.reason = reason;
    order.updatedAt = this.o.now();
    this.o.store.updateOrder(order);
  }

  private fromRemote(r: CcxtOrder, now: number): OrderRecord {
    return {
      id: `live-${r.clientOrderId}`,
      clientOrderId: r.clientOrderId,
      exchangeId: String(r.id),
      symbol: r.symbol,
      side: r.side,
      type: r.type === 'limit' ? 'limit' : 'market',
      amount: Number(r.amount),
      price: r.price ? Number(r.price) : null,
      status: statusOf(r.status),
      filled: 0,
      average: null,
      fee: 0,
      reason: 'adopted from the exchange',
      createdAt: Number(r.timestamp ?? now),
      updatedAt: now,
    };
  }

  private async readBalances(): Promise<void> {
    const balance = await this.o.client.fetchBalance();
    const free: Record<string, number> = {};
    for (const [currency, amount] of Object.entries(balance.free ?? {})) {
      if (Number(amount) > 0) free[currency] = Number(amount);
    }
    this.account = { ...this.account, state: { ...this.account.state, balances: free } };
    this.o.store.saveAccount(this.account, this.o.now());
  }

  private scrub(err: unknown): string {
    return scrubSecrets(err instanceof Error ? err.message : String(err), this.o.secrets);
  }
}

function statusOf(s: string | undefined): OrderStatus {
  if (s === 'open') return 'open';
  if (s === 'closed') return 'closed';
  if (s === 'rejected') return 'rejected';
  return 'canceled';
}
