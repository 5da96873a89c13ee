/** Schema of the AI-task feature. ONLY APPEND: a released step is never edited. */
export const AI_MIGRATIONS: readonly string[] = [
  `CREATE TABLE ai_tasks (
     id               TEXT    PRIMARY KEY,
     idempotency_key  TEXT    UNIQUE,
     status           TEXT    NOT NULL CHECK (status IN ('queued','running','completed','failed','dead','cancelled')),
     prompt           TEXT    NOT NULL,
     system           TEXT,
     model            TEXT,
     max_tokens       INTEGER,
     origin           TEXT    NOT NULL,
     attempts         INTEGER NOT NULL DEFAULT 0,
     next_run_at      INTEGER NOT NULL,
     lease_owner      TEXT,
     lease_until      INTEGER,
     result           TEXT,
     prompt_tokens    INTEGER,
     completion_tokens INTEGER,
     error            TEXT,
     created_at       INTEGER NOT NULL,
     updated_at       INTEGER NOT NULL,
     finished_at      INTEGER
   );
   CREATE INDEX ai_tasks_due ON ai_tasks (status, next_run_at);
   CREATE TABLE ai_usage_hourly (
     hour      INTEGER PRIMARY KEY,
     requests  INTEGER NOT NULL DEFAULT 0,
     tokens    INTEGER NOT NULL DEFAULT 0
   );`,
];
