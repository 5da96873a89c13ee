/**
 * A strategy turns market data into the position it wants; the engine turns the difference between
 * wanted and held into orders. A strategy never places orders itself, so protections, the kill
 * switch and the ledger stay in one place. A strategy that throws fails the trading subsystem,
 * which the supervisor restarts with backoff.
 */
import { EMA } from 'trading-signals';
import type { Candle, Ticker } from './market.js';

export interface StrategyInput {
  symbol: string;
  /** Closed candles, oldest first. */
  candles: readonly Candle[];
  ticker: Ticker;
  /** Base currency held now. */
  position: number;
  /** Quote currency available. */
  cash: number;
}

/** What the strategy wants: a target position in base currency, or nothing to change. */
export interface Intent {
  targetPosition: number;
  reason: string;
}

export interface Strategy {
  readonly name: string;
  /** The candles it needs before it decides anything. */
  readonly warmup: number;
  decide(input: StrategyInput): Intent | undefined;
}

export interface CrossoverOptions {
  fast: number;
  slow: number;
  /** Fraction of the cash a new long position may use (position sizing). */
  allocation: number;
}

/**
 * Exponential moving-average crossover: long while the fast EMA of closes is above the slow one,
 * flat otherwise. Sizing: `allocation` of available cash at the ticker's ask when going long.
 */
export class EmaCrossover implements Strategy {
  readonly name = 'ema-crossover';
  readonly warmup: number;

  constructor(private readonly options: CrossoverOptions = { fast: 12, slow: 26, allocation: 0.25 }) {
    if (options.fast >= options.slow) throw new Error('ema-crossover: fast must be shorter than slow');
    this.warmup = options.slow + 1;
  }

  decide(input: StrategyInput): Intent | undefined {
    if (input.candles.length < this.warmup) return undefined;
    const fast = new EMA(this.options.fast);
    const slow = new EMA(this.options.slow);
    for (const c of input.candles) {
      fast.update(c[4], false);
      slow.update(c[4], false);
    }
    const f = fast.getResultOrThrow();
    const s = slow.getResultOrThrow();
    if (f > s && input.position <= 0) {
      const amount = (input.cash * this.options.allocation) / input.ticker.ask;
      return { targetPosition: amount, reason: `fast EMA ${f.toFixed(2)} above slow ${s.toFixed(2)}` };
    }
    if (f < s && input.position > 0) {
      return { targetPosition: 0, reason: `fast EMA ${f.toFixed(2)} below slow ${s.toFixed(2)}` };
    }
    return undefined;
  }
}

const STRATEGIES: Record<string, () => Strategy> = {
  'ema-crossover': () => new EmaCrossover(),
};

export const STRATEGY_NAMES = Object.keys(STRATEGIES);

export function createStrategy(name: string): Strategy {
  const make = STRATEGIES[name];
  if (!make) throw new Error(`unknown TRADING_STRATEGY "${name}"; known: ${STRATEGY_NAMES.join(', ')}`);
  return make();
}
