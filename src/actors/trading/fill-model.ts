/**
 * How a paper order fills, as honestly as the best-known dry-run modes (Hummingbot's paper
 * exchange walks the book; Freqtrade's dry run fills limit orders only when the market crosses
 * them), and a little stricter:
 * - a market order walks the opposite side of the book level by level, and stops at the slippage
 *   cap: what is left is not filled (the order ends partially filled), never filled at a made-up price;
 * - a limit order takes what the book offers at its price or better when placed (taker), then rests,
 *   and fills at its own price when the book crosses it later (maker), up to the depth that crossed;
 * - fees are the market's maker/taker rates, charged in the quote currency;
 * - liquidity taken from a snapshot is remembered, so two orders on one snapshot never both fill
 *   against the same depth. A new snapshot (a new sequence) starts afresh.
 * Pure: no I/O, no clock.
 */
import type { Level, MarketInfo, OrderBook } from './market.js';

export type Side = 'buy' | 'sell';

export interface FillPiece {
  price: number;
  amount: number;
  /** In quote currency. */
  fee: number;
  role: 'maker' | 'taker';
}

export interface FillResult {
  pieces: FillPiece[];
  filled: number;
  /** Amount-weighted price of the pieces, or undefined when nothing filled. */
  averagePrice: number | undefined;
  fee: number;
  /** Why the order did not fill completely, when it did not. */
  shortfall?: 'slippage-cap' | 'depth' | 'not-crossed';
}

export interface FillPolicy {
  /** A market order never fills further than this fraction from the best price (0.01 = 1 %). */
  maxSlippage: number;
}

export const DEFAULT_FILL_POLICY: FillPolicy = { maxSlippage: 0.01 };

/** Amounts below this are dust left by floating point, not liquidity. */
const EPSILON = 1e-12;

/** The depth already taken from the current snapshot of one symbol's book. */
export class BookLiquidity {
  private sequence = -1;
  /** Keyed by `${side}:${price}`: amount taken at that level of this snapshot. */
  private readonly taken = new Map<string, number>();

  /** The levels a taker on `side` can still fill against, best first, net of what was taken. */
  available(book: OrderBook, side: Side): Level[] {
    this.sync(book);
    const levels = side === 'buy' ? book.asks : book.bids;
    const opposite = side === 'buy' ? 'ask' : 'bid';
    return levels
      .map(([price, amount]): Level => [price, amount - (this.taken.get(`${opposite}:${price}`) ?? 0)])
      .filter(([, amount]) => amount > EPSILON);
  }

  take(book: OrderBook, side: Side, price: number, amount: number): void {
    this.sync(book);
    const key = `${side === 'buy' ? 'ask' : 'bid'}:${price}`;
    this.taken.set(key, (this.taken.get(key) ?? 0) + amount);
  }

  private sync(book: OrderBook): void {
    if (book.sequence !== this.sequence) {
      this.sequence = book.sequence;
      this.taken.clear();
    }
  }
}

/** A market order of `amount` (base currency) against `book`. */
export function fillMarket(
  book: OrderBook,
  liquidity: BookLiquidity,
  side: Side,
  amount: number,
  market: MarketInfo,
  policy: FillPolicy = DEFAULT_FILL_POLICY,
): FillResult {
  const levels = liquidity.available(book, side);
  const best = levels[0]?.[0];
  if (best === undefined) return result([], 'depth');
  const worst = side === 'buy' ? best * (1 + policy.maxSlippage) : best * (1 - policy.maxSlippage);
  return walk(book, liquidity, side, amount, levels, market.taker, 'slippage-cap', (price) =>
    side === 'buy' ? price <= worst : price >= worst,
  );
}

/**
 * A limit order: the part that is marketable at `limitPrice` fills now as taker (`role` 'taker'), or,
 * for an order already resting (`role` 'maker'), the part the book has crossed fills at the limit
 * price as maker.
 */
export function fillLimit(
  book: OrderBook,
  liquidity: BookLiquidity,
  side: Side,
  amount: number,
  limitPrice: number,
  market: MarketInfo,
  role: 'taker' | 'maker',
): FillResult {
  const crosses = (price: number) => (side === 'buy' ? price <= limitPrice : price >= limitPrice);
  const levels = liquidity.available(book, side);
  if (role === 'taker')
    return walk(book, liquidity, side, amount, levels, market.taker, 'not-crossed', crosses);
  // Resting: the counterparties that crossed trade at our price, not theirs.
  const pieces: FillPiece[] = [];
  let remaining = amount;
  for (const [price, depth] of levels) {
    if (remaining <= EPSILON || !crosses(price)) break;
    const take = Math.min(remaining, depth);
    liquidity.take(book, side, price, take);
    pieces.push({ price: limitPrice, amount: take, fee: take * limitPrice * market.maker, role: 'maker' });
    remaining -= take;
  }
  return result(pieces, remaining > EPSILON ? (pieces.length ? 'depth' : 'not-crossed') : undefined);
}

function walk(
  book: OrderBook,
  liquidity: BookLiquidity,
  side: Side,
  amount: number,
  levels: readonly Level[],
  feeRate: number,
  /** What stopping at a price the order does not allow means for this order. */
  priceStop: 'slippage-cap' | 'not-crossed',
  allowed: (price: number) => boolean,
): FillResult {
  const pieces: FillPiece[] = [];
  let remaining = amount;
  let stoppedByPrice = false;
  for (const [price, depth] of levels) {
    if (remaining <= EPSILON) break;
    if (!allowed(price)) {
      stoppedByPrice = true;
      break;
    }
    const take = Math.min(remaining, depth);
    liquidity.take(book, side, price, take);
    pieces.push({ price, amount: take, fee: take * price * feeRate, role: 'taker' });
    remaining -= take;
  }
  if (remaining <= EPSILON) return result(pieces);
  return result(pieces, stoppedByPrice ? priceStop : 'depth');
}

function result(pieces: FillPiece[], shortfall?: FillResult['shortfall']): FillResult {
  const filled = pieces.reduce((s, p) => s + p.amount, 0);
  const notional = pieces.reduce((s, p) => s + p.amount * p.price, 0);
  return {
    pieces,
    filled,
    averagePrice: filled > 0 ? notional / filled : undefined,
    fee: pieces.reduce((s, p) => s + p.fee, 0),
    ...(shortfall ? { shortfall } : {}),
  };
}
