/**
 * The worker: one peer in this process. SIGTERM/SIGINT stop it gracefully (exit 0). An uncaught
 * exception or unhandled rejection is logged and ends the process with 1: after such an error the
 * process state is unknown, and a fresh process (our supervisor's respawn, or PM2/docker) is the
 * recovery. When the supervising parent disappears, the worker stops too, so no orphan keeps the port.
 *
 * Start order, for a fast liveness answer: the API port listens first behind the boot gate, which
 * answers /health at once; only then is the peer (fastify, SQLite, XState, the mesh) imported and
 * built, and the gate hands the server over to it.
 */

import { HealthMonitor } from '../actors/health-monitor.js';
import type { Config } from '../config.js';
import { isQbError } from '../errors.js';
import { BootGate } from '../http/boot-gate.js';
import type { Logger } from '../logger.js';
import type { Peer } from '../peer.js';
import { prepareDataDir } from '../store/data-dir.js';
import { EXIT_CONFIG, EXIT_FAILURE, EXIT_OK } from './exit-codes.js';
import { loadPeerModule } from './preload.js';
import { onStopSignal } from './signals.js';
import { announcePeerId } from './title.js';

/** Errors no restart can fix: the process exits EXIT_CONFIG, which no supervisor retries. */
const REFUSALS: ReadonlySet<string> = new Set(['QB_ERR_CONFIG', 'QB_ERR_DATA_DIR', 'QB_ERR_DATA_DIR_LOCKED']);

/** The whole graceful stop must fit in docker's and PM2's default 10 s grace period. */
const STOP_DEADLINE_MS = 8_000;

export async function runWorker(config: Readonly<Config>, logger: Logger): Promise<void> {
  const log = logger.child({ component: 'worker' });
  const gate = new BootGate({ health: new HealthMonitor() });
  let peer: Peer | undefined;

  let exiting = false;
  const exit = (code: number) => {
    if (exiting) return;
    exiting = true;
    logger.flush?.();
    process.exit(code);
  };

  const shutdown = async (why: string) => {
    if (exiting) return;
    log.info({ why }, 'stopping');
    const deadline = setTimeout(() => {
      log.error('graceful stop took too long; exiting anyway');
      exit(EXIT_OK);
    }, STOP_DEADLINE_MS);
    deadline.unref();
    try {
      await peer?.stop();
      await gate.close();
      log.info('stopped');
    } catch (err) {
      log.error({ err }, 'error while stopping');
    }
    exit(EXIT_OK);
  };

  // A signal that came during start-up is handed over here: the peer then never starts.
  onStopSignal((signal) => void shutdown(signal));
  process.on('disconnect', () => void shutdown('supervisor went away'));
  process.on('uncaughtException', (err) => {
    log.fatal({ err }, 'uncaught exception; exiting for a fresh process');
    exit(EXIT_FAILURE);
  });
  process.on('unhandledRejection', (err) => {
    log.fatal({ err }, 'unhandled rejection; exiting for a fresh process');
    exit(EXIT_FAILURE);
  });

  try {
    // Before listening: a /health 200 means the identity and the API token file exist.
    const prepared = prepareDataDir(config);
    await gate.listen(config.port, config.host);
    const { createPeer } = await loadPeerModule({ mesh: config.mesh.secrets.length > 0 });
    if (exiting) return;
    peer = createPeer(config, logger, {
      gate,
      prepared,
      crashWorker: () =>
        setImmediate(() => {
          throw new Error('worker crash requested through fault injection');
        }),
    });
    await peer.start();
    const peerId = peer.identity()?.peerId;
    if (peerId) announcePeerId(config.internal.isWorker ? 'worker' : 'single', peerId);
  } catch (err) {
    const fatalConfig = isQbError(err) && REFUSALS.has(err.code);
    // A refusal's message says what to fix (DATA_DIR in use names the folder and the holder's pid).
    log.fatal({ err }, fatalConfig ? `cannot start: ${(err as Error).message}` : 'cannot start');
    await peer?.stop().catch(() => {});
    await gate.close().catch(() => {});
    exit(fatalConfig ? EXIT_CONFIG : EXIT_FAILURE);
  }
}
