import { createLogger, type Logger } from '../../src/logger.js';

/** A logger that writes nothing: tests assert behaviour, not log lines. */
export function silentLogger(): Logger {
  return createLogger({ level: 'silent', pretty: false });
}

export interface LogLine {
  level: number;
  msg: string;
  subsystem?: string;
  err?: { message: string; type: string; stack?: string };
  [field: string]: unknown;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/** A logger that keeps every line it writes, parsed, for tests that assert what was logged. */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const logger = createLogger({
    level: 'debug',
    pretty: false,
    stream: { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  });
  return { logger, lines };
}
