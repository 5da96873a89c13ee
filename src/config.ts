/**
 * The only reader of the environment. Every variable is declared once in {@link ENV_VARS} with its
 * default and meaning; `.env.example` and the README are checked against that table by a test.
 * A bad value never reaches a subsystem: {@link loadConfig} throws one {@link ConfigError} that lists
 * every problem, and the process exits before it starts anything.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseEnv } from 'node:util';
import { QbError } from './errors.js';

export const DEFAULT_PORT = 9000;
export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 30_000;
export const DEFAULT_RECONNECT_INTERVAL_MS = 5_000;
export const DEFAULT_MESH_SYNC_INTERVAL_MS = 5_000;
export const DEFAULT_MESH_HEARTBEAT_INTERVAL_MS = 1_000;
/** Intervals under this are almost certainly seconds written by a user of the old guide. */
export const MIN_INTERVAL_MS = 1_000;
export const DEFAULT_RESTART_BASE_MS = 1_000;
export const DEFAULT_RESTART_MAX_MS = 60_000;
export const DEFAULT_STABLE_PERIOD_MS = 60_000;
export const MAX_CONSECUTIVE_FAILURES = 10;
export const DEFAULT_RESPAWN_BASE_MS = 250;
export const DEFAULT_RESPAWN_MAX_MS = 30_000;

export type Discovery = 'mdns' | 'dns' | 'static';
export type TradingMode = 'paper' | 'live';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface SupervisorConfig {
  /** First restart delay, ms; doubles per consecutive failure. */
  restartBaseMs: number;
  /** Upper bound of a restart delay, ms. */
  restartMaxMs: number;
  /** Running this long (ms) forgives earlier failures. */
  stablePeriodMs: number;
  /** The failure that makes this many in a row holds the subsystem `failed`. */
  maxConsecutiveFailures: number;
}

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  /** PostgreSQL URL shared by the fleet; undefined: queues live in SQLite in dataDir. */
  databaseUrl: string | undefined;
  logDir: string;
  logLevel: LogLevel;
  peerId: string | undefined;
  apiToken: string | undefined;
  continuousMode: boolean;
  autoStart: boolean;
  autoReconnect: boolean;
  botEnabled: boolean;
  freelanceEnabled: boolean;
  aiEnabled: boolean;
  healthCheckIntervalMs: number;
  reconnectIntervalMs: number;
  mesh: {
    secrets: string[];
    cluster: string;
    discovery: Discovery[];
    peers: string[];
    dnsName: string | undefined;
    syncIntervalMs: number;
    heartbeatIntervalMs: number;
    mdnsInterface: string | undefined;
  };
  trading: {
    mode: TradingMode;
    exchange: string;
    exchangeApiUrl: string | undefined;
    apiKey: string | undefined;
    apiSecret: string | undefined;
    symbols: string[];
  };
  freelance: FreelanceConfig;
  ai: AiConfig;
  supervisor: SupervisorConfig;
  worker: { respawnBaseMs: number; respawnMaxMs: number };
  /** Reading /live needs the API token too. */
  dashboardTokenRequired: boolean;
  /** Enables the /faults endpoints that make a subsystem throw or the worker crash. Never in production. */
  faultInjection: boolean;
  /** Set by the process supervisor for its child; not for users. */
  internal: { isWorker: boolean; workerRespawns: number };
}

// --- AI tasks and freelance jobs (issue 9): kept in one block -----------------------------------

export const DEFAULT_AI_CONCURRENCY = 2;
export const MAX_AI_CONCURRENCY = 32;
export const DEFAULT_AI_TIMEOUT_MS = 60_000;
export const DEFAULT_AI_MAX_REQUESTS_PER_HOUR = 600;
export const DEFAULT_AI_MAX_TOKENS_PER_HOUR = 500_000;
export const DEFAULT_AI_MAX_ATTEMPTS = 6;
export const DEFAULT_AI_RETRY_BASE_MS = 1_000;
export const DEFAULT_AI_BREAKER_FAILURES = 5;
export const DEFAULT_AI_BREAKER_HALF_OPEN_MS = 30_000;
export const DEFAULT_AI_MAX_PROMPT_BYTES = 32 * 1024;
export const DEFAULT_FREELANCE_POLL_INTERVAL_MS = 300_000;
export const DEFAULT_FREELANCE_FEED_TIMEOUT_MS = 15_000;
export const DEFAULT_FREELANCE_MAX_EXECUTIONS_PER_HOUR = 10;
export const DEFAULT_FREELANCE_WEBHOOK_MAX_ATTEMPTS = 8;
export const DEFAULT_FREELANCE_MAX_JOB_BYTES = 32 * 1024;

export interface AiConfig {
  baseUrl: string | undefined;
  apiKey: string | undefined;
  model: string | undefined;
  /** Provider calls in flight at once. */
  concurrency: number;
  /** ms one provider call may take. */
  timeoutMs: number;
  maxRequestsPerHour: number;
  maxTokensPerHour: number;
  /** Attempts before a task is `dead`. */
  maxAttempts: number;
  /** First retry delay without Retry-After, ms; doubles per attempt. */
  retryBaseMs: number;
  /** Consecutive provider failures that open the circuit breaker. */
  breakerFailures: number;
  /** ms the breaker stays open before it lets one probe through. */
  breakerHalfOpenMs: number;
  /** Bytes of prompt + system prompt a task may carry (413 above). */
  maxPromptBytes: number;
}

export interface FreelanceConfig {
  autoExecute: boolean;
  feeds: string[];
  pollIntervalMs: number;
  /** ms one feed request may take, body included. */
  feedTimeoutMs: number;
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  keywords: string[];
  excludeWords: string[];
  minBudget: number | undefined;
  maxExecutionsPerHour: number;
  webhookMaxAttempts: number;
  maxJobBytes: number;
}

// --- end of the issue 9 block ---------------------------------------------------------------

type Env = Record<string, string | undefined>;
type Parser<T> = (raw: string, name: string) => T;

/** One environment variable: its name, default (as the user would write it) and meaning. */
export interface EnvVarSpec {
  name: string;
  default: string | undefined;
  description: string;
  secret?: boolean;
}

export class ConfigError extends QbError {
  constructor(readonly problems: string[]) {
    super(
      'QB_ERR_CONFIG',
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems
        .map((p) => `  - ${p}`)
        .join('\n')}`,
    );
  }
}

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, false: false, '1': true, '0': false };

const bool: Parser<boolean> = (raw, name) => {
  const value = BOOLEAN_WORDS[raw.trim().toLowerCase()];
  if (value === undefined) throw new Error(`${name} must be one of true, false, 1, 0; got "${raw}"`);
  return value;
};

const port: Parser<number> = (raw, name) => {
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || n > 65_535) {
    throw new Error(`${name} must be an integer from 0 to 65535; got "${raw}"`);
  }
  return n;
};

const integer =
  (min: number): Parser<number> =>
  (raw, name) => {
    const n = Number(raw.trim());
    if (!/^\d+$/.test(raw.trim()) || n < min) {
      throw new Error(`${name} must be a whole number of at least ${min}; got "${raw}"`);
    }
    return n;
  };

/** Milliseconds; refuses small values because the old guide used seconds for the same names. */
const interval: Parser<number> = (raw, name) => {
  const n = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim())) {
    throw new Error(`${name} must be a whole number of milliseconds; got "${raw}"`);
  }
  if (n < MIN_INTERVAL_MS) {
    throw new Error(
      `${name}=${raw} looks like seconds: it is in milliseconds now, so ${n} seconds is ${n * 1000}` +
        ` (values under ${MIN_INTERVAL_MS} are refused)`,
    );
  }
  return n;
};

const oneOf =
  <T extends string>(...allowed: T[]): Parser<T> =>
  (raw, name) => {
    const value = raw.trim().toLowerCase() as T;
    if (!allowed.includes(value))
      throw new Error(`${name} must be one of ${allowed.join(', ')}; got "${raw}"`);
    return value;
  };

const text: Parser<string> = (raw) => raw.trim();

const amount: Parser<number> = (raw, name) => {
  const n = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new Error(`${name} must be a number of at least 0; got "${raw}"`);
  }
  return n;
};

const between =
  (min: number, max: number): Parser<number> =>
  (raw, name) => {
    const n = integer(min)(raw, name);
    if (n > max) throw new Error(`${name} must be at most ${max}; got "${raw}"`);
    return n;
  };

const list: Parser<string[]> = (raw) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

const hostPortList: Parser<string[]> = (raw, name) => {
  const entries = list(raw, name);
  for (const entry of entries) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d+)$/.exec(entry);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65_535) {
      throw new Error(`${name} must be a comma list of host:port; "${entry}" is not`);
    }
  }
  return entries;
};

const discoveryList: Parser<Discovery[]> = (raw, name) => {
  const entries = list(raw, name);
  const allowed: Discovery[] = ['mdns', 'dns', 'static'];
  const bad = entries.filter((e) => !allowed.includes(e.toLowerCase() as Discovery));
  if (bad.length > 0 || entries.length === 0) {
    throw new Error(`${name} must be a comma list of mdns, dns, static; got "${raw}"`);
  }
  return [...new Set(entries.map((e) => e.toLowerCase() as Discovery))];
};

const url: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http');
    return raw.trim().replace(/\/+$/, '');
  } catch {
    throw new Error(`${name} must be an http(s) URL; got "${raw}"`);
  }
};

const urlList: Parser<string[]> = (raw, name) => list(raw, name).map((u) => url(u, name));

/** A Standard Webhooks secret: `whsec_` and base64, as receivers print it. */
const webhookSecret: Parser<string> = (raw, name) => {
  const value = raw.trim();
  const body = value.startsWith('whsec_') ? value.slice(6) : value;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || Buffer.from(body, 'base64').length < 16) {
    throw new Error(`${name} must be whsec_ followed by at least 16 bytes of base64`);
  }
  return value;
};

const postgresUrl: Parser<string> = (raw, name) => {
  try {
    const u = new URL(raw.trim());
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error('not postgres');
    return raw.trim();
  } catch {
    // The value may hold a password: never echo it.
    throw new Error(`${name} must be a postgres:// or postgresql:// URL`);
  }
};

const peerIdText: Parser<string> = (raw, name) => {
  const value = raw.trim();
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    throw new Error(`${name} must be 1-64 characters of letters, digits, '.', '_' or '-'; got "${raw}"`);
  }
  return value;
};

const token: Parser<string> = (raw, name) => {
  const value = raw.trim();
  if (value.length < 16) throw new Error(`${name} must be at least 16 characters long`);
  return value;
};

const secretList: Parser<string[]> = (raw, name) => {
  const secrets = list(raw, name);
  if (secrets.some((s) => s.length < 16)) {
    throw new Error(`${name}: every secret must be at least 16 characters long`);
  }
  return secrets;
};

interface Spec<T> extends EnvVarSpec {
  parse: Parser<T>;
}

function spec<T>(
  name: string,
  defaultValue: string | undefined,
  parse: Parser<T>,
  description: string,
  secret = false,
): Spec<T> {
  return { name, default: defaultValue, parse, description, secret };
}

const S = {
  PORT: spec('PORT', String(DEFAULT_PORT), port, 'HTTP API, dashboard and mesh endpoint port'),
  HOST: spec('HOST', '0.0.0.0', text, 'address the HTTP server binds to'),
  DATA_DIR: spec('DATA_DIR', './data', text, 'SQLite database, peer id and generated API token'),
  DATABASE_URL: spec(
    'DATABASE_URL',
    undefined,
    postgresUrl,
    'PostgreSQL shared by the fleet (queues: any peer claims any item); unset: SQLite in DATA_DIR',
    true,
  ),
  LOG_DIR: spec('LOG_DIR', './logs', text, 'directory of bot-errors.log (errors only; full log is stdout)'),
  LOG_LEVEL: spec(
    'LOG_LEVEL',
    'info',
    oneOf<LogLevel>('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    'pino log level',
  ),
  PEER_ID: spec(
    'PEER_ID',
    undefined,
    peerIdText,
    'stable identity of this peer; generated once and persisted',
  ),
  API_TOKEN: spec(
    'API_TOKEN',
    undefined,
    token,
    'bearer token for every mutating endpoint; generated into DATA_DIR/api-token (0600) when unset',
    true,
  ),
  CONTINUOUS_MODE: spec(
    'CONTINUOUS_MODE',
    'true',
    bool,
    'supervise the worker process and respawn it when it dies; false: one process that exits on a fatal error',
  ),
  AUTO_START: spec('AUTO_START', 'true', bool, 'start the subsystems at boot; false: wait for an operator'),
  AUTO_RECONNECT: spec('AUTO_RECONNECT', 'true', bool, 're-dial lost mesh peers with backoff'),
  BOT_ENABLED: spec('BOT_ENABLED', 'true', bool, 'trading subsystem'),
  FREELANCE_ENABLED: spec('FREELANCE_ENABLED', 'true', bool, 'freelance-job subsystem'),
  AI_ENABLED: spec('AI_ENABLED', 'true', bool, 'AI-task subsystem'),
  HEALTH_CHECK_INTERVAL: spec(
    'HEALTH_CHECK_INTERVAL',
    String(DEFAULT_HEALTH_CHECK_INTERVAL_MS),
    interval,
    'ms between health samples; under 1000 is refused as "looks like seconds"',
  ),
  RECONNECT_INTERVAL: spec(
    'RECONNECT_INTERVAL',
    String(DEFAULT_RECONNECT_INTERVAL_MS),
    interval,
    'ms between mesh reconnect sweeps',
  ),
  MESH_SECRET: spec(
    'MESH_SECRET',
    undefined,
    secretList,
    'shared mesh secret(s), comma-separated: the first signs, all verify; unset: the peer runs alone',
    true,
  ),
  MESH_CLUSTER: spec(
    'MESH_CLUSTER',
    'quantum-bot',
    peerIdText,
    'cluster name; peers of other clusters are ignored',
  ),
  MESH_DISCOVERY: spec('MESH_DISCOVERY', 'mdns', discoveryList, 'comma list of mdns, dns, static'),
  MESH_PEERS: spec('MESH_PEERS', undefined, hostPortList, 'static peers, comma list of host:port'),
  MESH_DNS_NAME: spec('MESH_DNS_NAME', undefined, text, 'DNS name whose A/AAAA records are the peers'),
  MESH_SYNC_INTERVAL: spec(
    'MESH_SYNC_INTERVAL',
    String(DEFAULT_MESH_SYNC_INTERVAL_MS),
    interval,
    'ms between status exchanges',
  ),
  MESH_HEARTBEAT_INTERVAL: spec(
    'MESH_HEARTBEAT_INTERVAL',
    String(DEFAULT_MESH_HEARTBEAT_INTERVAL_MS),
    integer(100),
    'ms between mesh pings',
  ),
  MDNS_INTERFACE: spec('MDNS_INTERFACE', undefined, text, 'address of the interface mDNS uses; unset: all'),
  TRADING_MODE: spec(
    'TRADING_MODE',
    'paper',
    oneOf<TradingMode>('paper', 'live'),
    'paper, or live (needs exchange keys and LIVE_TRADING_CONFIRM=yes)',
  ),
  LIVE_TRADING_CONFIRM: spec('LIVE_TRADING_CONFIRM', undefined, text, 'must be "yes" for TRADING_MODE=live'),
  EXCHANGE: spec('EXCHANGE', 'sim', text, '"sim" (built-in, offline) or any ccxt exchange id'),
  EXCHANGE_API_URL: spec('EXCHANGE_API_URL', undefined, url, 'base URL override of the exchange API'),
  EXCHANGE_API_KEY: spec('EXCHANGE_API_KEY', undefined, text, 'exchange API key (live trading)', true),
  EXCHANGE_API_SECRET: spec(
    'EXCHANGE_API_SECRET',
    undefined,
    text,
    'exchange API secret (live trading)',
    true,
  ),
  TRADING_SYMBOLS: spec('TRADING_SYMBOLS', 'BTC/USDT', list, 'comma list of symbols'),
  FREELANCE_AUTO_EXECUTE: spec(
    'FREELANCE_AUTO_EXECUTE',
    'false',
    bool,
    'execute matched jobs without approval',
  ),
  AI_BASE_URL: spec('AI_BASE_URL', undefined, url, 'OpenAI-compatible endpoint (OpenAI, Ollama, vLLM...)'),
  AI_API_KEY: spec('AI_API_KEY', undefined, text, 'API key of the AI endpoint', true),
  AI_MODEL: spec('AI_MODEL', undefined, text, 'default model of AI tasks'),
  AI_CONCURRENCY: spec(
    'AI_CONCURRENCY',
    String(DEFAULT_AI_CONCURRENCY),
    between(1, MAX_AI_CONCURRENCY),
    `provider calls in flight at once (1-${MAX_AI_CONCURRENCY})`,
  ),
  AI_TIMEOUT: spec(
    'AI_TIMEOUT',
    String(DEFAULT_AI_TIMEOUT_MS),
    integer(100),
    'ms one provider call may take',
  ),
  AI_MAX_REQUESTS_PER_HOUR: spec(
    'AI_MAX_REQUESTS_PER_HOUR',
    String(DEFAULT_AI_MAX_REQUESTS_PER_HOUR),
    integer(1),
    'spending guard: provider calls per clock hour; reaching it pauses AI until the next hour',
  ),
  AI_MAX_TOKENS_PER_HOUR: spec(
    'AI_MAX_TOKENS_PER_HOUR',
    String(DEFAULT_AI_MAX_TOKENS_PER_HOUR),
    integer(1),
    'spending guard: tokens (prompt + completion) per clock hour',
  ),
  AI_MAX_ATTEMPTS: spec(
    'AI_MAX_ATTEMPTS',
    String(DEFAULT_AI_MAX_ATTEMPTS),
    integer(1),
    'attempts of an AI task before it is dead',
  ),
  AI_RETRY_BASE_MS: spec(
    'AI_RETRY_BASE_MS',
    String(DEFAULT_AI_RETRY_BASE_MS),
    integer(1),
    'first retry delay of an AI task when the provider sends no Retry-After, ms (doubles)',
  ),
  AI_BREAKER_FAILURES: spec(
    'AI_BREAKER_FAILURES',
    String(DEFAULT_AI_BREAKER_FAILURES),
    integer(1),
    'consecutive provider failures (5xx, timeouts, resets) that open the circuit breaker',
  ),
  AI_BREAKER_HALF_OPEN_MS: spec(
    'AI_BREAKER_HALF_OPEN_MS',
    String(DEFAULT_AI_BREAKER_HALF_OPEN_MS),
    integer(1),
    'ms the open breaker pauses AI before one probe call',
  ),
  AI_MAX_PROMPT_BYTES: spec(
    'AI_MAX_PROMPT_BYTES',
    String(DEFAULT_AI_MAX_PROMPT_BYTES),
    integer(1),
    'bytes of prompt plus system prompt one task may carry (413 above)',
  ),
  FREELANCE_FEEDS: spec(
    'FREELANCE_FEEDS',
    undefined,
    urlList,
    'comma list of RSS, Atom or JSON Feed URLs to poll',
  ),
  FREELANCE_POLL_INTERVAL: spec(
    'FREELANCE_POLL_INTERVAL',
    String(DEFAULT_FREELANCE_POLL_INTERVAL_MS),
    integer(100),
    'ms between polls of each feed',
  ),
  FREELANCE_FEED_TIMEOUT: spec(
    'FREELANCE_FEED_TIMEOUT',
    String(DEFAULT_FREELANCE_FEED_TIMEOUT_MS),
    integer(100),
    'ms one feed request may take, body included',
  ),
  FREELANCE_WEBHOOK_URL: spec(
    'FREELANCE_WEBHOOK_URL',
    undefined,
    url,
    'where approved jobs and proposals are delivered (Standard Webhooks)',
  ),
  FREELANCE_WEBHOOK_SECRET: spec(
    'FREELANCE_WEBHOOK_SECRET',
    undefined,
    webhookSecret,
    'whsec_... signing secret of the deliveries',
    true,
  ),
  FREELANCE_KEYWORDS: spec(
    'FREELANCE_KEYWORDS',
    undefined,
    list,
    'comma list; a job matches when its text holds one (unset: every job)',
  ),
  FREELANCE_EXCLUDE: spec('FREELANCE_EXCLUDE', undefined, list, 'comma list of words that skip a job'),
  FREELANCE_MIN_BUDGET: spec(
    'FREELANCE_MIN_BUDGET',
    undefined,
    amount,
    'jobs with a lower stated budget are skipped',
  ),
  FREELANCE_MAX_EXECUTIONS_PER_HOUR: spec(
    'FREELANCE_MAX_EXECUTIONS_PER_HOUR',
    String(DEFAULT_FREELANCE_MAX_EXECUTIONS_PER_HOUR),
    integer(1),
    'deliveries started per clock hour, with or without approval',
  ),
  FREELANCE_WEBHOOK_MAX_ATTEMPTS: spec(
    'FREELANCE_WEBHOOK_MAX_ATTEMPTS',
    String(DEFAULT_FREELANCE_WEBHOOK_MAX_ATTEMPTS),
    integer(1),
    'delivery attempts before a job is dead',
  ),
  SUBSYSTEM_RESTART_BASE_MS: spec(
    'SUBSYSTEM_RESTART_BASE_MS',
    String(DEFAULT_RESTART_BASE_MS),
    integer(1),
    'first restart delay of a failed subsystem, ms (doubles, with jitter)',
  ),
  SUBSYSTEM_RESTART_MAX_MS: spec(
    'SUBSYSTEM_RESTART_MAX_MS',
    String(DEFAULT_RESTART_MAX_MS),
    integer(1),
    'cap of a subsystem restart delay, ms',
  ),
  SUBSYSTEM_STABLE_MS: spec(
    'SUBSYSTEM_STABLE_MS',
    String(DEFAULT_STABLE_PERIOD_MS),
    integer(1),
    'running this long (ms) resets the failure count',
  ),
  WORKER_RESPAWN_BASE_MS: spec(
    'WORKER_RESPAWN_BASE_MS',
    String(DEFAULT_RESPAWN_BASE_MS),
    integer(1),
    'first respawn delay of a dead worker process in continuous mode, ms',
  ),
  WORKER_RESPAWN_MAX_MS: spec(
    'WORKER_RESPAWN_MAX_MS',
    String(DEFAULT_RESPAWN_MAX_MS),
    integer(1),
    'cap of the worker respawn delay, ms',
  ),
  DASHBOARD_TOKEN_REQUIRED: spec(
    'DASHBOARD_TOKEN_REQUIRED',
    'false',
    bool,
    'require the API token to read the /live feed (changes always require it)',
  ),
  FAULT_INJECTION: spec(
    'FAULT_INJECTION',
    'false',
    bool,
    'enable /faults endpoints (tests and chaos runs only)',
  ),
} as const;

/** Every variable this program reads, in documentation order. */
export const ENV_VARS: readonly EnvVarSpec[] = Object.values(S).map(({ parse: _parse, ...doc }) => doc);

/** Variables the process supervisor sets for its worker; not part of the user's contract. */
export const INTERNAL_ENV = { role: 'QB_ROLE', respawns: 'QB_WORKER_RESPAWNS' } as const;

/** The environment a worker process gets: this process's, plus the supervisor's markers. */
export function workerEnvironment(respawns: number): NodeJS.ProcessEnv {
  return { ...process.env, [INTERNAL_ENV.role]: 'worker', [INTERNAL_ENV.respawns]: String(respawns) };
}

/** Reads `.env` in `cwd` when present; variables already in the environment win. */
export function readEnvFile(cwd: string): Env {
  const file = resolve(cwd, '.env');
  if (!existsSync(file)) return {};
  return parseEnv(readFileSync(file, 'utf8'));
}

/**
 * Validates the environment (plus `.env`) into a deep-frozen Config.
 * @throws ConfigError listing every problem.
 */
export function loadConfig(env: Env = process.env, cwd = process.cwd()): Readonly<Config> {
  const merged: Env = { ...readEnvFile(cwd), ...env };
  const problems: string[] = [];

  function get<T>(s: Spec<T>): T;
  function get<T>(s: Spec<T>, optional: true): T | undefined;
  function get<T>(s: Spec<T>): T | undefined {
    const raw = merged[s.name];
    const source = raw === undefined || raw.trim() === '' ? s.default : raw;
    if (source === undefined) return undefined;
    try {
      return s.parse(source, s.name);
    } catch (err) {
      problems.push((err as Error).message);
      return undefined;
    }
  }

  const config: Config = {
    port: get(S.PORT),
    host: get(S.HOST),
    dataDir: resolve(cwd, get(S.DATA_DIR) ?? './data'),
    databaseUrl: get(S.DATABASE_URL, true),
    logDir: resolve(cwd, get(S.LOG_DIR) ?? './logs'),
    logLevel: get(S.LOG_LEVEL),
    peerId: get(S.PEER_ID, true),
    apiToken: get(S.API_TOKEN, true),
    continuousMode: get(S.CONTINUOUS_MODE),
    autoStart: get(S.AUTO_START),
    autoReconnect: get(S.AUTO_RECONNECT),
    botEnabled: get(S.BOT_ENABLED),
    freelanceEnabled: get(S.FREELANCE_ENABLED),
    aiEnabled: get(S.AI_ENABLED),
    healthCheckIntervalMs: get(S.HEALTH_CHECK_INTERVAL),
    reconnectIntervalMs: get(S.RECONNECT_INTERVAL),
    mesh: {
      secrets: get(S.MESH_SECRET, true) ?? [],
      cluster: get(S.MESH_CLUSTER),
      discovery: get(S.MESH_DISCOVERY),
      peers: get(S.MESH_PEERS, true) ?? [],
      dnsName: get(S.MESH_DNS_NAME, true),
      syncIntervalMs: get(S.MESH_SYNC_INTERVAL),
      heartbeatIntervalMs: get(S.MESH_HEARTBEAT_INTERVAL),
      mdnsInterface: get(S.MDNS_INTERFACE, true),
    },
    trading: {
      mode: get(S.TRADING_MODE),
      exchange: get(S.EXCHANGE),
      exchangeApiUrl: get(S.EXCHANGE_API_URL, true),
      apiKey: get(S.EXCHANGE_API_KEY, true),
      apiSecret: get(S.EXCHANGE_API_SECRET, true),
      symbols: get(S.TRADING_SYMBOLS),
    },
    freelance: {
      autoExecute: get(S.FREELANCE_AUTO_EXECUTE),
      feeds: get(S.FREELANCE_FEEDS, true) ?? [],
      pollIntervalMs: get(S.FREELANCE_POLL_INTERVAL),
      feedTimeoutMs: get(S.FREELANCE_FEED_TIMEOUT),
      webhookUrl: get(S.FREELANCE_WEBHOOK_URL, true),
      webhookSecret: get(S.FREELANCE_WEBHOOK_SECRET, true),
      keywords: get(S.FREELANCE_KEYWORDS, true) ?? [],
      excludeWords: get(S.FREELANCE_EXCLUDE, true) ?? [],
      minBudget: get(S.FREELANCE_MIN_BUDGET, true),
      maxExecutionsPerHour: get(S.FREELANCE_MAX_EXECUTIONS_PER_HOUR),
      webhookMaxAttempts: get(S.FREELANCE_WEBHOOK_MAX_ATTEMPTS),
      maxJobBytes: DEFAULT_FREELANCE_MAX_JOB_BYTES,
    },
    ai: {
      baseUrl: get(S.AI_BASE_URL, true),
      apiKey: get(S.AI_API_KEY, true),
      model: get(S.AI_MODEL, true),
      concurrency: get(S.AI_CONCURRENCY),
      timeoutMs: get(S.AI_TIMEOUT),
      maxRequestsPerHour: get(S.AI_MAX_REQUESTS_PER_HOUR),
      maxTokensPerHour: get(S.AI_MAX_TOKENS_PER_HOUR),
      maxAttempts: get(S.AI_MAX_ATTEMPTS),
      retryBaseMs: get(S.AI_RETRY_BASE_MS),
      breakerFailures: get(S.AI_BREAKER_FAILURES),
      breakerHalfOpenMs: get(S.AI_BREAKER_HALF_OPEN_MS),
      maxPromptBytes: get(S.AI_MAX_PROMPT_BYTES),
    },
    supervisor: {
      restartBaseMs: get(S.SUBSYSTEM_RESTART_BASE_MS),
      restartMaxMs: get(S.SUBSYSTEM_RESTART_MAX_MS),
      stablePeriodMs: get(S.SUBSYSTEM_STABLE_MS),
      maxConsecutiveFailures: MAX_CONSECUTIVE_FAILURES,
    },
    worker: { respawnBaseMs: get(S.WORKER_RESPAWN_BASE_MS), respawnMaxMs: get(S.WORKER_RESPAWN_MAX_MS) },
    dashboardTokenRequired: get(S.DASHBOARD_TOKEN_REQUIRED),
    faultInjection: get(S.FAULT_INJECTION),
    internal: {
      isWorker: merged[INTERNAL_ENV.role] === 'worker',
      workerRespawns: Number(merged[INTERNAL_ENV.respawns] ?? 0) || 0,
    },
  };

  checkCombinations(config, merged, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return deepFreeze(config);
}

/** Rules that involve more than one variable. */
function checkCombinations(config: Config, env: Env, problems: string[]): void {
  if (config.trading?.mode === 'live') {
    if (config.trading.exchange === 'sim')
      problems.push('TRADING_MODE=live needs EXCHANGE set to a ccxt id, not "sim"');
    if (!config.trading.apiKey || !config.trading.apiSecret) {
      problems.push('TRADING_MODE=live needs EXCHANGE_API_KEY and EXCHANGE_API_SECRET');
    }
    if (env.LIVE_TRADING_CONFIRM?.trim() !== 'yes') {
      problems.push('TRADING_MODE=live needs LIVE_TRADING_CONFIRM=yes (real money is at stake)');
    }
  }
  const discovery = config.mesh?.discovery ?? [];
  if (config.mesh?.secrets.length && discovery.includes('dns') && !config.mesh.dnsName) {
    problems.push('MESH_DISCOVERY includes dns but MESH_DNS_NAME is empty');
  }
  if (config.freelance?.webhookUrl && !config.freelance.webhookSecret) {
    problems.push('FREELANCE_WEBHOOK_URL needs FREELANCE_WEBHOOK_SECRET to sign the deliveries');
  }
  const sup = config.supervisor;
  if (sup?.restartBaseMs && sup.restartMaxMs && sup.restartBaseMs > sup.restartMaxMs) {
    problems.push('SUBSYSTEM_RESTART_BASE_MS must not exceed SUBSYSTEM_RESTART_MAX_MS');
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** A preset for tests: port 0, fast timers, static discovery, everything in `dataDir`. */
export function testConfig(dataDir: string, overrides: Env = {}): Readonly<Config> {
  return loadConfig(
    {
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_DIR: resolve(dataDir, 'logs'),
      LOG_LEVEL: 'silent',
      CONTINUOUS_MODE: 'false',
      HEALTH_CHECK_INTERVAL: '1000',
      MESH_DISCOVERY: 'static',
      SUBSYSTEM_RESTART_BASE_MS: '50',
      SUBSYSTEM_RESTART_MAX_MS: '1000',
      ...overrides,
    },
    dataDir,
  );
}
