/** Trading: paper or live, which exchange and markets, the strategy, and the protections' limits. */
import { readFileSync } from 'node:fs';
import { parseOhlcvCsv } from '../actors/trading/ohlcv-csv.js';
import { CCXT_EXCHANGES } from './ccxt-exchanges.js';
import { optional, type ValuesOf, withDefault } from './define.js';
import { decimal, integer, interval, list, oneOf, peerIdText, percent, text, url } from './parsers.js';
import { editDistance } from './suggest.js';

export type TradingMode = 'paper' | 'live';

/** The strategies this build has (src/actors/trading/strategy.ts registers each). */
export const TRADING_STRATEGIES = ['ema-crossover'] as const;
export type TradingStrategyName = (typeof TRADING_STRATEGIES)[number];

/** `sim`, or an exchange id of the installed ccxt; a typo names the closest ids. */
const exchangeId = (raw: string, name: string): string => {
  const id = raw.trim().toLowerCase();
  if (id === 'sim' || CCXT_EXCHANGES.includes(id)) return id;
  const near = CCXT_EXCHANGES.filter(
    (e) => editDistance(id, e) <= Math.min(2, Math.floor(e.length / 3)),
  ).slice(0, 3);
  throw new Error(
    `${name}="${raw}" is neither "sim" nor an exchange ccxt knows${near.length ? `; did you mean ${near.join(', ')}?` : ''}`,
  );
};

/**
 * A readable OHLCV CSV, checked at start so a malformed file is refused with its file, line and
 * column (the one import of feature code here: the pure parser, which imports nothing else).
 */
const ohlcvCsv = (raw: string, name: string): string => {
  const file = raw.trim();
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${name}: cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    parseOhlcvCsv(text, file);
  } catch (err) {
    throw new Error(`${name}: ${(err as Error).message}`);
  }
  return file;
};

export const TRADING_VARS = {
  mode: withDefault(
    'TRADING_MODE',
    'paper',
    oneOf<TradingMode>('paper', 'live'),
    'paper, or live (needs exchange keys and LIVE_TRADING_CONFIRM=yes)',
  ),
  liveConfirm: optional('LIVE_TRADING_CONFIRM', text, 'must be "yes" for TRADING_MODE=live'),
  exchange: withDefault('EXCHANGE', 'sim', exchangeId, '"sim" (built-in, offline) or any ccxt exchange id'),
  exchangeApiUrl: optional(
    'EXCHANGE_API_URL',
    url,
    'replaces the origin of every REST and WebSocket URL of the exchange (a proxy; tests)',
  ),
  apiKey: optional('EXCHANGE_API_KEY', text, 'exchange API key (live trading)', { secret: true }),
  apiSecret: optional('EXCHANGE_API_SECRET', text, 'exchange API secret (live trading)', { secret: true }),
  symbols: withDefault('TRADING_SYMBOLS', 'BTC/USDT', list, 'comma list of symbols'),
  strategy: withDefault(
    'TRADING_STRATEGY',
    'ema-crossover',
    oneOf<TradingStrategyName>(...TRADING_STRATEGIES),
    `the strategy that turns candles into orders: ${TRADING_STRATEGIES.join(', ')}`,
  ),
  tickIntervalMs: withDefault('TRADING_TICK_INTERVAL', '1000', interval(), 'ms between trading ticks'),
  simSpeed: withDefault(
    'TRADING_SIM_SPEED',
    '1',
    integer(1),
    'EXCHANGE=sim: market steps per tick (60 closes a one-minute candle every tick: a fast market for tests and demos)',
  ),
  replayCsv: optional(
    'TRADING_REPLAY_CSV',
    ohlcvCsv,
    'OHLCV CSV (time,open,high,low,close,volume) replayed as the market instead of the exchange',
  ),
  leaseMs: withDefault(
    'TRADING_LEASE',
    '15000',
    interval(),
    'with DATABASE_URL: length of the account lease, ms; renewed every third of it, and orders stop a quarter of it before it could expire unrenewed; another peer takes over at most this long after the holder dies',
  ),
  paperAccount: withDefault(
    'PAPER_ACCOUNT',
    'default',
    peerIdText,
    'name of the paper account (peers with the same name and exchange trade one account)',
  ),
  paperStartingBalance: withDefault(
    'PAPER_STARTING_BALANCE',
    '10000',
    decimal(0),
    'quote-currency balance a new paper account starts with',
  ),
  maxSlippage: withDefault(
    'TRADING_MAX_SLIPPAGE',
    '1',
    percent,
    'a market order never fills further than this % from the best price',
  ),
  maxOrderValue: withDefault('TRADING_MAX_ORDER_VALUE', '5000', decimal(0), 'largest order, quote currency'),
  maxPositionValue: withDefault(
    'TRADING_MAX_POSITION_VALUE',
    '20000',
    decimal(0),
    'largest position per symbol, quote currency',
  ),
  maxOrdersPerMinute: withDefault(
    'TRADING_MAX_ORDERS_PER_MINUTE',
    '10',
    integer(1),
    'orders per minute before new ones are refused',
  ),
  maxDailyLoss: withDefault(
    'TRADING_MAX_DAILY_LOSS',
    '1000',
    decimal(0),
    'loss since the UTC day began (quote currency) that halts new entries until an operator resets it',
  ),
  maxDrawdown: withDefault(
    'TRADING_MAX_DRAWDOWN',
    '20',
    percent,
    'drawdown from the equity peak (%) that halts new entries until an operator resets it',
  ),
  maxDataAgeMs: withDefault(
    'TRADING_MAX_DATA_AGE',
    '30000',
    interval(),
    'no order on prices older than this, ms',
  ),
  maxExchangeFailures: withDefault(
    'TRADING_MAX_EXCHANGE_FAILURES',
    '5',
    integer(1),
    'exchange failures in a row that open the breaker (held until an operator resets it)',
  ),
};

export type TradingConfig = ValuesOf<typeof TRADING_VARS>;

export function checkTrading(trading: Partial<TradingConfig>, problems: string[]): void {
  if (trading.mode !== 'live') return;
  const missing: string[] = [];
  if (trading.exchange === 'sim') missing.push('EXCHANGE set to a ccxt id, not "sim"');
  if (!trading.apiKey || !trading.apiSecret) missing.push('EXCHANGE_API_KEY and EXCHANGE_API_SECRET');
  if (trading.liveConfirm !== 'yes') missing.push('LIVE_TRADING_CONFIRM=yes (real money is at stake)');
  for (const m of missing) problems.push(`TRADING_MODE=live needs ${m}`);
}
