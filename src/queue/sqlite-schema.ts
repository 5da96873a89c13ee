/** The queue's SQLite schema as named migrations (see src/store/migrations.ts). ONLY APPEND. */
import type { NamedMigration } from '../store/migrations.js';

export const SQLITE_QUEUE_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'queue/001-items',
    sql: `
      CREATE TABLE queue_items (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        queue             TEXT    NOT NULL,
        state             TEXT    NOT NULL CHECK (state IN ('queued','running','completed','failed','dead','cancelled')),
        payload           TEXT    NOT NULL,
        result            TEXT,
        last_error        TEXT,
        idempotency_key   TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        max_attempts      INTEGER NOT NULL,
        run_at            INTEGER NOT NULL,
        created_at        INTEGER NOT NULL,
        updated_at        INTEGER NOT NULL,
        finished_at       INTEGER,
        lease_owner       TEXT,
        lease_token       INTEGER NOT NULL DEFAULT 0,
        lease_expires_at  INTEGER,
        heartbeat_at      INTEGER
      );
      -- NULL keys are distinct: only items that carry a key are deduplicated.
      CREATE UNIQUE INDEX queue_items_idempotency ON queue_items (queue, idempotency_key);
      CREATE INDEX queue_items_runnable ON queue_items (queue, run_at, id) WHERE state IN ('queued', 'failed');
      CREATE INDEX queue_items_running ON queue_items (queue, lease_expires_at) WHERE state = 'running';
      CREATE INDEX queue_items_finished ON queue_items (queue, finished_at) WHERE state IN ('completed', 'cancelled');
      CREATE INDEX queue_items_state ON queue_items (queue, state);
      CREATE TABLE queue_control (
        queue   TEXT PRIMARY KEY,
        paused  INTEGER NOT NULL
      );`,
  },
];
