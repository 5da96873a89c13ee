import type { NamedMigration } from '../../store/migrations.js';

/** Schema of the freelance feature. ONLY APPEND: a released migration is never edited. */
export const FREELANCE_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'freelance/001-jobs-feeds',
    sql: `CREATE TABLE freelance_jobs (
            id                TEXT    PRIMARY KEY,
            dedup_key         TEXT    UNIQUE,
            source            TEXT    NOT NULL,
            title             TEXT    NOT NULL,
            description       TEXT,
            url               TEXT,
            budget            REAL,
            currency          TEXT,
            tags              TEXT    NOT NULL DEFAULT '[]',
            status            TEXT    NOT NULL,
            reason            TEXT,
            proposal_task_id  TEXT,
            proposal          TEXT,
            delivery_id       TEXT,
            created_at        INTEGER NOT NULL,
            updated_at        INTEGER NOT NULL,
            decided_at        INTEGER,
            delivered_at      INTEGER
          );
          CREATE INDEX freelance_jobs_status ON freelance_jobs (status, created_at);
          CREATE TABLE freelance_feeds (
            url            TEXT    PRIMARY KEY,
            etag           TEXT,
            last_modified  TEXT,
            failures       INTEGER NOT NULL DEFAULT 0,
            last_error     TEXT,
            next_poll_at   INTEGER NOT NULL DEFAULT 0,
            last_ok_at     INTEGER,
            items_seen     INTEGER NOT NULL DEFAULT 0
          );
          CREATE TABLE freelance_executions_hourly (
            hour   INTEGER PRIMARY KEY,
            count  INTEGER NOT NULL DEFAULT 0
          );`,
  },
];
