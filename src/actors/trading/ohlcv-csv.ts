/**
 * The OHLCV CSV format of TRADING_REPLAY_CSV (`time,open,high,low,close,volume`; a header line is
 * allowed; time in ms or ISO 8601). Pure, so the configuration can refuse a malformed file at start
 * with its file, line and column, before any subsystem runs.
 */
import { type Candle, candleProblem } from './market.js';

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
