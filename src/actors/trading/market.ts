/**
 * Market data as the trading subsystem sees it, whatever the source (the built-in sim exchange, a
 * ccxt exchange, a CSV replay): the shapes ccxt's unified API returns, reduced to what we use, and
 * the checks that keep an absurd answer from ever producing an order.
 */

/** [price, amount] */
export type Level = readonly [number, number];

export interface OrderBook {
  symbol: string;
  /** Best (highest) first. */
  bids: readonly Level[];
  /** Best (lowest) first. */
  asks: readonly Level[];
  /** Exchange time of the snapshot, ms since the epoch. */
  timestamp: number;
  /** Increases with every new snapshot of this symbol: liquidity taken is tracked per snapshot. */
  sequence: number;
}

export interface Ticker {
  symbol: string;
  last: number;
  bid: number;
  ask: number;
  timestamp: number;
}

/** [time ms, open, high, low, close, volume], as ccxt's fetchOHLCV. */
export type Candle = readonly [number, number, number, number, number, number];

export interface MarketInfo {
  symbol: string;
  base: string;
  quote: string;
  /** Fee rates as fractions (0.001 = 0.1 %). */
  maker: number;
  taker: number;
  /** Smallest order amount in base currency. */
  minAmount: number;
}

/** Why a piece of market data is refused; undefined when it is usable. */
export function bookProblem(book: OrderBook): string | undefined {
  if (book.bids.length === 0 || book.asks.length === 0) return 'empty side';
  for (const [price, amount] of [...book.bids, ...book.asks]) {
    if (!isPositive(price) || !(Number.isFinite(amount) && amount >= 0)) return 'non-positive or NaN level';
  }
  const bestBid = book.bids[0]?.[0] ?? 0;
  const bestAsk = book.asks[0]?.[0] ?? 0;
  if (bestBid >= bestAsk) return `crossed book (bid ${bestBid} >= ask ${bestAsk})`;
  if (!sorted(book.bids, (a, b) => a > b) || !sorted(book.asks, (a, b) => a < b)) return 'unsorted levels';
  return undefined;
}

export function tickerProblem(t: Ticker): string | undefined {
  if (!isPositive(t.last) || !isPositive(t.bid) || !isPositive(t.ask)) return 'non-positive or NaN price';
  if (t.bid > t.ask) return `crossed ticker (bid ${t.bid} > ask ${t.ask})`;
  if (!Number.isFinite(t.timestamp)) return 'no timestamp';
  return undefined;
}

export function candleProblem(c: Candle): string | undefined {
  const [time, open, high, low, close, volume] = c;
  if (!Number.isFinite(time)) return 'no time';
  if (![open, high, low, close].every(isPositive)) return 'non-positive or NaN price';
  if (high < Math.max(open, close, low) || low > Math.min(open, close))
    return 'high/low do not bound the candle';
  if (!(Number.isFinite(volume) && volume >= 0)) return 'negative or NaN volume';
  return undefined;
}

function isPositive(n: number): boolean {
  return Number.isFinite(n) && n > 0;
}

function sorted(levels: readonly Level[], inOrder: (a: number, b: number) => boolean): boolean {
  for (let i = 1; i < levels.length; i++) {
    const prev = levels[i - 1]?.[0] ?? 0;
    const cur = levels[i]?.[0] ?? 0;
    if (!inOrder(prev, cur)) return false;
  }
  return true;
}
