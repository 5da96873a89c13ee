/**
 * Market data from any exchange ccxt supports. ccxt is imported here only, and this module only
 * when EXCHANGE is not `sim`, so a sim peer never loads it. EXCHANGE_API_URL replaces the origin of
 * every REST and WebSocket URL of the exchange (a proxy, or a local server in tests). The watch
 * methods (WebSocket) are used where the exchange has them; when a watch fails the source polls
 * over REST for a while and then tries the stream again.
 */
import type { Candle, MarketInfo, OrderBook, Ticker } from './market.js';
import { type MarketSnapshot, type MarketSource, UnknownSymbol } from './source.js';

export interface CcxtSourceOptions {
  exchange: string;
  apiUrl?: string;
  apiKey?: string;
  secret?: string;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
  /** Use the watch methods where the exchange has them. */
  useWebSocket?: boolean;
}

/** How long the source polls after a stream failed before it tries the stream again, ms. */
const STREAM_RETRY_MS = 60_000;
/** Candles change once a minute: fetch them at most this often, ms. */
const CANDLE_REFRESH_MS = 15_000;

// biome-ignore lint/suspicious/noExplicitAny: ccxt's exchange classes are typed per exchange
type CcxtExchange = any;

export async function openCcxtSource(o: CcxtSourceOptions): Promise<CcxtSource> {
  const ccxt = (await import('ccxt')).default;
  const Cls =
    (o.useWebSocket !== false && ccxt.pro[o.exchange as keyof typeof ccxt.pro]) ||
    ccxt[o.exchange as keyof typeof ccxt];
  if (typeof Cls !== 'function') throw new Error(`ccxt has no exchange "${o.exchange}"`);
  const exchange: CcxtExchange = new (Cls as new (c: object) => CcxtExchange)({
    apiKey: o.apiKey,
    secret: o.secret,
    enableRateLimit: true,
    timeout: o.timeoutMs ?? 10_000,
  });
  // Spot only: derivatives markets live on other hosts a proxy may not serve.
  if (exchange.options?.fetchMarkets?.types) exchange.options.fetchMarkets.types = ['spot'];
  // Spot trading needs neither the currency list nor margin pairs (both extra signed requests).
  for (const option of ['fetchCurrencies', 'fetchMargins']) {
    if (exchange.options && option in exchange.options) exchange.options[option] = false;
  }
  if (o.apiUrl) rebaseUrls(exchange.urls, o.apiUrl);
  return new CcxtSource(exchange, o.exchange);
}

/** Replaces the origin of every URL under `urls.api` (REST and WebSocket) with `base`'s. */
export function rebaseUrls(urls: { api?: unknown }, base: string): void {
  const target = new URL(base);
  const rewrite = (value: unknown): unknown => {
    if (typeof value === 'string' && /^(https?|wss?):\/\//.test(value)) {
      const u = new URL(value);
      const ws = u.protocol === 'ws:' || u.protocol === 'wss:';
      const secure = target.protocol === 'https:';
      const path = target.pathname.replace(/\/$/, '') + u.pathname;
      return `${ws ? (secure ? 'wss' : 'ws') : secure ? 'https' : 'http'}://${target.host}${path}${u.search}`;
    }
    if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) (value as Record<string, unknown>)[k] = rewrite(v);
    }
    return value;
  };
  urls.api = rewrite(urls.api);
}

export class CcxtSource implements MarketSource {
  private sequence = 0;
  private streamBrokenUntil = 0;
  private readonly candles = new Map<string, { at: number; candles: Candle[] }>();

  constructor(
    readonly client: CcxtExchange,
    readonly exchange: string,
  ) {}

  async loadMarkets(symbols: readonly string[]): Promise<Map<string, MarketInfo>> {
    await this.client.loadMarkets();
    const infos = new Map<string, MarketInfo>();
    for (const symbol of symbols) {
      const m = this.client.markets?.[symbol];
      if (!m) throw new UnknownSymbol(symbol, this.exchange);
      infos.set(symbol, {
        symbol,
        base: m.base,
        quote: m.quote,
        maker: m.maker ?? 0.001,
        taker: m.taker ?? 0.001,
        minAmount: m.limits?.amount?.min ?? 0,
      });
    }
    return infos;
  }

  async snapshot(symbol: string): Promise<MarketSnapshot> {
    const streaming =
      this.client.has?.watchTicker && this.client.has?.watchOrderBook && Date.now() >= this.streamBrokenUntil;
    let rawTicker: CcxtExchange;
    let rawBook: CcxtExchange;
    if (streaming) {
      try {
        [rawTicker, rawBook] = await settled([
          this.client.watchTicker(symbol),
          this.client.watchOrderBook(symbol, 20),
        ]);
      } catch {
        // A proxy without WebSocket support, or a dropped stream: poll for a while.
        this.streamBrokenUntil = Date.now() + STREAM_RETRY_MS;
      }
    }
    if (!rawTicker || !rawBook) {
      [rawTicker, rawBook] = await settled([
        this.client.fetchTicker(symbol),
        this.client.fetchOrderBook(symbol, 20),
      ]);
    }
    this.sequence += 1;
    const book: OrderBook = {
      symbol,
      bids: (rawBook.bids ?? []).map((l: number[]) => [Number(l[0]), Number(l[1])] as const),
      asks: (rawBook.asks ?? []).map((l: number[]) => [Number(l[0]), Number(l[1])] as const),
      timestamp: rawBook.timestamp ?? Date.now(),
      sequence: this.sequence,
    };
    const ticker: Ticker = {
      symbol,
      last: Number(rawTicker.last ?? rawTicker.close),
      bid: Number(rawTicker.bid ?? book.bids[0]?.[0]),
      ask: Number(rawTicker.ask ?? book.asks[0]?.[0]),
      timestamp: rawTicker.timestamp ?? Date.now(),
    };
    return { book, ticker, candles: await this.recentCandles(symbol) };
  }

  private async recentCandles(symbol: string): Promise<Candle[]> {
    const cached = this.candles.get(symbol);
    if (cached && Date.now() - cached.at < CANDLE_REFRESH_MS) return cached.candles;
    const raw: number[][] = await this.client.fetchOHLCV(symbol, '1m', undefined, 200);
    // The last candle is still forming: only closed ones feed the strategy.
    const candles = raw.slice(0, -1).map((c) => [c[0], c[1], c[2], c[3], c[4], c[5]] as unknown as Candle);
    this.candles.set(symbol, { at: Date.now(), candles });
    return candles;
  }

  async close(): Promise<void> {
    await this.client.close?.();
  }
}

/**
 * Like Promise.all, but waits for every request to end before it throws the first error: a request
 * left running would answer into the next tick (and take a rate-limit slot meanwhile).
 */
async function settled<T extends unknown[]>(requests: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(requests);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as T;
}
