/**
 * The program: read the configuration once, then either supervise a worker process (continuous
 * mode) or be the worker. A configuration problem is printed as one message and ends the process
 * with EXIT_CONFIG before anything starts, so it is never retried in a restart loop.
 */
import { fileURLToPath } from 'node:url';
import { type Config, ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { EXIT_CONFIG } from './process/exit-codes.js';

// Until a role installs its own handlers, a stop request has nothing to stop: exit 0 at once.
const stopEarly = () => process.exit(0);
process.on('SIGTERM', stopEarly);
process.on('SIGINT', stopEarly);
const handOverSignals = () => {
  process.off('SIGTERM', stopEarly);
  process.off('SIGINT', stopEarly);
};

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

const config = readConfig();
const logger = createLogger({
  level: config.logLevel,
  logDir: config.logDir,
  base: {
    pid: process.pid,
    role: config.internal.isWorker ? 'worker' : config.continuousMode ? 'supervisor' : 'single',
  },
});

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
  handOverSignals();
  runSupervisor(config, logger, entry);
} else {
  const { runWorker } = await import('./process/worker.js');
  handOverSignals();
  await runWorker(config, logger);
}
