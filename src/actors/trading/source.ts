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
  close(): Promise<void>;
}

export class UnknownSymbol extends Error {
  constructor(
    readonly symbol: string,
    readonly exchange: string,
  ) {
    super(`${exchange} does not list ${symbol}`);
  }
}
