/**
 * Where market data comes from: the built-in sim market, a replayed OHLCV CSV, or a ccxt exchange.
 * The engine sees only this interface, so ccxt is loaded only when a real exchange is configured.
 */
import type { Candle, MarketInfo, OrderBook, Ticker } from './market.js';

export interface MarketSnapshot {
  book: OrderBook;
  ticker: Ticker;
  /** Closed candles, oldest first. */
  candles: readonly Candle[];
}

export interface MarketSource {
  /** The exchange id shown in /trading (`sim`, `replay`, a ccxt id). */
  readonly exchange: string;
  /**
   * Loads the markets once. Throws {@link UnknownSymbol} for a symbol the exchange does not list.
   */
  loadMarkets(symbols: readonly string[]): Promise<Map<string, MarketInfo>>;
  snapshot(symbol: string): Promise<MarketSnapshot>;
  /** How the data arrives now; absent for sources without streams (sim, replay). */
  feed?(): FeedStatus;
  close(): Promise<void>;
}

/** What the market data comes through now, as GET /trading shows it. */
export interface FeedStatus {
  /** `websocket` while every stream of every symbol is fresh; `polling` when REST answers instead. */
  transport: 'websocket' | 'polling';
  /**
   * off: the exchange has no streams (or they are disabled); connecting: waiting for the first
   * update; streaming; reconnecting: a stream dropped, was refused or went silent, and REST answers
   * until it is back.
   */
  stream: 'off' | 'connecting' | 'streaming' | 'reconnecting';
  reason: string | null;
  /** Stream updates that could not be parsed (dropped; REST answered instead). */
  malformed: number;
}

export class UnknownSymbol extends Error {
  constructor(
    readonly symbol: string,
    readonly exchange: string,
  ) {
    super(`${exchange} does not list ${symbol}`);
  }
}
