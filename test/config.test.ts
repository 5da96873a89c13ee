import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type Config, ConfigError, ENV_VARS, loadConfig, testConfig } from '../src/config.js';
import { tempDir } from './helpers/tmp.js';

/** loadConfig with only `env` (never this process's environment) and a temp cwd (no stray .env). */
function load(env: Record<string, string> = {}, cwd = tempDir()): Readonly<Config> {
  return loadConfig(env, cwd);
}

/** The ConfigError loadConfig throws for `env`; fails the test when it does not throw one. */
function refusal(env: Record<string, string>): ConfigError {
  try {
    load(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

describe('loadConfig defaults (DESIGN.md section 4)', () => {
  it('gives every variable of the table its documented default', () => {
    const cwd = tempDir();
    const c = load({}, cwd);
    expect(c.port).toBe(9000);
    expect(c.host).toBe('0.0.0.0');
    expect(c.dataDir).toBe(resolve(cwd, 'data'));
    expect(c.logDir).toBe(resolve(cwd, 'logs'));
    expect(c.peerId).toBeUndefined();
    expect(c.apiToken).toBeUndefined();
    expect(c.continuousMode).toBe(true);
    expect(c.autoReconnect).toBe(true);
    expect(c.botEnabled).toBe(true);
    expect(c.healthCheckIntervalMs).toBe(30_000);
    expect(c.reconnectIntervalMs).toBe(5_000);
    expect(c.mesh).toEqual({
      secrets: [],
      cluster: 'quantum-bot',
      discovery: ['mdns'],
      peers: [],
      dnsName: undefined,
      syncIntervalMs: 5_000,
      heartbeatIntervalMs: 1_000,
      mdnsInterface: undefined,
    });
    expect(c.trading).toEqual({
      mode: 'paper',
      liveConfirm: undefined,
      exchange: 'sim',
      exchangeApiUrl: undefined,
      apiKey: undefined,
      apiSecret: undefined,
      symbols: ['BTC/USDT'],
      strategy: 'ema-crossover',
      tickIntervalMs: 1_000,
      simSpeed: 1,
      replayCsv: undefined,
      leaseMs: 15_000,
      paperAccount: 'default',
      paperStartingBalance: 10_000,
      maxSlippage: 0.01,
      maxOrderValue: 5_000,
      maxPositionValue: 20_000,
      maxOrdersPerMinute: 10,
      maxDailyLoss: 1_000,
      maxDrawdown: 0.2,
      maxDataAgeMs: 30_000,
      maxExchangeFailures: 5,
    });
    expect(c.freelance).toEqual({
      autoExecute: false,
      feeds: [],
      pollIntervalMs: 300_000,
      feedTimeoutMs: 15_000,
      webhookUrl: undefined,
      webhookSecret: undefined,
      keywords: [],
      excludeWords: [],
      minBudget: undefined,
      maxExecutionsPerHour: 10,
      webhookMaxAttempts: 8,
      maxJobBytes: 32 * 1024,
    });
    expect(c.ai).toEqual({
      baseUrl: undefined,
      apiKey: undefined,
      model: undefined,
      concurrency: 2,
      timeoutMs: 60_000,
      maxRequestsPerHour: 600,
      maxTokensPerHour: 500_000,
      maxAttempts: 6,
      retryBaseMs: 1_000,
      breakerFailures: 5,
      breakerHalfOpenMs: 30_000,
      maxPromptBytes: 32 * 1024,
    });
    expect(c.faultInjection).toBe(false);
  });

  it("keeps the 24/7 guide's breaking changes: AUTO_START, FREELANCE_ENABLED, AI_ENABLED default to true", () => {
    const c = load();
    expect(c.autoStart).toBe(true);
    expect(c.freelanceEnabled).toBe(true);
    expect(c.aiEnabled).toBe(true);
  });

  it('reads HEALTH_CHECK_INTERVAL in milliseconds', () => {
    expect(load().healthCheckIntervalMs).toBe(30_000);
    expect(load({ HEALTH_CHECK_INTERVAL: '60000' }).healthCheckIntervalMs).toBe(60_000);
  });

  it('treats an empty value as unset', () => {
    expect(load({ PORT: '', AUTO_START: '  ' })).toMatchObject({ port: 9000, autoStart: true });
  });

  it('accepts true/false/1/0 for booleans', () => {
    expect(load({ AUTO_START: 'false' }).autoStart).toBe(false);
    expect(load({ AUTO_START: '0' }).autoStart).toBe(false);
    expect(load({ AI_ENABLED: '1', FREELANCE_ENABLED: 'TRUE' })).toMatchObject({
      aiEnabled: true,
      freelanceEnabled: true,
    });
  });
});

describe('loadConfig refusals: one ConfigError listing every problem', () => {
  it('refuses HEALTH_CHECK_INTERVAL=60 as seconds, saying it is milliseconds and 60 s is 60000', () => {
    const err = refusal({ HEALTH_CHECK_INTERVAL: '60' });
    expect(err.code).toBe('QB_ERR_CONFIG');
    expect(err.problems).toHaveLength(1);
    expect(err.message).toContain('HEALTH_CHECK_INTERVAL');
    expect(err.message).toContain('milliseconds');
    expect(err.message).toContain('60000');
  });

  it.each([
    ['PORT', 'abc'],
    ['AUTO_START', 'maybe'],
    ['TRADING_MODE', 'yolo'],
  ])('refuses %s=%s by name', (name, value) => {
    const err = refusal({ [name]: value });
    expect(err.problems).toHaveLength(1);
    expect(err.problems[0]).toContain(name);
    expect(err.problems[0]).toContain(value);
    expect(err.message).toContain(name);
  });

  it('names all four problems in a single error when all four are bad at once', () => {
    const err = refusal({
      HEALTH_CHECK_INTERVAL: '60',
      PORT: 'abc',
      AUTO_START: 'maybe',
      TRADING_MODE: 'yolo',
    });
    expect(err.problems).toHaveLength(4);
    expect(err.message).toContain('4 problems');
    for (const name of ['HEALTH_CHECK_INTERVAL', 'PORT', 'AUTO_START', 'TRADING_MODE']) {
      expect(err.problems.filter((p) => p.includes(name))).toHaveLength(1);
      expect(err.message).toContain(name);
    }
  });

  it('refuses a port out of range and a boolean outside true/false/1/0', () => {
    expect(refusal({ PORT: '70000' }).problems[0]).toContain('PORT');
    expect(refusal({ AI_ENABLED: 'yes' }).problems[0]).toContain('AI_ENABLED');
  });

  it('refuses TRADING_MODE=live without exchange keys, a real exchange and LIVE_TRADING_CONFIRM=yes', () => {
    const err = refusal({ TRADING_MODE: 'live' });
    expect(err.problems).toHaveLength(3);
    expect(err.message).toContain('EXCHANGE_API_KEY');
    expect(err.message).toContain('LIVE_TRADING_CONFIRM=yes');
    expect(err.message).toContain('"sim"');

    const keysOnly = refusal({
      TRADING_MODE: 'live',
      EXCHANGE: 'binance',
      EXCHANGE_API_KEY: 'key',
      EXCHANGE_API_SECRET: 'secret',
    });
    expect(keysOnly.problems).toEqual([expect.stringContaining('LIVE_TRADING_CONFIRM=yes')]);
  });

  it('reads DATABASE_URL as a postgres URL and refuses anything else without echoing it', () => {
    expect(load().databaseUrl).toBeUndefined();
    expect(load({ DATABASE_URL: 'postgres://bot:pw@db:5432/fleet' }).databaseUrl).toBe(
      'postgres://bot:pw@db:5432/fleet',
    );
    const err = refusal({ DATABASE_URL: 'mysql://bot:hunter2secret@db/fleet' });
    expect(err.problems).toEqual(['DATABASE_URL must be a postgres:// or postgresql:// URL']);
    expect(err.message).not.toContain('hunter2secret');
  });

  it('accepts TRADING_MODE=live with keys, a ccxt exchange and the confirmation', () => {
    const c = load({
      TRADING_MODE: 'live',
      EXCHANGE: 'binance',
      EXCHANGE_API_KEY: 'key',
      EXCHANGE_API_SECRET: 'secret',
      LIVE_TRADING_CONFIRM: 'yes',
    });
    expect(c.trading.mode).toBe('live');
    expect(c.trading.exchange).toBe('binance');
  });
});

describe('loadConfig sources', () => {
  it('reads .env in cwd, and the real environment wins over it', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'PORT=1234\nAUTO_START=false\nMESH_CLUSTER=from-file\n');
    const c = loadConfig({ PORT: '4321' }, cwd);
    expect(c.port).toBe(4321);
    expect(c.autoStart).toBe(false);
    expect(c.mesh.cluster).toBe('from-file');
  });

  it('refuses a bad value that comes from .env like any other', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'AUTO_START=maybe\n');
    expect(() => loadConfig({}, cwd)).toThrow(/AUTO_START/);
  });

  it('works without a .env file', () => {
    expect(loadConfig({ PORT: '1' }, tempDir()).port).toBe(1);
  });
});

describe('the Config object', () => {
  it('is deeply frozen', () => {
    const c = load({ TRADING_SYMBOLS: 'BTC/USDT,ETH/USDT' });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.mesh)).toBe(true);
    expect(Object.isFrozen(c.supervisor)).toBe(true);
    expect(Object.isFrozen(c.trading.symbols)).toBe(true);
    expect(() => {
      (c as Config).port = 1;
    }).toThrow(TypeError);
    expect(() => (c.trading.symbols as string[]).push('X')).toThrow(TypeError);
    expect(c.port).toBe(9000);
  });

  it('declares every variable once, with a description', () => {
    const names = ENV_VARS.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    for (const v of ENV_VARS) expect(v.description.length, v.name).toBeGreaterThan(0);
  });

  it('testConfig is a fast, quiet preset on port 0 inside its data dir', () => {
    const dir = tempDir();
    const c = testConfig(dir, { AUTO_START: 'false' });
    expect(c).toMatchObject({
      port: 0,
      host: '127.0.0.1',
      dataDir: dir,
      logLevel: 'silent',
      continuousMode: false,
      autoStart: false,
    });
    expect(c.mesh.discovery).toEqual(['static']);
    expect(c.supervisor.restartBaseMs).toBeLessThan(1000);
  });
});

describe('.env.example', () => {
  const example = readFileSync(fileURLToPath(new URL('../.env.example', import.meta.url)), 'utf8');
  /** Names assigned on a line of their own, commented out (`# NAME=`) or not. */
  const documented = new Set([...example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]));

  it.each(ENV_VARS.map((v) => [v.name, v] as const))('documents %s', (name, v) => {
    expect(documented.has(name)).toBe(true);
    expect(example).toContain(v.description);
  });

  it('sets no variable the program does not read', () => {
    const known = new Set(ENV_VARS.map((v) => v.name));
    expect([...documented].filter((name) => !known.has(name as string))).toEqual([]);
  });

  it('is itself a valid configuration', () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), example);
    expect(() => loadConfig({}, cwd)).not.toThrow();
  });
});
