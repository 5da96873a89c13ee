/**
 * The program: read the configuration once, then either supervise a worker process (continuous
 * mode) or be the worker. A configuration problem is printed as one message and ends the process
 * with EXIT_CONFIG before anything starts, so it is never retried in a restart loop.
 */
import { fileURLToPath } from 'node:url';
import { type Config, ConfigError, loadConfig } from './config.js';
import { isQbError } from './errors.js';
import { createLogger, ERROR_LOG_FILE, type Logger } from './logger.js';
import { EXIT_CONFIG } from './process/exit-codes.js';
import { catchStopSignals } from './process/signals.js';
import { type ProcessRole, setProcessTitle } from './process/title.js';
import { ensureWritableDir } from './store/dirs.js';

// Already done by bot.js; this covers `node dist/main.js`. A signal that comes before the role has
// claimed them (onStopSignal) waits for it: the role stops gracefully, exit 0.
catchStopSignals();

function readConfig(): Readonly<Config> {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`quantum-bot: ${err.message}\n`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

/**
 * DATA_DIR and LOG_DIR are checked alike before anything starts (the logger opens LOG_DIR at once):
 * a folder the process cannot write is a configuration problem, one line and EXIT_CONFIG.
 */
function startLogging(config: Readonly<Config>): Logger {
  try {
    ensureWritableDir(config.dataDir, 'DATA_DIR');
    ensureWritableDir(config.logDir, 'LOG_DIR');
    return createLogger({
      level: config.logLevel,
      logDir: config.logDir,
      base: {
        pid: process.pid,
        role: processRole(config),
      },
    });
  } catch (err) {
    const message = isQbError(err)
      ? err.message
      : `LOG_DIR ${config.logDir}: cannot open ${ERROR_LOG_FILE}: ${(err as Error).message}`;
    process.stderr.write(`quantum-bot: ${message}\n`);
    process.exit(EXIT_CONFIG);
  }
}

function processRole(config: Readonly<Config>): ProcessRole {
  if (config.internal.isWorker) return 'worker';
  return config.continuousMode ? 'supervisor' : 'single';
}

const config = readConfig();
setProcessTitle(processRole(config), config.peerId);
const logger = startLogging(config);

// Where the configuration came from and what looked wrong in it; the worker would only repeat it.
if (!config.internal.isWorker) {
  const { envFile, warnings } = config.notices;
  logger.info(
    { envFile: envFile ?? null, dataDir: config.dataDir, logDir: config.logDir },
    envFile ? `configuration: read ${envFile}` : 'configuration: no .env file in the working directory',
  );
  for (const warning of warnings) logger.warn(`configuration: ${warning}`);
}

// Each role loads only its own code: the supervisor stays small (no fastify, SQLite or XState).
if (config.continuousMode && !config.internal.isWorker) {
  const { runSupervisor } = await import('./process/supervisor.js');
  // The worker is this same program; the entry is whatever node ran (bot.js or dist/main.js).
  const entry = process.argv[1] ?? fileURLToPath(import.meta.url);
  runSupervisor(config, logger, entry);
} else {
  const { runWorker } = await import('./process/worker.js');
  await runWorker(config, logger);
}
