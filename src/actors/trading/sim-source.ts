/** EXCHANGE=sim: the seeded sim market as a market source. One snapshot is one step of the market. */
import type { MarketInfo } from './market.js';
import { DEFAULT_SIM, SimMarket, type SimOptions, simMarketInfo } from './sim-market.js';
import type { MarketSnapshot, MarketSource } from './source.js';

/** Steps run before the first snapshot, so the strategy has candles to work with (60 per candle). */
const WARMUP_STEPS = 60 * 40;

export class SimSource implements MarketSource {
  readonly exchange = 'sim';
  private readonly markets = new Map<string, SimMarket>();

  /**
   * @param stepsPerSnapshot market steps per snapshot (TRADING_SIM_SPEED): 60 closes a candle every
   * tick, so a strategy decides (and tests see orders) 60 times as often. Default 1.
   */
  constructor(
    private readonly now: () => number,
    private readonly options: Partial<SimOptions> = {},
    private readonly stepsPerSnapshot = 1,
  ) {}

  async loadMarkets(symbols: readonly string[]): Promise<Map<string, MarketInfo>> {
    const infos = new Map<string, MarketInfo>();
    symbols.forEach((symbol, i) => {
      const start = this.now() - WARMUP_STEPS * (this.options.stepMs ?? DEFAULT_SIM.stepMs);
      const startPrice = this.options.startPrice ?? DEFAULT_SIM.startPrice / 10 ** i;
      const market = new SimMarket(symbol, { ...DEFAULT_SIM, ...this.options, startPrice }, start);
      for (let step = 0; step < WARMUP_STEPS; step++) market.advance();
      this.markets.set(symbol, market);
      infos.set(symbol, simMarketInfo(symbol));
    });
    return infos;
  }

  async snapshot(symbol: string): Promise<MarketSnapshot> {
    const market = this.markets.get(symbol);
    if (!market) throw new Error(`sim: ${symbol} was not loaded`);
    for (let i = 0; i < this.stepsPerSnapshot; i++) market.advance();
    // The sim's own clock runs in steps; what the engine checks for staleness is the time of the data.
    const now = this.now();
    return {
      book: { ...market.book(), timestamp: now },
      ticker: { ...market.ticker(), timestamp: now },
      candles: market.candles(200),
    };
  }

  async close(): Promise<void> {
    this.markets.clear();
  }
}
