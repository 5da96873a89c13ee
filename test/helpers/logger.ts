import { createLogger, type Logger } from '../../src/logger.js';

/** A logger that writes nothing: tests assert behaviour, not log lines. */
export function silentLogger(): Logger {
  return createLogger({ level: 'silent', pretty: false });
}
