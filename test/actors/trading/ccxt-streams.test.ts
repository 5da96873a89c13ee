/**
 * ccxt pro's binance client against the local exchange's WebSocket market streams: ticks, books and
 * candles arrive over the streams (no REST polling of tickers meanwhile); a dropped or refused
 * stream is answered by REST and shows `reconnecting` until the stream is back; malformed stream
 * payloads (price 0, NaN, a crossed book) are dropped and counted by the engine, never an order.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { type CcxtSource, openCcxtSource } from '../../../src/actors/trading/ccxt-source.js';
import { TradingEngine } from '../../../src/actors/trading/engine.js';
import { bookProblem, candleProblem, tickerProblem } from '../../../src/actors/trading/market.js';
import { TRADING_MIGRATIONS } from '../../../src/actors/trading/migrations.js';
import { PaperBroker } from '../../../src/actors/trading/paper-broker.js';
import { DEFAULT_LIMITS } from '../../../src/actors/trading/protections.js';
import { TradingStore } from '../../../src/actors/trading/store.js';
import type { Strategy } from '../../../src/actors/trading/strategy.js';
import { openDb } from '../../../src/store/db.js';
import { type FakeBinance, startFakeBinance } from '../../helpers/fake-binance.js';
import { silentLogger } from '../../helpers/logger.js';
import { tempDir } from '../../helpers/tmp.js';

const REST_TICKER_PATHS = ['/api/v3/ticker/24hr', '/api/v3/ticker/bookTicker', '/api/v3/ticker/price'];

async function setup(): Promise<{ fake: FakeBinance; source: CcxtSource }> {
  const fake = await startFakeBinance({ streamIntervalMs: 50 });
  onTestFinished(() => fake.close());
  const source = await openCcxtSource({
    exchange: 'binance',
    apiUrl: fake.url,
    timeoutMs: 3_000,
    streamStaleMs: 2_000,
    streamRetry: { baseMs: 100, maxMs: 500 },
  });
  onTestFinished(() => source.close());
  await source.loadMarkets(['BTC/USDT']);
  return { fake, source };
}

const restTickerCalls = (fake: FakeBinance) =>
  fake.requests.filter((r) => REST_TICKER_PATHS.includes(r.path)).length;

describe('ccxt market streams against a local Binance', () => {
  it('ticks, books and candles arrive over the WebSocket streams, with no REST ticker polling', async () => {
    const { fake, source } = await setup();
    const first = await source.snapshot('BTC/USDT');
    expect(fake.streams.subscriptions).toEqual(
      expect.arrayContaining(['btcusdt@miniTicker', 'btcusdt@depth@100ms', 'btcusdt@kline_1m']),
    );
    await vi.waitFor(() =>
      expect(source.feed()).toMatchObject({ transport: 'websocket', stream: 'streaming', reason: null }),
    );
    const historyEnd = first.candles.at(-1)?.[0] ?? 0;
    const restBefore = fake.requests.length;
    // The streamed market runs 20 steps a second: a candle (60 steps) closes every 3 s, and
    // only the kline stream can bring it, since REST candles are fetched once.
    let last = first;
    await vi.waitFor(
      async () => {
        last = await source.snapshot('BTC/USDT');
        expect(last.candles.at(-1)?.[0]).toBeGreaterThan(historyEnd);
      },
      { timeout: 15_000, interval: 200 },
    );
    expect(bookProblem(last.book)).toBeUndefined();
    expect(tickerProblem(last.ticker)).toBeUndefined();
    for (const c of last.candles) expect(candleProblem(c)).toBeUndefined();
    expect(last.book.sequence).toBeGreaterThan(first.book.sequence);
    expect(fake.streams.sent.ticker).toBeGreaterThan(0);
    // ccxt's order book sync took one REST depth snapshot, and klines came over REST once, before.
    expect(fake.requests.slice(restBefore)).toEqual([]);
    expect(restTickerCalls(fake)).toBe(0);
    expect(fake.requests.filter((r) => r.path === '/api/v3/klines')).toHaveLength(1);
    // A candle that closed over the stream has its final values (its last update is sent once).
    const rest = (await (
      await fetch(`${fake.url}/api/v3/klines?symbol=BTCUSDT&limit=50`)
    ).json()) as unknown[][];
    const final = new Map(rest.map((k) => [Number(k[0]), k.slice(1, 6).map(Number)]));
    const streamedClosed = last.candles.filter((c) => c[0] > historyEnd);
    expect(streamedClosed.length).toBeGreaterThan(0);
    for (const c of streamedClosed) expect(c.slice(1)).toEqual(final.get(c[0]));
  });

  it('a dropped and refused stream: REST answers, the feed shows reconnecting, and the stream comes back', async () => {
    const { fake, source } = await setup();
    await source.snapshot('BTC/USDT');
    await vi.waitFor(() => expect(source.feed().stream).toBe('streaming'));
    const connections = fake.streams.connections();
    fake.streams.drop({ refuse: true });
    await vi.waitFor(() =>
      expect(source.feed()).toMatchObject({ transport: 'polling', stream: 'reconnecting' }),
    );
    const snap = await source.snapshot('BTC/USDT');
    expect(bookProblem(snap.book)).toBeUndefined();
    expect(restTickerCalls(fake)).toBeGreaterThan(0);
    fake.streams.accept();
    await vi.waitFor(
      () =>
        expect(source.feed()).toMatchObject({ transport: 'websocket', stream: 'streaming', reason: null }),
      {
        timeout: 10_000,
      },
    );
    expect(fake.streams.connections()).toBeGreaterThan(connections);
    const polled = restTickerCalls(fake);
    await source.snapshot('BTC/USDT');
    expect(restTickerCalls(fake)).toBe(polled);
  });
});

describe('the engine on streamed data', () => {
  /** Wants a bigger position whenever it is asked: any tick that reaches it may place an order. */
  const asked = { count: 0 };
  const alwaysBuy: Strategy = {
    name: 'always-buy',
    warmup: 0,
    decide: ({ position }) => {
      asked.count += 1;
      return { targetPosition: position + 0.001, reason: 'test' };
    },
  };

  async function engineOn(fake: FakeBinance) {
    const db = openDb(tempDir());
    for (const m of TRADING_MIGRATIONS) db.exec(m.sql);
    const store = new TradingStore(db, 'paper:streams');
    const engine = new TradingEngine({
      openSource: () =>
        openCcxtSource({
          exchange: 'binance',
          apiUrl: fake.url,
          timeoutMs: 3_000,
          streamStaleMs: 2_000,
          streamRetry: { baseMs: 100, maxMs: 500 },
        }),
      broker: (markets) => new PaperBroker(store, markets, 'USDT', 100_000, { maxSlippage: 0.01 }, Date.now),
      store,
      strategy: alwaysBuy,
      limits: { ...DEFAULT_LIMITS, maxOrdersPerMinute: 100_000 },
      symbols: ['BTC/USDT'],
      killSwitchActive: () => false,
      now: Date.now,
      logger: silentLogger(),
    });
    onTestFinished(() => engine.stop());
    await engine.start();
    return engine;
  }

  it.each(['zero-price', 'crossed-book'] as const)(
    'drops and counts a %s stream event, and places no order on it',
    async (kind) => {
      const fake = await startFakeBinance({ streamIntervalMs: 50 });
      onTestFinished(() => fake.close());
      const engine = await engineOn(fake);
      await engine.tick();
      await vi.waitFor(() => expect(engine.view().feed?.stream).toBe('streaming'));
      await engine.tick();
      const placed = engine.view().counters.ordersPlaced;
      expect(placed, JSON.stringify(engine.view())).toBeGreaterThan(0);
      // A long run of bad events: every tick meanwhile sees the bad value as the latest one.
      fake.streams.corruptNext(kind, 1_000_000);
      const sentBefore = kind === 'crossed-book' ? fake.streams.sent.depth : fake.streams.sent.ticker;
      await vi.waitFor(() =>
        expect(kind === 'crossed-book' ? fake.streams.sent.depth : fake.streams.sent.ticker).toBeGreaterThan(
          sentBefore + 2,
        ),
      );
      const dropped = engine.view().counters.droppedTicks;
      const askedBefore = asked.count;
      for (let i = 0; i < 3; i++) await engine.tick();
      const view = engine.view();
      expect(view.counters.droppedTicks, JSON.stringify(view.feed)).toBe(dropped + 3);
      // The bad data never reached the strategy, so no order could come of it.
      expect(asked.count).toBe(askedBefore);
      expect(view.counters.ordersPlaced).toBe(placed);
      // Good data again: the strategy is asked, and orders follow (one per candle and side).
      fake.streams.corruptNext(kind, 0);
      await vi.waitFor(
        async () => {
          await engine.tick();
          expect(engine.view().counters.ordersPlaced).toBeGreaterThan(placed);
        },
        { timeout: 15_000, interval: 200 },
      );
    },
  );

  it('counts a NaN price ccxt cannot parse, polls REST meanwhile, and never uses the NaN', async () => {
    const fake = await startFakeBinance({ streamIntervalMs: 50 });
    onTestFinished(() => fake.close());
    const engine = await engineOn(fake);
    await engine.tick();
    await vi.waitFor(() => expect(engine.view().feed?.stream).toBe('streaming'));
    fake.streams.corruptNext('nan-price', 1_000_000);
    await vi.waitFor(() =>
      expect(engine.view().feed).toMatchObject({ transport: 'polling', malformed: expect.any(Number) }),
    );
    expect(engine.view().feed?.malformed).toBeGreaterThan(0);
    const polled = restTickerCalls(fake);
    for (let i = 0; i < 3; i++) await engine.tick();
    // REST answered every tick meanwhile, with good data: the marks never held the NaN.
    expect(restTickerCalls(fake)).toBeGreaterThanOrEqual(polled + 3);
    expect(Number.isFinite(engine.view().marks['BTC/USDT'])).toBe(true);
    expect(engine.view().counters.droppedTicks).toBe(0);
    fake.streams.corruptNext('nan-price', 0);
    await vi.waitFor(() => expect(engine.view().feed?.stream).toBe('streaming'), { timeout: 10_000 });
  });

  it('the exchange going down shows reconnecting; when it is back, REST and then the streams recover', async () => {
    const fake = await startFakeBinance({ streamIntervalMs: 50 });
    onTestFinished(() => fake.close());
    const engine = await engineOn(fake);
    await engine.tick();
    await vi.waitFor(() => expect(engine.view().feed?.stream).toBe('streaming'));
    await fake.down();
    await vi.waitFor(async () => {
      await engine.tick();
      expect(engine.view().state).toBe('reconnecting');
    });
    expect(engine.view().feed?.stream).toBe('reconnecting');
    await fake.up();
    await vi.waitFor(
      async () => {
        await engine.tick();
        expect(engine.view()).toMatchObject({ state: 'running', feed: { stream: 'streaming' } });
      },
      { timeout: 15_000, interval: 200 },
    );
  });
});
