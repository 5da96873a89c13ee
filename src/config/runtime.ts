/** The process: where it keeps its files, how it logs, which subsystems it runs, the guide's switches. */
import { optional, type ValuesOf, withDefault } from './define.js';
import { bool, interval, oneOf, peerIdText, postgresUrl, text } from './parsers.js';

export const DEFAULT_HEALTH_CHECK_INTERVAL_MS = 30_000;
export const DEFAULT_RECONNECT_INTERVAL_MS = 5_000;

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export const RUNTIME_VARS = {
  /** Resolved against the working directory by loadConfig. */
  dataDir: withDefault('DATA_DIR', './data', text, 'SQLite database, peer id and generated API token'),
  /** PostgreSQL shared by the fleet; undefined: queues live in SQLite in dataDir. */
  databaseUrl: optional(
    'DATABASE_URL',
    postgresUrl,
    'PostgreSQL shared by the fleet (queues: any peer claims any item; trading ledger and account leases); unset: SQLite in DATA_DIR',
    { secret: true },
  ),
  /** Resolved against the working directory by loadConfig. */
  logDir: withDefault(
    'LOG_DIR',
    './logs',
    text,
    'directory of bot-errors.log (errors only; full log is stdout)',
  ),
  logLevel: withDefault(
    'LOG_LEVEL',
    'info',
    oneOf<LogLevel>('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    'pino log level',
  ),
  peerId: optional('PEER_ID', peerIdText, 'stable identity of this peer; generated once and persisted'),
  continuousMode: withDefault(
    'CONTINUOUS_MODE',
    'true',
    bool,
    'supervise the worker process and respawn it when it dies; false: one process that exits on a fatal error',
  ),
  autoStart: withDefault(
    'AUTO_START',
    'true',
    bool,
    'start the subsystems at boot; false: wait for an operator',
  ),
  autoReconnect: withDefault('AUTO_RECONNECT', 'true', bool, 're-dial lost mesh peers with backoff'),
  botEnabled: withDefault('BOT_ENABLED', 'true', bool, 'trading subsystem'),
  freelanceEnabled: withDefault('FREELANCE_ENABLED', 'true', bool, 'freelance-job subsystem'),
  aiEnabled: withDefault('AI_ENABLED', 'true', bool, 'AI-task subsystem'),
  healthCheckIntervalMs: withDefault(
    'HEALTH_CHECK_INTERVAL',
    String(DEFAULT_HEALTH_CHECK_INTERVAL_MS),
    interval(5_000),
    'ms between health samples; under 1000 is refused as "looks like seconds"',
  ),
  reconnectIntervalMs: withDefault(
    'RECONNECT_INTERVAL',
    String(DEFAULT_RECONNECT_INTERVAL_MS),
    interval(),
    'ms between mesh reconnect sweeps',
  ),
  faultInjection: withDefault(
    'FAULT_INJECTION',
    'false',
    bool,
    'enable /faults endpoints (tests and chaos runs only)',
  ),
};

export type RuntimeConfig = ValuesOf<typeof RUNTIME_VARS>;
