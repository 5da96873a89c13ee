import { describe, expect, it } from 'vitest';
import type { Candle } from '../../../src/actors/trading/market.js';
import { createStrategy, EmaCrossover } from '../../../src/actors/trading/strategy.js';

const ticker = { symbol: 'BTC/USDT', last: 100, bid: 99.9, ask: 100.1, timestamp: 0 };
const candles = (closes: number[]): Candle[] => closes.map((c, i) => [i * 60_000, c, c, c, c, 1]);

describe('EMA crossover', () => {
  const strategy = new EmaCrossover({ fast: 3, slow: 8, allocation: 0.5 });

  it('waits for its warm-up', () => {
    expect(
      strategy.decide({ symbol: 'BTC/USDT', candles: candles([1, 2, 3]), ticker, position: 0, cash: 1000 }),
    ).toBeUndefined();
  });

  it('goes long on an uptrend, sized from the cash, and flat on a downtrend', () => {
    const up = candles(Array.from({ length: 30 }, (_, i) => 100 + i));
    const long = strategy.decide({ symbol: 'BTC/USDT', candles: up, ticker, position: 0, cash: 1000 });
    expect(long?.targetPosition).toBeCloseTo(500 / 100.1);
    // Already long: nothing to do.
    expect(
      strategy.decide({ symbol: 'BTC/USDT', candles: up, ticker, position: 5, cash: 500 }),
    ).toBeUndefined();
    const down = candles(Array.from({ length: 30 }, (_, i) => 200 - i));
    expect(
      strategy.decide({ symbol: 'BTC/USDT', candles: down, ticker, position: 5, cash: 500 })?.targetPosition,
    ).toBe(0);
  });

  it('is chosen by name; an unknown name says which exist', () => {
    expect(createStrategy('ema-crossover').name).toBe('ema-crossover');
    expect(() => createStrategy('moon')).toThrow(/unknown TRADING_STRATEGY "moon"; known: ema-crossover/);
  });
});
