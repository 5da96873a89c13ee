import { describe, expect, it } from 'vitest';
import type { MarketInfo, OrderBook } from '../../../src/actors/trading/market.js';
import { TRADING_MIGRATIONS } from '../../../src/actors/trading/migrations.js';
import { PaperBroker } from '../../../src/actors/trading/paper-broker.js';
import { TradingStore } from '../../../src/actors/trading/store.js';
import { openDb } from '../../../src/store/db.js';
import { tempDir } from '../../helpers/tmp.js';

const MARKET: MarketInfo = {
  symbol: 'BTC/USDT',
  base: 'BTC',
  quote: 'USDT',
  maker: 0.001,
  taker: 0.002,
  minAmount: 0.001,
};
const MARKETS = new Map([[MARKET.symbol, MARKET]]);

function book(sequence: number, bestAsk = 101, bestBid = 99): OrderBook {
  return {
    symbol: 'BTC/USDT',
    bids: [
      [bestBid, 1],
      [bestBid - 1, 5],
    ],
    asks: [
      [bestAsk, 1],
      [bestAsk + 1, 5],
    ],
    timestamp: 0,
    sequence,
  };
}

function setup(dataDir = tempDir(), clock = { t: 1_700_000_000_000 }) {
  const db = openDb(dataDir);
  for (const m of TRADING_MIGRATIONS) {
    if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'trading_account'").get()) db.exec(m.sql);
  }
  const store = new TradingStore(db, 'paper:test');
  const broker = new PaperBroker(store, MARKETS, 'USDT', 10_000, { maxSlippage: 0.05 }, () => clock.t);
  return { db, store, broker, clock, dataDir };
}

describe('paper broker', () => {
  it('fills a market order against the book and books it in the ledger', () => {
    const { broker, store } = setup();
    const o = broker.place(
      { clientOrderId: 'c1', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 2 },
      book(1),
    );
    expect(o.status).toBe('closed');
    expect(o.filled).toBe(2);
    expect(o.average).toBeCloseTo(101.5);
    expect(store.fills(10)).toHaveLength(2);
    expect(broker.state.state.balances.BTC).toBe(2);
    expect(broker.state.state.balances.USDT).toBeCloseTo(10_000 - 203 - 203 * 0.002);
  });

  it('is idempotent by client order id: a repeat places nothing', () => {
    const { broker, store } = setup();
    const req = {
      clientOrderId: 'same',
      symbol: 'BTC/USDT',
      side: 'buy' as const,
      type: 'market' as const,
      amount: 1,
    };
    const a = broker.place(req, book(1));
    const b = broker.place(req, book(2));
    expect(b.id).toBe(a.id);
    expect(store.fills(10)).toHaveLength(1);
  });

  it('rests a limit order, reserves its funds, and fills it as maker when the book crosses', () => {
    const { broker } = setup();
    const o = broker.place(
      { clientOrderId: 'l1', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 90, price: 100 },
      book(1),
    );
    expect(o.status).toBe('open');
    // The 9,000 USDT it reserves cannot be spent twice.
    expect(() =>
      broker.place(
        { clientOrderId: 'l2', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 20, price: 100 },
        book(1),
      ),
    ).toThrow(/insufficient USDT/);
    const filled = broker.onBook(book(2, 99.5, 98));
    expect(filled).toHaveLength(1);
    // Only the 99.5 level (depth 1) crossed 100: it fills at our price, the rest keeps resting.
    expect(filled[0]).toMatchObject({ status: 'open', filled: 1, average: 100 });
  });

  it('cancels what a market order cannot fill within the slippage cap', () => {
    const { broker } = setup();
    const o = broker.place(
      { clientOrderId: 'big', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 50 },
      book(1),
    );
    expect(o.status).toBe('canceled');
    expect(o.filled).toBe(6);
    expect(o.reason).toMatch(/unfilled 44: depth/);
  });

  it('cancels every open order at once (the kill switch)', () => {
    const { broker, store } = setup();
    broker.place(
      { clientOrderId: 'a', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 1, price: 90 },
      book(1),
    );
    broker.place(
      { clientOrderId: 'b', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 1, price: 91 },
      book(1),
    );
    expect(broker.cancelAll('kill switch')).toBe(2);
    expect(store.openOrders()).toEqual([]);
    expect(broker.onBook(book(2, 80, 79))).toEqual([]);
  });

  it('keeps balances, positions, orders and fills across a restart', () => {
    const first = setup();
    first.broker.place(
      { clientOrderId: 'x', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 1 },
      book(1),
    );
    first.broker.place(
      { clientOrderId: 'y', symbol: 'BTC/USDT', side: 'sell', type: 'limit', amount: 0.5, price: 120 },
      book(1),
    );
    first.broker.mark({ 'BTC/USDT': 100 });
    const before = first.broker.state;
    first.db.close();
    const again = setup(first.dataDir);
    expect(again.broker.state).toEqual(before);
    expect(again.store.openOrders().map((o) => o.clientOrderId)).toEqual(['y']);
    expect(again.store.fills(10)).toHaveLength(1);
    // The restarted broker still refuses to sell what the open order holds.
    expect(() =>
      again.broker.place(
        { clientOrderId: 'z', symbol: 'BTC/USDT', side: 'sell', type: 'market', amount: 0.6 },
        book(2),
      ),
    ).toThrow(/insufficient BTC/);
  });

  it('refuses amounts below the market minimum and limit orders without a price', () => {
    const { broker } = setup();
    expect(() =>
      broker.place(
        { clientOrderId: 'tiny', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.0001 },
        book(1),
      ),
    ).toThrow(/below the market minimum/);
    expect(() =>
      broker.place(
        { clientOrderId: 'np', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 1 },
        book(1),
      ),
    ).toThrow(/needs a price/);
  });
});
