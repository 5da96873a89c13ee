/**
 * The root pino logger: JSON lines on stdout (pretty on a TTY), errors also appended to
 * LOG_DIR/bot-errors.log. Components take `logger.child({ component })`. Errors are logged as
 * `{ err }` so the serializer keeps type, message and stack.
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { type DestinationStream, type Logger, multistream, pino, type StreamEntry } from 'pino';
import type PinoPretty from 'pino-pretty';
import type { LogLevel } from './config.js';

export type { Logger } from 'pino';

/** Paths pino replaces with [redacted] wherever they appear in a log line. */
export const REDACT_PATHS = [
  'apiToken',
  'token',
  'secret',
  'secrets',
  'password',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.apiToken',
  '*.token',
  '*.secret',
  '*.secrets',
  '*.apiKey',
  '*.apiSecret',
  'config.apiToken',
  'config.mesh.secrets',
  'config.trading.apiKey',
  'config.trading.apiSecret',
  'config.ai.apiKey',
];

export interface LoggerOptions {
  level: LogLevel;
  /** Directory of bot-errors.log; omit to log to stdout only. */
  logDir?: string;
  /** Pretty output; defaults to whether stdout is a TTY. */
  pretty?: boolean;
  /** Replaces stdout (tests). */
  stream?: DestinationStream;
  base?: Record<string, unknown>;
}

export const ERROR_LOG_FILE = 'bot-errors.log';

export function createLogger(options: LoggerOptions): Logger {
  const usePretty = options.pretty ?? process.stdout.isTTY === true;
  const out: DestinationStream =
    options.stream ??
    (usePretty ? loadPretty()({ colorize: true, sync: true }) : pino.destination({ fd: 1, sync: false }));
  const streams: StreamEntry[] = [
    { level: options.level === 'silent' ? 'fatal' : options.level, stream: out },
  ];
  if (options.logDir) {
    mkdirSync(options.logDir, { recursive: true });
    streams.push({
      level: 'error',
      stream: pino.destination({ dest: join(options.logDir, ERROR_LOG_FILE), append: true, sync: true }),
    });
  }
  return pino(
    {
      level: options.level,
      base: options.base ?? { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    multistream(streams),
  );
}

/**
 * pino-pretty (30 modules) only on a terminal: services log JSON, and every process of a peer
 * (supervisor and worker) would otherwise load it on the way to its first /health.
 */
function loadPretty(): typeof PinoPretty {
  return createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
}
