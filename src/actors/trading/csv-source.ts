/**
 * Replay of a user-supplied OHLCV CSV (see ohlcv-csv.ts) as a market: one row per snapshot, a book
 * synthesised around the close, from the start again at the end.
 */
import { readFileSync } from 'node:fs';
import type { Candle, Level, MarketInfo } from './market.js';
import { parseOhlcvCsv } from './ohlcv-csv.js';
import { simMarketInfo } from './sim-market.js';
import type { MarketSnapshot, MarketSource } from './source.js';

export class CsvReplaySource implements MarketSource {
  readonly exchange = 'replay';
  private readonly candles: Candle[];
  private position = 0;
  private symbol = '';

  constructor(
    file: string,
    private readonly now: () => number,
  ) {
    this.candles = parseOhlcvCsv(readFileSync(file, 'utf8'), file);
  }

  async loadMarkets(symbols: readonly string[]): Promise<Map<string, MarketInfo>> {
    // One file is one market: the first symbol replays it.
    this.symbol = symbols[0] ?? 'BTC/USDT';
    return new Map([[this.symbol, simMarketInfo(this.symbol)]]);
  }

  async snapshot(symbol: string): Promise<MarketSnapshot> {
    if (symbol !== this.symbol) throw new Error(`replay: only ${this.symbol} is replayed`);
    // At the end of the file the replay starts again: a 24/7 bot needs data for ever.
    const row = this.candles[this.position % this.candles.length] as Candle;
    this.position += 1;
    const close = row[4];
    const spread = close * 0.0002;
    const bids: Level[] = [];
    const asks: Level[] = [];
    for (let i = 0; i < 10; i++) {
      bids.push([close - spread - i * spread, 1 + i]);
      asks.push([close + spread + i * spread, 1 + i]);
    }
    const now = this.now();
    const end = this.position % this.candles.length || this.candles.length;
    return {
      book: { symbol, bids, asks, timestamp: now, sequence: this.position },
      ticker: { symbol, last: close, bid: close - spread, ask: close + spread, timestamp: now },
      candles: this.candles.slice(Math.max(0, end - 200), end),
    };
  }

  async close(): Promise<void> {}
}
