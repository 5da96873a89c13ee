/**
 * The program: read the configuration once, then either supervise a worker process (continuous
 * mode) or be the worker. A configuration problem is printed as one message and ends the process
 * with EXIT_CONFIG before anything starts, so it is never retried in a restart loop.
 */
import { fileURLToPath } from 'node:url';
import { type Config, ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { EXIT_CONFIG } from './process/exit-codes.js';
import { runSupervisor } from './process/supervisor.js';
import { runWorker } from './process/worker.js';

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

if (config.continuousMode && !config.internal.isWorker) {
  // The worker is this same program; the entry is whatever node ran (bot.js or dist/main.js).
  const entry = process.argv[1] ?? fileURLToPath(import.meta.url);
  runSupervisor(config, logger, entry);
} else {
  await runWorker(config, logger);
}
