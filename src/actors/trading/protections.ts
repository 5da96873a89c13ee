/**
 * Protections that stop a runaway bot. Each is a pure check of a proposed order against the
 * account and recent history; the ones that trip (daily loss, drawdown) latch until an operator
 * resets them, the others refuse one order. The engine persists the latched state.
 */
import type { Side } from './fill-model.js';

export interface ProtectionLimits {
  /** Largest order, quote currency. */
  maxOrderValue: number;
  /** Largest position per symbol, quote currency at the current price. */
  maxPositionValue: number;
  maxOrdersPerMinute: number;
  /** Loss since the start of the UTC day that halts new entries, quote currency. */
  maxDailyLoss: number;
  /** Drawdown from the equity peak that halts new entries (0.2 = 20 %). */
  maxDrawdown: number;
  /** No order on prices older than this, ms. */
  maxDataAgeMs: number;
  /** Consecutive exchange failures that open the breaker. */
  maxExchangeFailures: number;
}

export const DEFAULT_LIMITS: ProtectionLimits = {
  maxOrderValue: 5_000,
  maxPositionValue: 20_000,
  maxOrdersPerMinute: 10,
  maxDailyLoss: 1_000,
  maxDrawdown: 0.2,
  maxDataAgeMs: 30_000,
  maxExchangeFailures: 5,
};

export type ProtectionName =
  | 'max-order-size'
  | 'max-position'
  | 'max-orders-per-minute'
  | 'max-daily-loss'
  | 'max-drawdown'
  | 'stale-data'
  | 'exchange-breaker';

/** Protections that latch: once tripped, only an operator reset lets entries through again. */
export const LATCHING: readonly ProtectionName[] = ['max-daily-loss', 'max-drawdown', 'exchange-breaker'];

export interface ProposedOrder {
  symbol: string;
  side: Side;
  amount: number;
  price: number;
}

export interface AccountView {
  /** Base currency held of the order's symbol. */
  position: number;
  /** Realised + unrealised PnL since the start of the UTC day. */
  dailyPnl: number;
  /** Current drawdown from the equity peak, fraction. */
  drawdown: number;
  /** Times (ms) of orders placed in the last minute or so. */
  recentOrderTimes: readonly number[];
  /** Exchange time of the data the order is based on. */
  dataTimestamp: number;
  consecutiveExchangeFailures: number;
  /** Protections latched earlier and not reset. */
  latched: ReadonlySet<ProtectionName>;
}

export interface Verdict {
  allowed: boolean;
  /** The protection that refused, and why. */
  refusedBy?: ProtectionName;
  reason?: string;
  /** Latching protections that tripped now (to persist). */
  tripped: ProtectionName[];
}

/**
 * Checks one order. Exits (sells that reduce a long) are allowed through the latching protections
 * and the size limits, so a tripped bot can still get flat; stale data and the breaker block all.
 */
export function checkOrder(
  order: ProposedOrder,
  account: AccountView,
  limits: ProtectionLimits,
  now: number,
): Verdict {
  const tripped: ProtectionName[] = [];
  const refuse = (refusedBy: ProtectionName, reason: string): Verdict => ({
    allowed: false,
    refusedBy,
    reason,
    tripped,
  });
  const reducing = order.side === 'sell' && order.amount <= account.position + 1e-12;

  if (now - account.dataTimestamp > limits.maxDataAgeMs) {
    return refuse('stale-data', `price data is ${Math.round((now - account.dataTimestamp) / 1000)} s old`);
  }
  if (
    account.consecutiveExchangeFailures >= limits.maxExchangeFailures &&
    !account.latched.has('exchange-breaker')
  ) {
    tripped.push('exchange-breaker');
  }
  if (account.latched.has('exchange-breaker') || tripped.includes('exchange-breaker')) {
    return refuse('exchange-breaker', tripReason('exchange-breaker', account));
  }
  if (account.dailyPnl <= -limits.maxDailyLoss && !account.latched.has('max-daily-loss'))
    tripped.push('max-daily-loss');
  if (account.drawdown >= limits.maxDrawdown && !account.latched.has('max-drawdown'))
    tripped.push('max-drawdown');
  if (!reducing) {
    for (const name of ['max-daily-loss', 'max-drawdown'] as const) {
      if (account.latched.has(name) || tripped.includes(name)) return refuse(name, tripReason(name, account));
    }
  }
  const recent = account.recentOrderTimes.filter((t) => now - t < 60_000).length;
  if (recent >= limits.maxOrdersPerMinute)
    return refuse('max-orders-per-minute', `${recent} orders in the last minute`);
  if (!reducing) {
    const value = order.amount * order.price;
    if (value > limits.maxOrderValue)
      return refuse('max-order-size', `order value ${value.toFixed(2)} > ${limits.maxOrderValue}`);
    const after = (account.position + (order.side === 'buy' ? order.amount : -order.amount)) * order.price;
    if (after > limits.maxPositionValue)
      return refuse('max-position', `position value ${after.toFixed(2)} > ${limits.maxPositionValue}`);
  }
  return { allowed: true, tripped };
}

/**
 * Why a latching protection trips, as /trading and the dashboard show it. Its own reason, not the
 * order's verdict: an exit that trips one is still allowed, and two may trip at once.
 */
export function tripReason(name: ProtectionName, account: AccountView): string {
  if (name === 'max-daily-loss') return `daily PnL ${account.dailyPnl.toFixed(2)}`;
  if (name === 'max-drawdown') return `drawdown ${(account.drawdown * 100).toFixed(1)} %`;
  if (name === 'exchange-breaker') return `${account.consecutiveExchangeFailures} exchange failures in a row`;
  return name;
}
