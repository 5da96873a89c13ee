/**
 * Market data from any exchange ccxt supports. ccxt is imported here only, and this module only
 * when EXCHANGE is not `sim`, so a sim peer never loads it. EXCHANGE_API_URL replaces the origin of
 * every REST and WebSocket URL of the exchange (a proxy, or a local server in tests). The watch
 * methods (WebSocket) are used where the exchange has them, each kept open in the background (ticker,
 * book and candles per symbol); while a stream is dropped, refused or silent the source polls REST
 * and subscribes again with backoff.
 */
import type { BackoffPolicy } from '../backoff.js';
import { isErrorClass } from './exchange-errors.js';
import type { Candle, MarketInfo, OrderBook, Ticker } from './market.js';
import { type FeedStatus, type MarketSnapshot, type MarketSource, UnknownSymbol } from './source.js';
import { StreamWatch } from './stream-watch.js';

export interface CcxtSourceOptions {
  exchange: string;
  apiUrl?: string;
  apiKey?: string;
  secret?: string;
  /** Per-request timeout, ms. */
  timeoutMs?: number;
  /** Use the watch methods where the exchange has them. */
  useWebSocket?: boolean;
  /** A stream with no update for this long counts as broken and REST answers instead, ms. */
  streamStaleMs?: number;
  /** Delays between attempts to subscribe again after a stream failed. */
  streamRetry?: BackoffPolicy;
  /** Told once per failure streak of a stream (for a log line). */
  onStreamFailure?: (err: unknown) => void;
}

/** A quiet market may send nothing for a while; past this, REST answers until the stream does, ms. */
const STREAM_STALE_MS = 10_000;
/** Subscribe again 1 s after a stream failed, doubling to 60 s while it keeps failing. */
const STREAM_RETRY: BackoffPolicy = { baseMs: 1_000, maxMs: 60_000 };
/** Without a candle stream, candles change once a minute: fetch them at most this often, ms. */
const CANDLE_REFRESH_MS = 15_000;
/** Closed candles handed to the strategy. */
const MAX_CANDLES = 200;

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
  // A watch call answers the whole cache (every candle since the subscription), not only the updates
  // since the previous call: the source keeps the latest answer, so a closed candle's final update
  // must not be lost to the forming candle's next one.
  exchange.newUpdates = false;
  // Spot only: derivatives markets live on other hosts a proxy may not serve.
  if (exchange.options?.fetchMarkets?.types) exchange.options.fetchMarkets.types = ['spot'];
  // Spot trading needs neither the currency list nor margin pairs (both extra signed requests).
  for (const option of ['fetchCurrencies', 'fetchMargins']) {
    if (exchange.options && option in exchange.options) exchange.options[option] = false;
  }
  if (o.apiUrl) {
    rebaseUrls(exchange.urls, o.apiUrl);
    // ccxt refuses plain ws:// URLs (NotSupported, "use proxy with non-ssl ws:// urls") until its
    // http agent is loaded; without this an http:// EXCHANGE_API_URL never streams, it only polls.
    if (new URL(o.apiUrl).protocol === 'http:') await exchange.loadHttpProxyAgent?.();
  }
  return new CcxtSource(exchange, o.exchange, o);
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

interface SymbolStreams {
  ticker: StreamWatch<RawTicker>;
  book: StreamWatch<OrderBook>;
  candles: StreamWatch<Candle[]> | undefined;
}

interface RawTicker {
  last: number;
  bid: number | undefined;
  ask: number | undefined;
  timestamp: number | undefined;
}

export class CcxtSource implements MarketSource {
  private sequence = 0;
  private readonly candles = new Map<string, { at: number; candles: Candle[] }>();
  private readonly streams = new Map<string, SymbolStreams>();
  /** Candles by time per symbol (REST history merged with streamed ones); `from`: newest REST one. */
  private readonly history = new Map<string, { candles: Map<number, Candle>; from: number }>();
  private readonly streamStaleMs: number;
  private readonly retry: BackoffPolicy;
  private readonly firstUpdateMs: number;
  private closed = false;
  /** Stream updates ccxt could not parse: dropped (REST answers meanwhile), counted. */
  private malformed = 0;

  constructor(
    readonly client: CcxtExchange,
    readonly exchange: string,
    private readonly o: Pick<
      CcxtSourceOptions,
      'useWebSocket' | 'streamStaleMs' | 'streamRetry' | 'timeoutMs' | 'onStreamFailure'
    > = {},
  ) {
    this.streamStaleMs = o.streamStaleMs ?? STREAM_STALE_MS;
    this.retry = o.streamRetry ?? STREAM_RETRY;
    this.firstUpdateMs = o.timeoutMs ?? 10_000;
  }

  private get canStream(): boolean {
    const has = this.client.has ?? {};
    return Boolean(this.o.useWebSocket !== false && has.watchTicker && has.watchOrderBook);
  }

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
    const streams = this.streamsFor(symbol);
    let rawTicker: RawTicker | undefined;
    let book: OrderBook | undefined;
    if (streams) {
      // The first snapshot waits for the streams' first updates (or their first failure).
      if (!streams.ticker.hasValue || !streams.book.hasValue)
        await Promise.all([
          streams.ticker.settled(this.firstUpdateMs),
          streams.book.settled(this.firstUpdateMs),
        ]);
      rawTicker = streams.ticker.fresh(this.streamStaleMs);
      book = streams.book.fresh(this.streamStaleMs);
    }
    if (!rawTicker || !book) {
      // No streams, or one dropped or went silent: poll REST until it is back.
      const [t, b] = await settled([this.client.fetchTicker(symbol), this.client.fetchOrderBook(symbol, 20)]);
      rawTicker = toRawTicker(t);
      book = this.toBook(symbol, b);
    }
    const ticker: Ticker = {
      symbol,
      last: rawTicker.last,
      // A mini ticker (ccxt's default stream) has no bid and ask: the book has them.
      bid: Number(rawTicker.bid ?? book.bids[0]?.[0]),
      ask: Number(rawTicker.ask ?? book.asks[0]?.[0]),
      timestamp: rawTicker.timestamp ?? Date.now(),
    };
    return { book, ticker, candles: await this.recentCandles(symbol, streams) };
  }

  /** What the data comes through now (every symbol's streams must be fresh for `websocket`). */
  feed(): FeedStatus {
    return { ...this.transport(), malformed: this.malformed };
  }

  private transport(): Omit<FeedStatus, 'malformed'> {
    if (!this.canStream) return { transport: 'polling', stream: 'off', reason: null };
    const all = [...this.streams.values()].flatMap((s) => [
      s.ticker,
      s.book,
      ...(s.candles ? [s.candles] : []),
    ]);
    if (all.length === 0 || all.every((w) => w.state === 'connecting'))
      return { transport: 'polling', stream: 'connecting', reason: null };
    const broken = all.find((w) => w.state === 'reconnecting');
    if (broken) return { transport: 'polling', stream: 'reconnecting', reason: broken.error };
    const silent = all.find((w) => w.fresh(this.streamStaleMs) === undefined);
    if (silent)
      return {
        transport: 'polling',
        stream: 'reconnecting',
        reason: `no stream update for ${Math.round(this.streamStaleMs / 1000)} s`,
      };
    return { transport: 'websocket', stream: 'streaming', reason: null };
  }

  /** Opens the symbol's streams at its first snapshot; undefined when the exchange has none. */
  private streamsFor(symbol: string): SymbolStreams | undefined {
    if (!this.canStream || this.closed) return undefined;
    let streams = this.streams.get(symbol);
    if (streams) return streams;
    const c = this.client;
    const watch = <T>(next: () => Promise<T>) =>
      new StreamWatch<T>({
        next: () =>
          next().catch((err: unknown) => {
            // ccxt raises its own classes for connection trouble and exchange errors; anything else
            // is a message it could not parse (a NaN price fails its decimal arithmetic).
            if (!isErrorClass(err, 'BaseError')) this.malformed += 1;
            throw err;
          }),
        retry: this.retry,
        onFailure: this.o.onStreamFailure,
      });
    streams = {
      ticker: watch(async () => toRawTicker(await c.watchTicker(symbol))),
      book: watch(async () => this.toBook(symbol, await c.watchOrderBook(symbol, 20))),
      candles: c.has?.watchOHLCV
        ? // Candles since the subscription; recentCandles merges them into the REST history.
          watch(async () => ((await c.watchOHLCV(symbol, '1m')) as number[][]).map(toCandle))
        : undefined,
    };
    this.streams.set(symbol, streams);
    return streams;
  }

  private toBook(symbol: string, raw: CcxtExchange): OrderBook {
    // Copied: ccxt updates a watched book in place as messages arrive.
    this.sequence += 1;
    return {
      symbol,
      bids: (raw.bids ?? []).slice(0, 20).map((l: number[]) => [Number(l[0]), Number(l[1])] as const),
      asks: (raw.asks ?? []).slice(0, 20).map((l: number[]) => [Number(l[0]), Number(l[1])] as const),
      timestamp: raw.timestamp ?? Date.now(),
      sequence: this.sequence,
    };
  }

  private async recentCandles(symbol: string, streams: SymbolStreams | undefined): Promise<Candle[]> {
    const streamed = streams?.candles?.fresh(this.streamStaleMs);
    const cached = this.candles.get(symbol);
    let history = this.history.get(symbol);
    if (!streamed || !history) {
      // Without a fresh candle stream, poll REST; with one, REST gives the history once.
      if (!streamed && cached && Date.now() - cached.at < CANDLE_REFRESH_MS) return cached.candles;
      const raw: number[][] = await this.client.fetchOHLCV(symbol, '1m', undefined, MAX_CANDLES);
      const candles = new Map(raw.map((c) => [Number(c[0]), toCandle(c)]));
      history = { candles, from: Math.max(0, ...candles.keys()) };
      this.history.set(symbol, history);
    }
    // Only streamed candles from the newest REST one on: older ones in ccxt's cache may be
    // partial, cut off when an earlier connection dropped.
    for (const c of streamed ?? []) if (c[0] >= history.from) history.candles.set(c[0], c);
    const times = [...history.candles.keys()].sort((x, y) => x - y);
    for (const t of times.splice(0, Math.max(0, times.length - MAX_CANDLES - 1))) history.candles.delete(t);
    // The last candle is still forming: only closed ones feed the strategy.
    const candles = times.slice(0, -1).map((t) => history.candles.get(t) as Candle);
    this.candles.set(symbol, { at: Date.now(), candles });
    return candles;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.streams.values()) for (const w of [s.ticker, s.book, s.candles]) w?.stop();
    this.streams.clear();
    await this.client.close?.();
  }
}

function toRawTicker(raw: CcxtExchange): RawTicker {
  return {
    last: Number(raw?.last ?? raw?.close),
    bid: raw?.bid ?? undefined,
    ask: raw?.ask ?? undefined,
    timestamp: raw?.timestamp ?? undefined,
  };
}

function toCandle(c: readonly unknown[]): Candle {
  return [Number(c[0]), Number(c[1]), Number(c[2]), Number(c[3]), Number(c[4]), Number(c[5])] as const;
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
