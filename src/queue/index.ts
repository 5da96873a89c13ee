/**
 * Opens the peer's queue: PostgreSQL shared by the fleet when DATABASE_URL is set, otherwise
 * SQLite in DATA_DIR (synchronous=FULL). Subsystems receive the Queue and never know which.
 */
import type { NamedMigration } from '../store/migrations.js';
import type { ConnectionLog } from './pg-connection.js';
import { openSqliteQueue } from './sqlite.js';
import type { Queue, QueueOptions } from './types.js';

export { isStoreUnavailable } from './pg-connection.js';
export type * from './types.js';
export { DEFAULT_QUEUE_SETTINGS, QUEUE_ITEM_STATES, systemClock } from './types.js';
export { createWorker } from './worker.js';

export interface QueueStoreConfig {
  dataDir: string;
  databaseUrl: string | undefined;
}

export interface OpenQueueOptions extends QueueOptions {
  /** Where PostgreSQL's loss and recovery are logged. */
  log?: ConnectionLog;
  /** PostgreSQL migrations of the features' shared tables, applied with the queue's own. */
  migrations?: readonly NamedMigration[];
}

/**
 * With DATABASE_URL an unreachable server does not stop the peer: the queue starts `reconnecting`
 * and connects in the background (see pg-connection.ts).
 */
export async function openQueue(config: QueueStoreConfig, options: OpenQueueOptions = {}): Promise<Queue> {
  if (config.databaseUrl) {
    // pg is loaded only when DATABASE_URL is set: a SQLite peer never pays for it (about 11 MiB).
    const { openPostgresQueue } = await import('./postgres.js');
    return openPostgresQueue({ ...options, connectionString: config.databaseUrl });
  }
  return openSqliteQueue(config.dataDir, options);
}
