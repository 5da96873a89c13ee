/**
 * Replay of a user-supplied OHLCV CSV (`time,open,high,low,close,volume`; a header line is allowed;
 * time in ms or ISO 8601) as a market: one row per snapshot, a book synthesised around the close.
 * A malformed file is refused at start with the file, line and column of the first problem.
 */
import { readFileSync } from 'node:fs';
import { type Candle, candleProblem, type Level, type MarketInfo } from './market.js';
import { simMarketInfo } from './sim-market.js';
import type { MarketSnapshot, MarketSource } from './source.js';

export class CsvFormatError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly column: number,
    problem: string,
  ) {
    super(`${file}:${line}:${column}: ${problem}`);
  }
}

const COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;

export function parseOhlcvCsv(text: string, file: string): Candle[] {
  const candles: Candle[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((line, index) => {
    const lineNo = index + 1;
    if (line.trim() === '') return;
    const cells = line.split(',').map((c) => c.trim());
    if (index === 0 && cells[0]?.toLowerCase() === 'time') return; // header
    if (cells.length !== COLUMNS.length) {
      throw new CsvFormatError(
        file,
        lineNo,
        Math.min(cells.length, COLUMNS.length) + 1,
        `expected ${COLUMNS.length} columns (${COLUMNS.join(',')}), found ${cells.length}`,
      );
    }
    const values = cells.map((cell, i) => {
      const n = i === 0 && !/^\d+$/.test(cell) ? Date.parse(cell) : Number(cell);
      if (!Number.isFinite(n) || cell === '') {
        throw new CsvFormatError(
          file,
          lineNo,
          column(cells, i),
          `${COLUMNS[i]} "${cell}" is not a number${i === 0 ? ' or an ISO time' : ''}`,
        );
      }
      return n;
    });
    const candle = values as unknown as Candle;
    const problem = candleProblem(candle);
    if (problem) throw new CsvFormatError(file, lineNo, 1, problem);
    const previous = candles.at(-1);
    if (previous && candle[0] <= previous[0])
      throw new CsvFormatError(file, lineNo, 1, 'time does not increase');
    candles.push(candle);
  });
  if (candles.length === 0) throw new CsvFormatError(file, 1, 1, 'no candles');
  return candles;
}

/** 1-based character column where cell `i` starts. */
function column(cells: string[], i: number): number {
  return cells.slice(0, i).reduce((n, c) => n + c.length + 1, 1);
}

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
