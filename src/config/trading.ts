/** Trading: paper or live, which exchange, which markets. */
import { optional, type ValuesOf, withDefault } from './define.js';
import { list, oneOf, text, url } from './parsers.js';

export type TradingMode = 'paper' | 'live';

export const TRADING_VARS = {
  mode: withDefault(
    'TRADING_MODE',
    'paper',
    oneOf<TradingMode>('paper', 'live'),
    'paper, or live (needs exchange keys and LIVE_TRADING_CONFIRM=yes)',
  ),
  liveConfirm: optional('LIVE_TRADING_CONFIRM', text, 'must be "yes" for TRADING_MODE=live'),
  exchange: withDefault('EXCHANGE', 'sim', text, '"sim" (built-in, offline) or any ccxt exchange id'),
  exchangeApiUrl: optional('EXCHANGE_API_URL', url, 'base URL override of the exchange API'),
  apiKey: optional('EXCHANGE_API_KEY', text, 'exchange API key (live trading)', { secret: true }),
  apiSecret: optional('EXCHANGE_API_SECRET', text, 'exchange API secret (live trading)', { secret: true }),
  symbols: withDefault('TRADING_SYMBOLS', 'BTC/USDT', list, 'comma list of symbols'),
};

export type TradingConfig = ValuesOf<typeof TRADING_VARS>;

export function checkTrading(trading: Partial<TradingConfig>, problems: string[]): void {
  if (trading.mode !== 'live') return;
  if (trading.exchange === 'sim')
    problems.push('TRADING_MODE=live needs EXCHANGE set to a ccxt id, not "sim"');
  if (!trading.apiKey || !trading.apiSecret) {
    problems.push('TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET');
  }
  if (trading.liveConfirm !== 'yes') {
    problems.push('TRADING_MODE=live needs LIVE_TRADING_CONFIRM=yes (real money is at stake)');
  }
}
