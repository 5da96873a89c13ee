/**
 * The paper account's books: balances, positions (spot: what base currency we hold and what it
 * cost), realised and unrealised PnL, the equity curve's peak and maximum drawdown, and the win rate
 * of closed trades. Pure: a fill in, a new state out; the store persists the state and the fills.
 * Cost basis is the average price of what is held, fees included (what a tax report calls "average
 * cost"); a sell realises (price - average cost) x amount, net of its fee.
 */
import type { Side } from './fill-model.js';

export interface Position {
  symbol: string;
  /** Base currency held. */
  amount: number;
  /** Average cost per unit, quote currency, fees included. */
  averageCost: number;
}

export interface LedgerState {
  /** Currency -> free balance. */
  balances: Record<string, number>;
  positions: Record<string, Position>;
  realisedPnl: number;
  /** Fees paid in total, quote currency. */
  fees: number;
  /** Highest equity seen, quote currency. */
  peakEquity: number;
  /** Largest fall from a peak, as a fraction of the peak (0.1 = 10 %). */
  maxDrawdown: number;
  /** Sells that closed some position, and how many of them realised a profit. */
  closedTrades: number;
  winningTrades: number;
}

export interface LedgerFill {
  symbol: string;
  base: string;
  quote: string;
  side: Side;
  price: number;
  amount: number;
  fee: number;
}

export function openingLedger(quote: string, startingBalance: number): LedgerState {
  return {
    balances: { [quote]: startingBalance },
    positions: {},
    realisedPnl: 0,
    fees: 0,
    peakEquity: startingBalance,
    maxDrawdown: 0,
    closedTrades: 0,
    winningTrades: 0,
  };
}

export class InsufficientFunds extends Error {
  constructor(
    readonly currency: string,
    readonly needed: number,
    readonly available: number,
  ) {
    super(`insufficient ${currency}: need ${needed}, have ${available}`);
  }
}

export function applyFill(state: LedgerState, fill: LedgerFill): LedgerState {
  const balances = { ...state.balances };
  const positions = { ...state.positions };
  const cost = fill.price * fill.amount;
  const held = positions[fill.symbol] ?? { symbol: fill.symbol, amount: 0, averageCost: 0 };
  let { realisedPnl, closedTrades, winningTrades } = state;
  if (fill.side === 'buy') {
    balances[fill.quote] = (balances[fill.quote] ?? 0) - cost - fill.fee;
    balances[fill.base] = (balances[fill.base] ?? 0) + fill.amount;
    const amount = held.amount + fill.amount;
    const averageCost = (held.amount * held.averageCost + cost + fill.fee) / amount;
    positions[fill.symbol] = { symbol: fill.symbol, amount, averageCost };
  } else {
    balances[fill.base] = (balances[fill.base] ?? 0) - fill.amount;
    balances[fill.quote] = (balances[fill.quote] ?? 0) + cost - fill.fee;
    const pnl = (fill.price - held.averageCost) * fill.amount - fill.fee;
    realisedPnl += pnl;
    closedTrades += 1;
    if (pnl > 0) winningTrades += 1;
    const amount = Math.max(0, held.amount - fill.amount);
    if (amount <= 1e-12) delete positions[fill.symbol];
    else positions[fill.symbol] = { ...held, amount };
  }
  return {
    ...state,
    balances,
    positions,
    realisedPnl,
    fees: state.fees + fill.fee,
    closedTrades,
    winningTrades,
  };
}

/** Equity at the given marks (symbol -> price): quote balance plus every position at its mark. */
export function equity(state: LedgerState, quote: string, marks: Record<string, number>): number {
  let total = state.balances[quote] ?? 0;
  for (const p of Object.values(state.positions)) total += p.amount * (marks[p.symbol] ?? p.averageCost);
  return total;
}

export function unrealisedPnl(state: LedgerState, marks: Record<string, number>): number {
  let total = 0;
  for (const p of Object.values(state.positions)) {
    const mark = marks[p.symbol];
    if (mark !== undefined) total += (mark - p.averageCost) * p.amount;
  }
  return total;
}

/** Marks the account to market: moves the equity peak and the maximum drawdown. */
export function markToMarket(state: LedgerState, quote: string, marks: Record<string, number>): LedgerState {
  const now = equity(state, quote, marks);
  const peakEquity = Math.max(state.peakEquity, now);
  const drawdown = peakEquity > 0 ? (peakEquity - now) / peakEquity : 0;
  if (peakEquity === state.peakEquity && drawdown <= state.maxDrawdown) return state;
  return { ...state, peakEquity, maxDrawdown: Math.max(state.maxDrawdown, drawdown) };
}

export function winRate(state: LedgerState): number | null {
  return state.closedTrades === 0 ? null : state.winningTrades / state.closedTrades;
}
