import { describe, expect, it } from 'vitest';
import { bookProblem, candleProblem, tickerProblem } from '../../../src/actors/trading/market.js';
import { DEFAULT_SIM, SimMarket } from '../../../src/actors/trading/sim-market.js';

describe('the sim market', () => {
  it('is reproducible from its seed, and differs with another seed', () => {
    const run = (seed: number) => {
      const m = new SimMarket('BTC/USDT', { ...DEFAULT_SIM, seed });
      return Array.from({ length: 500 }, () => m.advance());
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('produces sane books, tickers and candles for thousands of steps', () => {
    const m = new SimMarket('ETH/USDT', { ...DEFAULT_SIM, startPrice: 3000 });
    for (let i = 0; i < 6_000; i++) {
      m.advance();
      if (i % 97 === 0) {
        expect(bookProblem(m.book())).toBeUndefined();
        expect(tickerProblem(m.ticker())).toBeUndefined();
      }
    }
    const candles = m.candles(1_000);
    expect(candles).toHaveLength(100);
    for (const c of candles) expect(candleProblem(c)).toBeUndefined();
    // The price moves, but a random walk at this volatility stays within a sane band.
    const closes = candles.map((c) => c[4]);
    expect(Math.max(...closes)).not.toBe(Math.min(...closes));
    expect(Math.max(...closes) / Math.min(...closes)).toBeLessThan(3);
  });

  it('gives each snapshot a new sequence', () => {
    const m = new SimMarket('BTC/USDT');
    const a = m.book().sequence;
    m.advance();
    expect(m.book().sequence).toBe(a + 1);
  });
});

describe('market-data checks refuse absurd answers', () => {
  const good = {
    symbol: 'X/Y',
    bids: [[99, 1]] as const,
    asks: [[101, 1]] as const,
    timestamp: 1,
    sequence: 1,
  };
  it.each([
    ['an empty side', { ...good, asks: [] }, /empty/],
    ['a zero price', { ...good, bids: [[0, 1]] }, /non-positive/],
    ['a NaN amount', { ...good, asks: [[101, Number.NaN]] }, /non-positive/],
    ['crossed sides', { ...good, bids: [[102, 1]] }, /crossed/],
    [
      'unsorted levels',
      {
        ...good,
        asks: [
          [101, 1],
          [100.5, 1],
        ],
      },
      /crossed|unsorted/,
    ],
  ])('a book with %s', (_, book, problem) => {
    expect(bookProblem(book as never)).toMatch(problem);
  });
  it('tickers and candles', () => {
    expect(tickerProblem({ symbol: 'X', last: 0, bid: 1, ask: 2, timestamp: 1 })).toMatch(/non-positive/);
    expect(tickerProblem({ symbol: 'X', last: 1, bid: 3, ask: 2, timestamp: 1 })).toMatch(/crossed/);
    expect(candleProblem([1, 10, 9, 8, 9, 1])).toMatch(/bound/);
    expect(candleProblem([1, 10, 11, 8, 9, -1])).toMatch(/volume/);
    expect(candleProblem([1, 10, 11, 8, 9, 1])).toBeUndefined();
  });
});
