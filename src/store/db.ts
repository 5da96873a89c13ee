/**
 * Opens the peer's one SQLite file (WAL) and brings its schema up to date. Migrations are named and
 * append-only: a released one is never edited or reordered, a change is a new entry at the end.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const DB_FILE = 'quantum-bot.sqlite';

export interface Migration {
  /** What it does, for the log and for whoever reads this list; unique. */
  name: string;
  sql: string;
}

/** Index + 1 is the schema version (PRAGMA user_version). ONLY APPEND. */
export const MIGRATIONS: readonly Migration[] = [
  {
    name: 'kill-switch',
    sql: `CREATE TABLE kill_switch (
     id      INTEGER PRIMARY KEY CHECK (id = 1),
     active  INTEGER NOT NULL,
     reason  TEXT    NOT NULL,
     since   TEXT    NOT NULL,
     origin  TEXT    NOT NULL,
     epoch   INTEGER NOT NULL
   );
   CREATE TABLE kill_switch_history (
     seq     INTEGER PRIMARY KEY AUTOINCREMENT,
     active  INTEGER NOT NULL,
     reason  TEXT    NOT NULL,
     at      TEXT    NOT NULL,
     origin  TEXT    NOT NULL,
     epoch   INTEGER NOT NULL
   );`,
  },
  {
    name: 'subsystem-intent',
    sql: `CREATE TABLE subsystem_intent (
     name     TEXT PRIMARY KEY,
     desired  TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
     at       TEXT NOT NULL
   );`,
  },
  {
    // Failure counts of the supervisor, and whether a subsystem was live: see store/supervision.ts.
    name: 'subsystem-supervision',
    sql: `CREATE TABLE subsystem_supervision (
     name                  TEXT PRIMARY KEY,
     live                  INTEGER NOT NULL CHECK (live IN (0, 1)),
     consecutive_failures  INTEGER NOT NULL CHECK (consecutive_failures >= 0),
     last_error_code       TEXT,
     last_error_message    TEXT,
     last_error_at         TEXT,
     updated_at            TEXT NOT NULL
   );`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating) DATA_DIR/quantum-bot.sqlite, or an in-memory database for `:memory:`. */
export function openDb(dataDir: string | ':memory:'): Db {
  let file = ':memory:';
  if (dataDir !== ':memory:') {
    mkdirSync(dataDir, { recursive: true });
    file = join(dataDir, DB_FILE);
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL in WAL mode survives a process kill (only an OS crash can lose the last commits).
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this build knows (${MIGRATIONS.length}); refusing to downgrade`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec((MIGRATIONS[version] as Migration).sql);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
