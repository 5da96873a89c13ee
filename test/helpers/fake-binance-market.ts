/**
 * One symbol of the fake Binance: the seeded sim market, with the book held between steps so the
 * REST depth snapshot and the WebSocket diff stream agree, as Binance's do: every step is one book
 * update id; a REST snapshot carries the id it shows (lastUpdateId), and a diff event covers the
 * ids U..u with the final amount of every price level touched in between (0: removed). That is
 * what ccxt's order book sync needs (drop events with u <= lastUpdateId, then U must be id + 1).
 */
import type { Level, OrderBook } from '../../src/actors/trading/market.js';
import { SimMarket } from '../../src/actors/trading/sim-market.js';

export interface DepthEvent {
  U: number;
  u: number;
  bids: [string, string][];
  asks: [string, string][];
}

export class FakeMarket {
  readonly sim: SimMarket;
  updateId = 0;
  book: OrderBook;
  /** The update id the diff stream has sent up to. */
  private streamedId = 0;
  /** Prices touched since the last diff event, per side. */
  private readonly touched = { bids: new Set<number>(), asks: new Set<number>() };

  constructor(
    readonly id: string,
    symbol: string,
    startPrice: number,
  ) {
    this.sim = new SimMarket(
      symbol,
      { seed: 9, startPrice, volatility: 0.001, stepMs: 1_000, depth: 20 },
      Date.now() - 3_600_000,
    );
    for (let i = 0; i < 3_600; i++) this.sim.advance();
    this.book = this.sim.book();
    this.updateId = 1;
    this.streamedId = this.updateId;
  }

  advance(): void {
    this.touch(this.book);
    this.sim.advance();
    this.book = this.sim.book();
    this.touch(this.book);
    this.updateId += 1;
  }

  /**
   * The diff since the last event, or undefined when nothing changed. `extraBid` (a bad level a
   * test injects) is added to it; the next event removes it again.
   */
  depthEvent(extraBid?: Level): DepthEvent | undefined {
    if (this.updateId === this.streamedId && !extraBid) return undefined;
    if (this.updateId === this.streamedId) this.updateId += 1;
    const side = (levels: readonly Level[], touched: Set<number>): [string, string][] => {
      const now = new Map(levels);
      const diff = [...touched].map((p): [string, string] => [String(p), String(now.get(p) ?? 0)]);
      touched.clear();
      return diff;
    };
    const event: DepthEvent = {
      U: this.streamedId + 1,
      u: this.updateId,
      bids: side(this.book.bids, this.touched.bids),
      asks: side(this.book.asks, this.touched.asks),
    };
    if (extraBid) {
      event.bids.push([String(extraBid[0]), String(extraBid[1])]);
      this.touched.bids.add(extraBid[0]);
    }
    this.streamedId = this.updateId;
    return event;
  }

  private touch(book: OrderBook): void {
    for (const [p] of book.bids) this.touched.bids.add(p);
    for (const [p] of book.asks) this.touched.asks.add(p);
  }
}
