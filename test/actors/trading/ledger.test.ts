import { describe, expect, it } from 'vitest';
import {
  applyFill,
  equity,
  markToMarket,
  openingLedger,
  unrealisedPnl,
  winRate,
} from '../../../src/actors/trading/ledger.js';

const PAIR = { symbol: 'BTC/USDT', base: 'BTC', quote: 'USDT' } as const;

describe('paper ledger', () => {
  it('moves balances, keeps an average cost with fees, realises PnL net of fees', () => {
    let s = openingLedger('USDT', 10_000);
    s = applyFill(s, { ...PAIR, side: 'buy', price: 100, amount: 10, fee: 1 });
    s = applyFill(s, { ...PAIR, side: 'buy', price: 110, amount: 10, fee: 1.1 });
    expect(s.balances.USDT).toBeCloseTo(10_000 - 1000 - 1 - 1100 - 1.1);
    expect(s.balances.BTC).toBe(20);
    expect(s.positions['BTC/USDT']?.averageCost).toBeCloseTo((2100 + 2.1) / 20);
    s = applyFill(s, { ...PAIR, side: 'sell', price: 120, amount: 20, fee: 2.4 });
    expect(s.positions['BTC/USDT']).toBeUndefined();
    expect(s.realisedPnl).toBeCloseTo(2400 - 2100 - 2.1 - 2.4);
    expect(s.balances.USDT).toBeCloseTo(10_000 + s.realisedPnl);
    expect(s.fees).toBeCloseTo(4.5);
    expect(winRate(s)).toBe(1);
  });

  it('counts losing trades in the win rate and tracks the maximum drawdown', () => {
    let s = openingLedger('USDT', 1000);
    expect(winRate(s)).toBeNull();
    s = applyFill(s, { ...PAIR, side: 'buy', price: 100, amount: 5, fee: 0 });
    s = markToMarket(s, 'USDT', { 'BTC/USDT': 120 });
    expect(s.peakEquity).toBe(1100);
    s = markToMarket(s, 'USDT', { 'BTC/USDT': 78 });
    expect(equity(s, 'USDT', { 'BTC/USDT': 78 })).toBe(890);
    expect(unrealisedPnl(s, { 'BTC/USDT': 78 })).toBe(-110);
    expect(s.maxDrawdown).toBeCloseTo(210 / 1100);
    s = applyFill(s, { ...PAIR, side: 'sell', price: 80, amount: 5, fee: 0 });
    expect(winRate(s)).toBe(0);
    // A recovery does not shrink the worst drawdown seen.
    s = markToMarket(s, 'USDT', {});
    expect(s.maxDrawdown).toBeCloseTo(210 / 1100);
  });
});
