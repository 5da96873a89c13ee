/**
 * The trading loop: every tick it reads each symbol's market data, drops what is absurd, lets
 * resting paper orders fill, marks the account to market, asks the strategy what position it wants,
 * and turns the difference into an order that must pass every protection. It never places an order
 * while the kill switch is on, on stale or absurd data, or after an unknown symbol or a refused key.
 * Decisions are idempotent: an order's client id derives from the account, the symbol, the candle
 * it was decided on and its side, so a restart that repeats a decision places nothing new.
 */
import { createHash } from 'node:crypto';
import { QbError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { GuardVerdict } from './account-guard.js';
import { type Broker, OrderRejected } from './broker.js';
import { classifyExchangeError, scrubSecrets } from './exchange-errors.js';
import type { AccountLease } from './lease.js';
import { equity, InsufficientFunds, unrealisedPnl, winRate } from './ledger.js';
import { bookProblem, type Candle, candleProblem, type MarketInfo, tickerProblem } from './market.js';
import {
  type AccountView,
  checkOrder,
  LATCHING,
  type ProtectionLimits,
  type ProtectionName,
  tripReason,
} from './protections.js';
import { type MarketSnapshot, type MarketSource, UnknownSymbol } from './source.js';
import type { LedgerStore } from './store.js';
import type { Strategy } from './strategy.js';

/**
 * - standby: another peer trades this account (or this one's lease is not renewed in time); this
 *   one reads the market and neither places orders nor writes the ledger
 * - blocked: an unknown symbol or a refused key; an operator must act
 */
export type EngineState = 'stopped' | 'starting' | 'running' | 'reconnecting' | 'standby' | 'blocked';

export interface EngineOptions {
  /** Opens the market source; called at every start (ccxt is loaded only here, and only for ccxt). */
  openSource: () => Promise<MarketSource>;
  /** Built once the markets are known. */
  broker: (markets: ReadonlyMap<string, MarketInfo>, source: MarketSource) => Broker;
  store: LedgerStore;
  strategy: Strategy;
  limits: ProtectionLimits;
  symbols: readonly string[];
  killSwitchActive: () => boolean;
  now: () => number;
  logger: Logger;
  /** Strings that must never appear in a message we show (exchange keys). */
  secrets?: readonly (string | undefined)[];
  /** May this peer trade the account now (one trader per account over the mesh)? Absent: always. */
  accountGuard?: () => GuardVerdict;
  /**
   * The account lease in PostgreSQL (DATABASE_URL), instead of `accountGuard`: the ledger is shared,
   * so a peer standing by neither writes it nor cancels the holder's orders, and a peer that gets a
   * new token reloads the ledger before it trades.
   */
  lease?: Pick<AccountLease, 'start' | 'stop' | 'verdict' | 'lost' | 'currentFence' | 'view'>;
}

/** How often a peer standing by under a lease re-reads the shared ledger for its view, ms. */
const STANDBY_REFRESH_MS = 10_000;

/** Backoff after exchange failures: 1 s doubling to 30 s. */
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export class TradingEngine {
  private state: EngineState = 'stopped';
  private source: MarketSource | undefined;
  private exchangeName = '';
  private reason: string | null = null;
  private broker: Broker | undefined;
  /** Set when the exchange was unreachable: reconcile before anything new is placed. */
  private needsReconcile = false;
  private markets: ReadonlyMap<string, MarketInfo> = new Map();
  private readonly marks: Record<string, number> = {};
  /** The last closed candles seen per symbol, for the dashboard's chart. */
  private readonly lastCandles = new Map<string, readonly Candle[]>();
  private consecutiveFailures = 0;
  private retryAt = 0;
  /** Set by a rate-limit answer: ticks before this time are skipped. */
  private slowUntil = 0;
  private lastTickAt: number | null = null;
  private readonly counters = {
    ticks: 0,
    droppedTicks: 0,
    ordersPlaced: 0,
    ordersRefused: 0,
    exchangeErrors: 0,
  };
  private readonly lastRefusal = new Map<string, number>();
  /** When a peer standing by last re-read the shared ledger (lease only). */
  private standbyRefreshedAt = 0;
  /** Who trades the account while this peer stands by (null: unknown, or not standing by). */
  private standbyHolder: { holder: string; since: string } | null = null;
  /** The lease token the ledger in memory was loaded under (lease only). */
  private token: number | undefined;
  /** GET /status and the dashboard ask often; the view is rebuilt only after something changed. */
  private viewCache: Omit<ReturnType<TradingEngine['buildView']>, 'lease'> | undefined;

  constructor(private readonly o: EngineOptions) {}

  get currentState(): EngineState {
    return this.state;
  }

  async start(): Promise<void> {
    this.state = 'starting';
    this.reason = null;
    this.viewCache = undefined;
    this.token = undefined;
    await this.closeSource();
    // PostgreSQL: read the shared ledger (read-only until the lease is ours); SQLite: nothing.
    await this.o.store.load();
    try {
      this.source = await this.o.openSource();
      this.exchangeName = this.source.exchange;
      this.markets = await this.source.loadMarkets(this.o.symbols);
    } catch (err) {
      if (err instanceof UnknownSymbol) return this.block(err.message);
      if (classifyExchangeError(err) === 'auth')
        return this.block(`the exchange refused the API key: ${this.scrub(err)}`);
      throw err;
    }
    const broker = this.o.broker(this.markets, this.source);
    // Open orders, balances and positions match the exchange before anything new is placed.
    await broker.reconcile();
    this.broker = broker;
    this.needsReconcile = false;
    this.state = 'running';
    this.o.lease?.start();
  }

  /** Stops the loop; under the kill switch every open order is cancelled first. */
  stop(): void {
    const logger = this.o.logger;
    // With a lease only the holder touches the account's orders; the others' ledgers are stale.
    const mayCancel = !this.o.lease || this.o.lease.verdict().mayTrade;
    let cancelled: Promise<unknown> = Promise.resolve();
    if (this.broker && this.o.killSwitchActive() && mayCancel) {
      cancelled = Promise.resolve(this.broker.cancelAll('kill switch'))
        .then(async (n) => {
          await this.o.store.flush();
          if (n > 0) logger.warn({ cancelled: n }, 'kill switch: cancelled every open order');
        })
        .catch((err) =>
          logger.error(
            { err: this.scrub(err) },
            'kill switch: cancelling open orders failed; retried at the next start',
          ),
        );
    }
    // The lease is released after the last write, so the next holder starts from all of it.
    const lease = this.o.lease;
    if (lease) void cancelled.then(() => lease.stop());
    this.token = undefined;
    if (this.state !== 'blocked') this.state = 'stopped';
    this.viewCache = undefined;
    void this.closeSource();
  }

  private async closeSource(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.close().catch(() => {});
  }

  async tick(): Promise<void> {
    try {
      await this.tickOnce();
    } finally {
      this.touch();
    }
  }

  private async tickOnce(): Promise<void> {
    const now = this.o.now();
    const source = this.source;
    if (!source || !this.broker || this.state === 'blocked' || now < this.retryAt || now < this.slowUntil)
      return;
    this.counters.ticks += 1;
    this.lastTickAt = now;
    for (const symbol of this.o.symbols) {
      let data: MarketSnapshot;
      try {
        data = await source.snapshot(symbol);
      } catch (err) {
        this.exchangeFailed(err, now);
        return;
      }
      this.consecutiveFailures = 0;
      if (this.state === 'reconnecting') {
        this.o.logger.info('exchange reachable again');
        this.state = 'running';
        this.reason = null;
      }
      if (this.needsReconcile) {
        try {
          await this.broker.reconcile();
          this.needsReconcile = false;
        } catch (err) {
          this.exchangeFailed(err, now);
          return;
        }
      }
      const problem =
        bookProblem(data.book) ?? tickerProblem(data.ticker) ?? data.candles.map(candleProblem).find(Boolean);
      if (problem) {
        this.counters.droppedTicks += 1;
        this.o.logger.warn({ symbol, problem }, 'market data dropped: no order on absurd data');
        continue;
      }
      this.marks[symbol] = data.ticker.last;
      this.lastCandles.set(symbol, data.candles);
      // Standing by, the ledger is not ours to write (lease) or has nothing open (mesh guard).
      if (!(await this.mayTrade())) continue;
      await (this.broker as Broker).onBook(data.book);
      await this.decide(symbol, data, now);
      if (this.state === 'standby') return;
    }
    if (this.state !== 'standby') {
      (this.broker as Broker).mark(this.marks);
      await this.flushLedger();
    }
  }

  /** Commits the tick's ledger writes; with a lease, a refused write stops trading at once. */
  private async flushLedger(): Promise<boolean> {
    try {
      await this.o.store.flush();
      return true;
    } catch (err) {
      this.ledgerRefused(err);
      return false;
    }
  }

  /** With a lease, a ledger write that failed means this peer may not trade: it stops at once. */
  private ledgerRefused(err: unknown): void {
    const lease = this.o.lease;
    if (!lease) throw err;
    lease.lost(err instanceof Error ? err.message : String(err));
    // Whatever is in memory may not be the account's any more: reload it before trading again.
    this.token = undefined;
    void this.standBy(lease.verdict());
  }

  /** A new lease token: the ledger in memory may be stale (another peer traded); reload it. */
  private async resume(token: number): Promise<boolean> {
    const lease = this.o.lease as NonNullable<EngineOptions['lease']>;
    try {
      await this.o.store.load(lease.currentFence());
      const broker = this.o.broker(this.markets, this.source as MarketSource);
      await broker.reconcile();
      this.broker = broker;
      this.token = token;
      this.o.logger.warn(
        { leaseToken: token },
        'account lease held: ledger reloaded from the database, trading',
      );
      return true;
    } catch (err) {
      lease.lost(`reloading the ledger failed: ${err instanceof Error ? err.message : String(err)}`);
      return false;
    }
  }

  private touch(): void {
    this.viewCache = undefined;
  }

  /** One trader per account: stands down (cancelling its own open orders) while another peer holds it. */
  private async mayTrade(): Promise<boolean> {
    const verdict = this.verdict();
    if (verdict?.mayTrade && verdict.token !== undefined && verdict.token !== this.token) {
      if (!(await this.resume(verdict.token))) return this.standBy(this.verdict());
    }
    if (!verdict || verdict.mayTrade) {
      if (this.state === 'standby') {
        this.o.logger.warn(
          this.o.lease
            ? 'this peer holds the account lease: trading resumes'
            : 'no other linked peer trades this account now: trading resumes',
        );
        this.state = 'running';
        this.reason = null;
        this.standbyHolder = null;
      }
      return true;
    }
    await this.standBy(verdict);
    await this.refreshWhileStandingBy();
    return false;
  }

  /**
   * With a lease the ledger is the holder's: a peer standing by re-reads it now and then (read
   * only), so its /status and dashboard card show the account as it is, not as it was at start.
   */
  private async refreshWhileStandingBy(): Promise<void> {
    const now = this.o.now();
    if (!this.o.lease || now - this.standbyRefreshedAt < STANDBY_REFRESH_MS) return;
    this.standbyRefreshedAt = now;
    try {
      await this.o.store.load(null);
      this.broker = this.o.broker(this.markets, this.source as MarketSource);
      this.token = undefined;
    } catch (err) {
      this.o.logger.warn({ err }, 'standing by: re-reading the shared ledger failed; the view may be stale');
    }
  }

  private verdict(): GuardVerdict | undefined {
    return this.o.lease ? this.o.lease.verdict() : this.o.accountGuard?.();
  }

  private async standBy(verdict: GuardVerdict | undefined): Promise<false> {
    const h = verdict?.holder;
    const reason =
      verdict?.reason ??
      `account ${this.o.store.account} is traded by peer ${h?.peerId} (since ${new Date(h?.since ?? 0).toISOString()}): this peer stands down`;
    const entering = this.state !== 'standby';
    this.standbyHolder = h ? { holder: h.peerId, since: new Date(h.since).toISOString() } : null;
    if (entering || this.reason !== reason) {
      this.state = 'standby';
      this.reason = reason;
      // Expected in a fleet sharing one account, so a warning, not an error; /status says it too.
      this.o.logger.warn(
        { holder: h?.peerId, account: this.o.store.account },
        `ONE TRADER PER ACCOUNT: ${this.reason}`,
      );
    }
    // Over the mesh each peer has its own ledger: its open orders are its own to cancel. With a
    // lease the ledger is shared and its open orders now belong to the holder.
    if (entering && !this.o.lease) {
      const cancelled = await (this.broker as Broker).cancelAll('another peer trades this account');
      if (cancelled > 0)
        this.o.logger.warn({ cancelled }, 'cancelled this peer’s open orders on standing down');
    }
    return false;
  }

  /** The last closed candles of `symbol` (empty before the first tick). */
  candles(symbol: string): readonly Candle[] {
    return this.lastCandles.get(symbol) ?? [];
  }

  /** Operator reset of a latched protection. */
  resetProtection(name: ProtectionName): boolean {
    const reset = this.o.store.reset(name);
    this.touch();
    if (reset) this.o.logger.warn({ protection: name }, 'protection reset by an operator');
    return reset;
  }

  private async decide(symbol: string, data: MarketSnapshot, now: number): Promise<void> {
    const broker = this.broker as Broker;
    const market = this.markets.get(symbol) as MarketInfo;
    const balances = broker.state.state.balances;
    const position = balances[market.base] ?? 0;
    const intent = this.o.strategy.decide({
      symbol,
      candles: data.candles,
      ticker: data.ticker,
      position,
      cash: balances[market.quote] ?? 0,
    });
    if (!intent) return;
    const delta = intent.targetPosition - position;
    if (Math.abs(delta) < market.minAmount) return;
    if (this.o.killSwitchActive()) return;
    const side = delta > 0 ? 'buy' : 'sell';
    const amount = Math.abs(delta);
    const price = side === 'buy' ? data.ticker.ask : data.ticker.bid;
    const latched = this.o.store.latchedProtections();
    const view = this.accountView(position, data, latched);
    const verdict = checkOrder({ symbol, side, amount, price }, view, this.o.limits, now);
    for (const name of verdict.tripped) {
      this.o.store.trip(name, tripReason(name, view), now);
      this.o.logger.error(
        { protection: name, reason: verdict.reason },
        'protection tripped: new entries halted until an operator resets it',
      );
    }
    if (!verdict.allowed) {
      this.counters.ordersRefused += 1;
      this.logRefusal(verdict.refusedBy ?? 'protection', `${verdict.refusedBy}: ${verdict.reason}`, now);
      return;
    }
    const lastCandle = data.candles.at(-1)?.[0] ?? 0;
    const clientOrderId = decisionId(this.o.store.account, symbol, lastCandle, side);
    // Checked again right before the order: the lease's local deadline may have passed meanwhile.
    const guard = this.verdict();
    if (guard && !guard.mayTrade) {
      await this.standBy(guard);
      return;
    }
    // A new token within this tick: the next tick reloads the ledger first.
    if (guard && guard.token !== this.token) return;
    // A repeated decision returns the order placed the first time: not counted again. (Comparing
    // the order's time with the tick's missed every order placed a millisecond into the tick.)
    const repeat = this.o.store.orderByClientId(clientOrderId) !== undefined;
    try {
      const order = await broker.place({ clientOrderId, symbol, side, type: 'market', amount }, data.book);
      // Counted once committed: with PostgreSQL a refused write means the order never happened.
      if (!(await this.flushLedger())) return;
      if (!repeat) {
        this.counters.ordersPlaced += 1;
        this.o.logger.info(
          {
            symbol,
            side,
            amount: order.amount,
            filled: order.filled,
            average: order.average,
            status: order.status,
            reason: intent.reason,
          },
          'order placed',
        );
      }
    } catch (err) {
      if (err instanceof QbError && err.code === 'QB_ERR_TRADING_LEASE_LOST') return this.ledgerRefused(err);
      this.counters.ordersRefused += 1;
      if (!(err instanceof OrderRejected || err instanceof InsufficientFunds)) throw err;
      this.logRefusal('order', err.message, now);
    }
  }

  private accountView(
    position: number,
    data: MarketSnapshot,
    latched: Map<ProtectionName, unknown>,
  ): AccountView {
    const broker = this.broker as Broker;
    const account = broker.state;
    const value = equity(account.state, account.quote, this.marks);
    const peak = Math.max(account.state.peakEquity, value);
    return {
      position,
      dailyPnl: value - account.dayEquity,
      drawdown: peak > 0 ? (peak - value) / peak : 0,
      recentOrderTimes: this.o.store.orderTimesSince(this.o.now() - 60_000),
      dataTimestamp: data.ticker.timestamp,
      consecutiveExchangeFailures: this.consecutiveFailures,
      latched: new Set(latched.keys()),
    };
  }

  private exchangeFailed(err: unknown, now: number): void {
    this.counters.exchangeErrors += 1;
    const kind = classifyExchangeError(err);
    const message = this.scrub(err);
    if (kind === 'auth') {
      this.block(`the exchange refused the API key: ${message}`);
      return;
    }
    if (kind === 'rate-limit') {
      this.slowUntil = now + RETRY_MAX_MS;
      this.o.logger.warn({ err: message }, 'rate limited by the exchange: slowing down for 30 s');
      return;
    }
    this.consecutiveFailures += 1;
    this.needsReconcile = true;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** (this.consecutiveFailures - 1));
    this.retryAt = now + delay;
    if (this.state !== 'reconnecting')
      this.o.logger.warn({ err: message }, 'exchange unreachable: reconnecting with backoff');
    this.state = 'reconnecting';
    this.reason = message;
    if (this.consecutiveFailures >= this.o.limits.maxExchangeFailures) {
      this.o.store.trip(
        'exchange-breaker',
        `${this.consecutiveFailures} exchange failures in a row: ${message}`,
        now,
      );
    }
  }

  private block(reason: string): void {
    this.state = 'blocked';
    this.reason = reason;
    this.o.logger.error({ reason }, 'trading stopped');
  }

  private logRefusal(key: string, message: string, now: number): void {
    // One line per kind per minute: a refused strategy retries every tick.
    if ((this.lastRefusal.get(key) ?? 0) > now - 60_000) return;
    this.lastRefusal.set(key, now);
    this.o.logger.warn({ refusal: message }, 'order refused');
  }

  private scrub(err: unknown): string {
    return scrubSecrets(err instanceof Error ? err.message : String(err), this.o.secrets);
  }

  /** The account as GET /trading shows it (rebuilt only after a tick or a change). */
  view() {
    this.viewCache ??= this.buildView();
    return { ...this.viewCache, lease: this.o.lease?.view() ?? null };
  }

  private buildView() {
    const broker = this.broker;
    const latched = this.o.store.latchedProtections();
    const protections = (Object.keys(this.o.limits) as (keyof ProtectionLimits)[]).map((limit) => ({
      name: LIMIT_TO_PROTECTION[limit],
      limit: this.o.limits[limit],
      state: latched.has(LIMIT_TO_PROTECTION[limit]) ? 'tripped' : 'ok',
      latching: LATCHING.includes(LIMIT_TO_PROTECTION[limit]),
      reason: latched.get(LIMIT_TO_PROTECTION[limit])?.reason ?? null,
      trippedAt: latched.has(LIMIT_TO_PROTECTION[limit])
        ? new Date(latched.get(LIMIT_TO_PROTECTION[limit])?.trippedAt ?? 0).toISOString()
        : null,
    }));
    const account = broker?.state;
    const state = account?.state;
    const value = account && state ? equity(state, account.quote, this.marks) : null;
    return {
      exchange: this.exchangeName,
      state: this.state,
      reason: this.reason,
      standby: this.state === 'standby' ? this.standbyHolder : null,
      feed: this.source?.feed?.() ?? null,
      account: this.o.store.account,
      strategy: this.o.strategy.name,
      symbols: [...this.o.symbols],
      marks: { ...this.marks },
      balances: state?.balances ?? {},
      positions: Object.values(state?.positions ?? {}).map((p) => ({
        ...p,
        mark: this.marks[p.symbol] ?? null,
        unrealisedPnl:
          this.marks[p.symbol] === undefined
            ? null
            : (this.marks[p.symbol] as number) - p.averageCost * p.amount,
      })),
      openOrders: this.o.store.openOrders(),
      pnl: state
        ? {
            realised: state.realisedPnl,
            unrealised: unrealisedPnl(state, this.marks),
            fees: state.fees,
            equity: value,
            daily: value === null || !account ? null : value - account.dayEquity,
            maxDrawdown: state.maxDrawdown,
            winRate: winRate(state),
            closedTrades: state.closedTrades,
          }
        : null,
      protections,
      counters: { ...this.counters },
      lastTickAt: this.lastTickAt === null ? null : new Date(this.lastTickAt).toISOString(),
    };
  }
}

const LIMIT_TO_PROTECTION: Record<keyof ProtectionLimits, ProtectionName> = {
  maxOrderValue: 'max-order-size',
  maxPositionValue: 'max-position',
  maxOrdersPerMinute: 'max-orders-per-minute',
  maxDailyLoss: 'max-daily-loss',
  maxDrawdown: 'max-drawdown',
  maxDataAgeMs: 'stale-data',
  maxExchangeFailures: 'exchange-breaker',
};

/** A client order id of at most 24 characters that every exchange accepts (letters and digits). */
export function decisionId(
  account: string,
  symbol: string,
  candleTime: number,
  side: 'buy' | 'sell',
): string {
  const h = createHash('sha256').update(`${account}\0${symbol}`).digest('hex').slice(0, 10);
  return `qb${h}${candleTime.toString(36)}${side === 'buy' ? 'b' : 's'}`;
}
