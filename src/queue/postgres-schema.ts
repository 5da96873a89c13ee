/**
 * The queue's PostgreSQL schema as named migrations, applied once per database under an advisory
 * lock so that peers starting together do not race. ONLY APPEND.
 */
import type pg from 'pg';
import type { NamedMigration } from '../store/migrations.js';

export const POSTGRES_QUEUE_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'queue/001-items',
    sql: `
      CREATE TABLE queue_items (
        id                BIGSERIAL PRIMARY KEY,
        queue             TEXT    NOT NULL,
        state             TEXT    NOT NULL CHECK (state IN ('queued','running','completed','failed','dead','cancelled')),
        payload           TEXT    NOT NULL,
        result            TEXT,
        last_error        TEXT,
        idempotency_key   TEXT,
        attempts          INTEGER NOT NULL DEFAULT 0,
        max_attempts      INTEGER NOT NULL,
        run_at            BIGINT  NOT NULL,
        created_at        BIGINT  NOT NULL,
        updated_at        BIGINT  NOT NULL,
        finished_at       BIGINT,
        lease_owner       TEXT,
        lease_token       BIGINT  NOT NULL DEFAULT 0,
        lease_expires_at  BIGINT,
        heartbeat_at      BIGINT
      );
      -- NULL keys are distinct: only items that carry a key are deduplicated.
      CREATE UNIQUE INDEX queue_items_idempotency ON queue_items (queue, idempotency_key);
      CREATE INDEX queue_items_runnable ON queue_items (queue, run_at, id) WHERE state IN ('queued', 'failed');
      CREATE INDEX queue_items_running ON queue_items (queue, lease_expires_at) WHERE state = 'running';
      CREATE INDEX queue_items_finished ON queue_items (queue, finished_at) WHERE state IN ('completed', 'cancelled');
      CREATE INDEX queue_items_state ON queue_items (queue, state);
      CREATE TABLE queue_control (
        queue   TEXT PRIMARY KEY,
        paused  BOOLEAN NOT NULL
      );`,
  },
];

/** Any fixed 64-bit number; the advisory lock that serialises migrations across peers. */
const MIGRATION_LOCK = 7_160_419_001;

export async function migratePostgres(
  client: pg.ClientBase,
  migrations: readonly NamedMigration[],
): Promise<string[]> {
  const applied: string[] = [];
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        name        TEXT PRIMARY KEY,
        applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
      )`);
    const { rows } = await client.query<{ name: string }>('SELECT name FROM schema_migrations');
    const done = new Set(rows.map((r) => r.name));
    for (const migration of migrations) {
      if (done.has(migration.name)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (name) VALUES ($1)', [migration.name]);
      applied.push(migration.name);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return applied;
}
