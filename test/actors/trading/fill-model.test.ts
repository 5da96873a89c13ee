import { describe, expect, it } from 'vitest';
import { BookLiquidity, fillLimit, fillMarket } from '../../../src/actors/trading/fill-model.js';
import type { MarketInfo, OrderBook } from '../../../src/actors/trading/market.js';

const MARKET: MarketInfo = {
  symbol: 'BTC/USDT',
  base: 'BTC',
  quote: 'USDT',
  maker: 0.001,
  taker: 0.002,
  minAmount: 0.0001,
};

function book(sequence = 1): OrderBook {
  return {
    symbol: 'BTC/USDT',
    bids: [
      [99, 1],
      [98, 2],
      [90, 10],
    ],
    asks: [
      [101, 1],
      [102, 2],
      [110, 10],
    ],
    timestamp: 0,
    sequence,
  };
}

describe('fill model: market orders walk the book', () => {
  it('fills across levels at each level’s price, with the taker fee', () => {
    const r = fillMarket(book(), new BookLiquidity(), 'buy', 2, MARKET);
    expect(r.pieces).toEqual([
      { price: 101, amount: 1, fee: 101 * 0.002, role: 'taker' },
      { price: 102, amount: 1, fee: 102 * 0.002, role: 'taker' },
    ]);
    expect(r.filled).toBe(2);
    expect(r.averagePrice).toBeCloseTo(101.5);
    expect(r.fee).toBeCloseTo((101 + 102) * 0.002);
    expect(r.shortfall).toBeUndefined();
  });

  it('stops at the slippage cap and leaves the rest unfilled', () => {
    // 1 % from 101 is 102.01: the 110 level is beyond it.
    const r = fillMarket(book(), new BookLiquidity(), 'buy', 5, MARKET, { maxSlippage: 0.01 });
    expect(r.filled).toBe(3);
    expect(r.shortfall).toBe('slippage-cap');
    expect(r.pieces.every((p) => p.price <= 102.01)).toBe(true);
  });

  it('fills only what the book holds (partial depth)', () => {
    const r = fillMarket(book(), new BookLiquidity(), 'sell', 20, MARKET, { maxSlippage: 0.5 });
    expect(r.filled).toBe(13);
    expect(r.shortfall).toBe('depth');
  });

  it('never fills two orders against the same depth of one snapshot', () => {
    const liquidity = new BookLiquidity();
    const first = fillMarket(book(1), liquidity, 'buy', 1, MARKET);
    const second = fillMarket(book(1), liquidity, 'buy', 1, MARKET);
    expect(first.pieces[0]?.price).toBe(101);
    expect(second.pieces[0]?.price).toBe(102);
    // A new snapshot is new liquidity.
    const third = fillMarket(book(2), liquidity, 'buy', 1, MARKET);
    expect(third.pieces[0]?.price).toBe(101);
  });

  it('does not take bid liquidity for a buy', () => {
    const liquidity = new BookLiquidity();
    fillMarket(book(1), liquidity, 'buy', 1, MARKET);
    expect(fillMarket(book(1), liquidity, 'sell', 1, MARKET).pieces[0]?.price).toBe(99);
  });
});

describe('fill model: limit orders', () => {
  it('takes what is marketable at its price when placed, as taker, and no further', () => {
    const r = fillLimit(book(), new BookLiquidity(), 'buy', 5, 102, MARKET, 'taker');
    expect(r.filled).toBe(3);
    expect(r.pieces.every((p) => p.role === 'taker' && p.price <= 102)).toBe(true);
    expect(r.shortfall).toBe('not-crossed');
  });

  it('a resting order fills at its own price, as maker, only when the book crosses it', () => {
    const liquidity = new BookLiquidity();
    expect(fillLimit(book(1), liquidity, 'buy', 1, 100, MARKET, 'maker')).toMatchObject({
      filled: 0,
      shortfall: 'not-crossed',
    });
    const crossed: OrderBook = {
      ...book(2),
      asks: [
        [99.5, 0.4],
        [100, 0.3],
        [100.5, 5],
      ],
      bids: [[99, 1]],
    };
    const r = fillLimit(crossed, liquidity, 'buy', 1, 100, MARKET, 'maker');
    expect(r.filled).toBeCloseTo(0.7);
    expect(r.pieces.every((p) => p.price === 100 && p.role === 'maker')).toBe(true);
    expect(r.fee).toBeCloseTo(0.7 * 100 * 0.001);
    expect(r.shortfall).toBe('depth');
  });
});
