/**
 * The built-in `sim` market (EXCHANGE=sim): a seeded, reproducible price process and an order book
 * around it, so a fresh machine trades on paper with no network. The price follows a geometric
 * Brownian motion with occasional jumps (fat tails, as real markets have), the spread widens with
 * volatility, and depth thins out away from the mid price. Pure: a seed and a step in, data out.
 */
import type { Candle, Level, MarketInfo, OrderBook, Ticker } from './market.js';

export interface SimOptions {
  seed: number;
  /** Starting mid price. */
  startPrice: number;
  /** Volatility per step (standard deviation of the log return). */
  volatility: number;
  /** Milliseconds a step stands for. */
  stepMs: number;
  /** Levels per side of the book. */
  depth: number;
}

export const DEFAULT_SIM: SimOptions = {
  seed: 42,
  startPrice: 60_000,
  volatility: 0.0015,
  stepMs: 1_000,
  depth: 20,
};

/** mulberry32: a tiny, well-known seeded PRNG; Math.random cannot be seeded. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function simMarketInfo(symbol: string): MarketInfo {
  const [base = 'BTC', quote = 'USDT'] = symbol.split('/');
  return { symbol, base, quote, maker: 0.001, taker: 0.001, minAmount: 0.00001 };
}

/** One symbol's simulated market. */
export class SimMarket {
  private readonly random: () => number;
  private mid: number;
  private step = 0;
  private sequence = 0;
  private readonly candleSteps = 60;
  private current: { open: number; high: number; low: number; close: number; volume: number; start: number };
  private readonly closed: Candle[] = [];

  constructor(
    readonly symbol: string,
    private readonly options: SimOptions = DEFAULT_SIM,
    private readonly startTime = 0,
  ) {
    this.random = seededRandom(options.seed ^ hash(symbol));
    this.mid = options.startPrice;
    this.current = {
      open: this.mid,
      high: this.mid,
      low: this.mid,
      close: this.mid,
      volume: 0,
      start: startTime,
    };
  }

  /** Advances the market by one step and returns the new mid price. */
  advance(): number {
    const shock = gaussian(this.random);
    const jump = this.random() < 0.002 ? gaussian(this.random) * this.options.volatility * 10 : 0;
    const drift = -0.5 * this.options.volatility ** 2;
    this.mid *= Math.exp(drift + this.options.volatility * shock + jump);
    this.step += 1;
    this.sequence += 1;
    const c = this.current;
    c.high = Math.max(c.high, this.mid);
    c.low = Math.min(c.low, this.mid);
    c.close = this.mid;
    c.volume += this.random() * 2;
    if (this.step % this.candleSteps === 0) {
      this.closed.push([c.start, c.open, c.high, c.low, c.close, c.volume]);
      if (this.closed.length > 1_000) this.closed.shift();
      const start = this.now();
      this.current = { open: this.mid, high: this.mid, low: this.mid, close: this.mid, volume: 0, start };
    }
    return this.mid;
  }

  now(): number {
    return this.startTime + this.step * this.options.stepMs;
  }

  book(): OrderBook {
    const halfSpread = this.mid * Math.max(0.00005, this.options.volatility / 4);
    const tick = this.mid * 0.0001;
    const bids: Level[] = [];
    const asks: Level[] = [];
    for (let i = 0; i < this.options.depth; i++) {
      const size = round((0.2 + this.random()) * (1 + i / 4), 5);
      bids.push([round(this.mid - halfSpread - i * tick, 2), size]);
      asks.push([round(this.mid + halfSpread + i * tick, 2), round((0.2 + this.random()) * (1 + i / 4), 5)]);
    }
    return { symbol: this.symbol, bids, asks, timestamp: this.now(), sequence: this.sequence };
  }

  ticker(): Ticker {
    const b = this.book();
    return {
      symbol: this.symbol,
      last: round(this.mid, 2),
      bid: b.bids[0]?.[0] ?? this.mid,
      ask: b.asks[0]?.[0] ?? this.mid,
      timestamp: this.now(),
    };
  }

  /** The candle still forming (the exchanges' streams send it as it grows). */
  forming(): Candle {
    const c = this.current;
    return [c.start, c.open, c.high, c.low, c.close, c.volume];
  }

  /** Closed candles, oldest first (at most `limit`). */
  candles(limit = 200): Candle[] {
    return this.closed.slice(-limit);
  }
}

/** Box-Muller: a standard normal from two uniforms. */
function gaussian(random: () => number): number {
  const u = Math.max(random(), Number.EPSILON);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
