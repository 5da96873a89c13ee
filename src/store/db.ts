/**
 * Opens the peer's one SQLite file (WAL) and brings its schema up to date. Migrations are
 * append-only: a released one is never edited, a change is a new entry.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const DB_FILE = 'quantum-bot.sqlite';

/** Index + 1 is the schema version (PRAGMA user_version). ONLY APPEND. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE kill_switch (
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
  `CREATE TABLE subsystem_intent (
     name     TEXT PRIMARY KEY,
     desired  TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
     at       TEXT NOT NULL
   );`,
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
  // First: every later statement (even switching to WAL) may meet another process's lock.
  db.pragma('busy_timeout = 5000');
  enableWal(db);
  // NORMAL in WAL mode survives a process kill (only an OS crash can lose the last commits).
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  migrate(db);
  return db;
}

/**
 * Switching a fresh file to WAL needs a moment when no other connection holds a lock, and SQLite
 * answers SQLITE_BUSY for it without always running the busy handler: retry for up to 5 s. Only
 * processes opening one file at once meet this (a start racing a second process on the same
 * DATA_DIR, which the DATA_DIR lock then refuses).
 */
function enableWal(db: Db): void {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() > deadline) throw err;
      // A synchronous pause: opening the database is synchronous, and this path is rare.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

function migrate(db: Db): void {
  // One immediate transaction that reads the version too: another process opening the same fresh
  // file waits for the write lock, then finds the schema up to date instead of migrating it again.
  db.transaction(() => {
    const current = db.pragma('user_version', { simple: true }) as number;
    if (current > MIGRATIONS.length) {
      throw new Error(
        `database schema version ${current} is newer than this build knows (${MIGRATIONS.length}); refusing to downgrade`,
      );
    }
    for (let version = current; version < MIGRATIONS.length; version++) {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    }
  }).immediate();
}
