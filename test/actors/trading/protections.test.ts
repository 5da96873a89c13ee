import { describe, expect, it } from 'vitest';
import {
  type AccountView,
  checkOrder,
  DEFAULT_LIMITS,
  type ProtectionName,
} from '../../../src/actors/trading/protections.js';

const NOW = 1_000_000;
const calm: AccountView = {
  position: 0,
  dailyPnl: 0,
  drawdown: 0,
  recentOrderTimes: [],
  dataTimestamp: NOW - 1_000,
  consecutiveExchangeFailures: 0,
  latched: new Set<ProtectionName>(),
};
const buy = { symbol: 'BTC/USDT', side: 'buy' as const, amount: 1, price: 100 };

describe('protections', () => {
  it('let a reasonable order through', () => {
    expect(checkOrder(buy, calm, DEFAULT_LIMITS, NOW)).toEqual({ allowed: true, tripped: [] });
  });

  it.each([
    ['max-order-size', buy, { ...DEFAULT_LIMITS, maxOrderValue: 50 }, calm],
    ['max-position', buy, { ...DEFAULT_LIMITS, maxPositionValue: 150 }, { ...calm, position: 1 }],
    [
      'max-orders-per-minute',
      buy,
      { ...DEFAULT_LIMITS, maxOrdersPerMinute: 2 },
      { ...calm, recentOrderTimes: [NOW - 5_000, NOW - 30_000] },
    ],
    ['stale-data', buy, DEFAULT_LIMITS, { ...calm, dataTimestamp: NOW - 31_000 }],
  ] as const)('%s refuses the order', (name, order, limits, account) => {
    const v = checkOrder(order, account, limits, NOW);
    expect(v.allowed).toBe(false);
    expect(v.refusedBy).toBe(name);
    expect(v.reason).toBeTruthy();
  });

  it('orders older than a minute do not count against the rate', () => {
    const account = { ...calm, recentOrderTimes: [NOW - 61_000, NOW - 70_000] };
    expect(checkOrder(buy, account, { ...DEFAULT_LIMITS, maxOrdersPerMinute: 2 }, NOW).allowed).toBe(true);
  });

  it('daily loss and drawdown trip, latch, halt entries, and still let the bot get flat', () => {
    const losing = { ...calm, position: 2, dailyPnl: -1_500 };
    const v = checkOrder(buy, losing, DEFAULT_LIMITS, NOW);
    expect(v).toMatchObject({ allowed: false, refusedBy: 'max-daily-loss', tripped: ['max-daily-loss'] });
    // Latched: even after the PnL recovers, entries stay halted until an operator resets it.
    const latched = { ...calm, position: 2, latched: new Set<ProtectionName>(['max-daily-loss']) };
    expect(checkOrder(buy, latched, DEFAULT_LIMITS, NOW).refusedBy).toBe('max-daily-loss');
    expect(checkOrder({ ...buy, side: 'sell', amount: 2 }, latched, DEFAULT_LIMITS, NOW).allowed).toBe(true);
    const dd = checkOrder(buy, { ...calm, drawdown: 0.25 }, DEFAULT_LIMITS, NOW);
    expect(dd).toMatchObject({ allowed: false, refusedBy: 'max-drawdown', tripped: ['max-drawdown'] });
  });

  it('the exchange breaker opens after repeated failures and blocks everything until reset', () => {
    const failing = { ...calm, position: 1, consecutiveExchangeFailures: 5 };
    expect(checkOrder(buy, failing, DEFAULT_LIMITS, NOW)).toMatchObject({
      allowed: false,
      refusedBy: 'exchange-breaker',
      tripped: ['exchange-breaker'],
    });
    const latched = { ...calm, position: 1, latched: new Set<ProtectionName>(['exchange-breaker']) };
    expect(checkOrder({ ...buy, side: 'sell' }, latched, DEFAULT_LIMITS, NOW).refusedBy).toBe(
      'exchange-breaker',
    );
  });
});
