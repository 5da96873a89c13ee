import ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { STRATEGY_NAMES } from '../../src/actors/trading/strategy.js';
import { CCXT_EXCHANGES } from '../../src/config/ccxt-exchanges.js';
import { TRADING_STRATEGIES } from '../../src/config/trading.js';
import { type ConfigError, loadConfig } from '../../src/config.js';
import { tempDir } from '../helpers/tmp.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, tempDir());
  } catch (err) {
    return (err as ConfigError).problems;
  }
  return [];
}

describe('trading configuration', () => {
  it('takes sim and any ccxt id; an unknown id names close matches', () => {
    expect(loadConfig({ EXCHANGE: 'Binance' }, tempDir()).trading.exchange).toBe('binance');
    expect(problems({ EXCHANGE: 'binanse' })).toEqual([
      expect.stringMatching(
        /EXCHANGE="binanse" is neither "sim" nor an exchange ccxt knows; did you mean binance/,
      ),
    ]);
    expect(problems({ EXCHANGE: 'qqqqqqqq' })[0]).not.toContain('did you mean');
  });

  it('keeps the list of ccxt ids in step with the installed ccxt (npm run gen:ccxt-ids)', () => {
    expect(CCXT_EXCHANGES).toEqual([...ccxt.exchanges].sort());
  });

  it('knows exactly the strategies the trading subsystem registers', () => {
    expect([...TRADING_STRATEGIES].sort()).toEqual([...STRATEGY_NAMES].sort());
  });

  it('refuses live trading without each of its three conditions, saying what is missing', () => {
    const live = {
      TRADING_MODE: 'live',
      EXCHANGE: 'binance',
      EXCHANGE_API_KEY: 'k',
      EXCHANGE_API_SECRET: 's',
      LIVE_TRADING_CONFIRM: 'yes',
    };
    expect(problems(live)).toEqual([]);
    expect(problems({ ...live, EXCHANGE: 'sim' })).toEqual([
      expect.stringContaining('EXCHANGE set to a ccxt id'),
    ]);
    expect(problems({ ...live, EXCHANGE_API_SECRET: '' })).toEqual([
      expect.stringContaining('EXCHANGE_API_KEY and EXCHANGE_API_SECRET'),
    ]);
    expect(problems({ ...live, LIVE_TRADING_CONFIRM: 'y' })).toEqual([
      expect.stringContaining('LIVE_TRADING_CONFIRM=yes'),
    ]);
    expect(problems({ TRADING_MODE: 'live' })).toHaveLength(3);
  });

  it('reads the protections as numbers and percentages', () => {
    const c = loadConfig(
      { TRADING_MAX_DRAWDOWN: '12.5', TRADING_MAX_SLIPPAGE: '0.5%', TRADING_MAX_DAILY_LOSS: '250.5' },
      tempDir(),
    );
    expect(c.trading.maxDrawdown).toBeCloseTo(0.125);
    expect(c.trading.maxSlippage).toBeCloseTo(0.005);
    expect(c.trading.maxDailyLoss).toBe(250.5);
    expect(problems({ TRADING_MAX_DRAWDOWN: '150' })[0]).toContain(
      'TRADING_MAX_DRAWDOWN must be a percentage',
    );
    expect(problems({ TRADING_MAX_ORDER_VALUE: '-1' })[0]).toContain(
      'TRADING_MAX_ORDER_VALUE must be a number',
    );
  });
});

describe('TRADING_REPLAY_CSV', () => {
  it('is refused at start with the file, line and column of the first problem', async () => {
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const dir = tempDir();
    const good = join(dir, 'good.csv');
    writeFileSync(good, 'time,open,high,low,close,volume\n1000,10,11,9,10.5,3\n2000,10.5,12,10,11,4\n');
    expect(loadConfig({ TRADING_REPLAY_CSV: good }, dir).trading.replayCsv).toBe(good);
    const bad = join(dir, 'bad.csv');
    writeFileSync(bad, 'time,open,high,low,close,volume\n1000,10,11,9,10.5,3\n2000,10.5,abc,10,11,4\n');
    expect(problems({ TRADING_REPLAY_CSV: bad })).toEqual([
      `TRADING_REPLAY_CSV: ${bad}:3:11: high "abc" is not a number`,
    ]);
    const short = join(dir, 'short.csv');
    writeFileSync(short, '1000,10,11,9\n');
    expect(problems({ TRADING_REPLAY_CSV: short })[0]).toMatch(/short\.csv:1:5: expected 6 columns/);
    expect(problems({ TRADING_REPLAY_CSV: join(dir, 'missing.csv') })[0]).toMatch(
      /cannot read .*missing\.csv/,
    );
  });
});
