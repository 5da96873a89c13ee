/**
 * The real ccxt binance client against the local exchange that speaks Binance's REST API: market
 * data flows through EXCHANGE_API_URL, a downed exchange shows `reconnecting` and recovers, and a
 * 429 slows the bot down.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { openCcxtSource, rebaseUrls } from '../../../src/actors/trading/ccxt-source.js';
import { classifyExchangeError } from '../../../src/actors/trading/exchange-errors.js';
import { bookProblem, candleProblem, tickerProblem } from '../../../src/actors/trading/market.js';
import { UnknownSymbol } from '../../../src/actors/trading/source.js';
import { startFakeBinance } from '../../helpers/fake-binance.js';

/** REST only, except where a test checks the fall-back from streams (ccxt-streams.test.ts has the rest). */
async function setup(useWebSocket = false) {
  const fake = await startFakeBinance();
  onTestFinished(() => fake.close());
  const source = await openCcxtSource({
    exchange: 'binance',
    apiUrl: fake.url,
    timeoutMs: 2_000,
    useWebSocket,
  });
  onTestFinished(() => source.close());
  return { fake, source };
}

describe('ccxt market source against a local Binance', () => {
  it('rebases every REST and WebSocket URL onto EXCHANGE_API_URL', () => {
    const urls = {
      api: { public: 'https://api.binance.com/api/v3', ws: { spot: 'wss://stream.binance.com:9443/ws' } },
    };
    rebaseUrls(urls, 'http://127.0.0.1:1234');
    expect(urls.api).toEqual({
      public: 'http://127.0.0.1:1234/api/v3',
      ws: { spot: 'ws://127.0.0.1:1234/ws' },
    });
  });

  it('loads markets and reads tickers, books and closed candles through ccxt', async () => {
    const { fake, source } = await setup();
    const markets = await source.loadMarkets(['BTC/USDT']);
    expect(markets.get('BTC/USDT')).toMatchObject({ base: 'BTC', quote: 'USDT', minAmount: 0.00001 });
    const snap = await source.snapshot('BTC/USDT');
    expect(bookProblem(snap.book)).toBeUndefined();
    expect(tickerProblem(snap.ticker)).toBeUndefined();
    expect(snap.candles.length).toBeGreaterThan(30);
    for (const c of snap.candles) expect(candleProblem(c)).toBeUndefined();
    expect(fake.requests.map((r) => r.path)).toEqual(
      expect.arrayContaining(['/api/v3/exchangeInfo', '/api/v3/depth', '/api/v3/klines']),
    );
  });

  it('falls back to polling when the exchange’s stream cannot be reached', async () => {
    const { fake, source } = await setup(true);
    fake.streams.drop({ refuse: true });
    await source.loadMarkets(['BTC/USDT']);
    expect(source.client.has.watchTicker).toBe(true);
    const snap = await source.snapshot('BTC/USDT');
    expect(bookProblem(snap.book)).toBeUndefined();
    expect(fake.requests.map((r) => r.path)).toContain('/api/v3/ticker/24hr');
    expect(source.feed()).toMatchObject({ transport: 'polling', stream: 'reconnecting' });
  });

  it('refuses a symbol the exchange does not list', async () => {
    const { source } = await setup();
    await expect(source.loadMarkets(['DOGE/EUR'])).rejects.toBeInstanceOf(UnknownSymbol);
  });

  it('maps a downed exchange to a network error and recovers when it returns', async () => {
    const { fake, source } = await setup();
    await source.loadMarkets(['BTC/USDT']);
    await fake.down();
    const err = await source.snapshot('BTC/USDT').catch((e: unknown) => e);
    expect(classifyExchangeError(err)).toBe('network');
    await fake.up();
    await expect(source.snapshot('BTC/USDT')).resolves.toMatchObject({ book: { symbol: 'BTC/USDT' } });
  });

  it.each([429, 418] as const)('maps %i to rate limiting', async (status) => {
    const { fake, source } = await setup();
    await source.loadMarkets(['BTC/USDT']);
    fake.failNext(status, 1);
    const err = await source.snapshot('BTC/USDT').catch((e: unknown) => e);
    expect(classifyExchangeError(err), String(err)).toBe('rate-limit');
  });
});
