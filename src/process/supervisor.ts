/**
 * The process supervisor of continuous mode: forks the worker and respawns it with exponential
 * backoff whenever it dies (crash, uncaught exception, OOM, SIGKILL) or cannot be forked. It never
 * exits for an error; it exits 0 after SIGTERM/SIGINT once the worker has stopped, and passes on
 * EXIT_CONFIG, which no respawn can fix.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { backoffDelay } from '../actors/backoff.js';
import { type Config, workerEnvironment } from '../config.js';
import type { Logger } from '../logger.js';
import { EXIT_CONFIG, EXIT_OK } from './exit-codes.js';
import { onStopSignal } from './signals.js';
import { isPeerIdMessage, setProcessTitle } from './title.js';

/** After SIGTERM the worker gets this long before SIGKILL; the whole stop stays under 10 s. */
const WORKER_KILL_AFTER_MS = 9_000;

export function runSupervisor(config: Readonly<Config>, logger: Logger, entry: string): void {
  const log = logger.child({ component: 'process-supervisor' });
  let child: ChildProcess | undefined;
  let respawns = 0;
  let failuresInARow = 0;
  let respawnTimer: NodeJS.Timeout | undefined;
  let shuttingDown = false;

  const exit = (code: number) => {
    logger.flush?.();
    process.exit(code);
  };

  const scheduleRespawn = (ranMs: number, why: Record<string, unknown>) => {
    // A worker that ran a stable period has earned a fresh backoff.
    if (ranMs >= config.supervisor.stablePeriodMs) failuresInARow = 0;
    failuresInARow++;
    respawns++;
    const delayMs = backoffDelay(failuresInARow, {
      baseMs: config.worker.respawnBaseMs,
      maxMs: config.worker.respawnMaxMs,
    });
    log.error({ ...why, delayMs, respawns }, 'worker died; respawning');
    respawnTimer = setTimeout(spawnWorker, delayMs);
  };

  const onWorkerEnd = (startedAt: number, code: number | null, signal: NodeJS.Signals | null) => {
    child = undefined;
    if (shuttingDown) {
      log.info({ code, signal }, 'worker stopped; exiting');
      exit(EXIT_OK);
      return;
    }
    if (code === EXIT_CONFIG) {
      log.fatal('worker refused its configuration; a respawn cannot fix that, exiting');
      exit(EXIT_CONFIG);
      return;
    }
    scheduleRespawn(Date.now() - startedAt, { code, signal });
  };

  function spawnWorker(): void {
    respawnTimer = undefined;
    const startedAt = Date.now();
    let worker: ChildProcess;
    try {
      worker = fork(entry, process.argv.slice(2), { env: workerEnvironment(respawns), stdio: 'inherit' });
    } catch (err) {
      // fork can throw synchronously (EMFILE, a vanished entry): keep supervising, try again later.
      scheduleRespawn(0, { err });
      return;
    }
    child = worker;
    let ended = false;
    const end = (code: number | null, signal: NodeJS.Signals | null) => {
      if (ended) return;
      ended = true;
      onWorkerEnd(startedAt, code, signal);
    };
    worker.once('exit', end);
    worker.on('message', (message) => {
      if (isPeerIdMessage(message)) setProcessTitle('supervisor', message.peerId);
    });
    worker.on('error', (err) => {
      log.error({ err }, 'worker process error');
      // A spawn that failed (EAGAIN, ENOMEM) emits 'error' and no 'exit'.
      if (worker.pid === undefined) end(null, null);
    });
    log.info({ workerPid: worker.pid, respawns }, 'worker started');
  }

  const shutdown = (signal: NodeJS.Signals) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ signal }, 'stopping the worker');
    if (respawnTimer) clearTimeout(respawnTimer);
    if (!child) {
      exit(EXIT_OK);
      return;
    }
    child.kill('SIGTERM');
    setTimeout(() => {
      log.error('worker did not stop in time; killing it');
      child?.kill('SIGKILL');
    }, WORKER_KILL_AFTER_MS).unref();
  };

  // A signal that came during start-up is handed over here, before any worker is forked.
  onStopSignal(shutdown);
  // The supervisor must outlive any error of its own: log it and keep supervising.
  process.on('uncaughtException', (err) => log.error({ err }, 'supervisor error (kept running)'));
  process.on('unhandledRejection', (err) => log.error({ err }, 'supervisor rejection (kept running)'));

  log.info('continuous mode: supervising the worker process');
  spawnWorker();
}
