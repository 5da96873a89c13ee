/**
 * Opens the peer's one SQLite file (WAL) and brings its schema up to date. Migrations are named,
 * not numbered by position, so each feature adds its own (passed to openDb) without coordinating
 * with the others; the names applied are recorded in `schema_migration`. A released migration is
 * never edited: a change is a new migration with a new name.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

export const DB_FILE = 'quantum-bot.sqlite';

export interface Migration {
  /** Unique and stable: `<feature>/<what it does>`. */
  name: string;
  sql: string;
}

/** The runtime's own tables. ONLY APPEND; the first two predate named migrations (user_version 1, 2). */
export const CORE_MIGRATIONS: readonly Migration[] = [
  {
    name: 'core/kill-switch',
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
    name: 'core/subsystem-intent',
    sql: `CREATE TABLE subsystem_intent (
       name     TEXT PRIMARY KEY,
       desired  TEXT NOT NULL CHECK (desired IN ('running', 'stopped')),
       at       TEXT NOT NULL
     );`,
  },
];

/**
 * Opens (creating) DATA_DIR/quantum-bot.sqlite, or an in-memory database for `:memory:`, and
 * applies the core migrations and then `migrations` that are not applied yet, each in its own
 * transaction.
 */
export function openDb(dataDir: string | ':memory:', migrations: readonly Migration[] = []): Db {
  let file = ':memory:';
  if (dataDir !== ':memory:') {
    mkdirSync(dataDir, { recursive: true });
    file = join(dataDir, DB_FILE);
  }
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode survives a process kill (only an OS crash can lose the last commits).
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, [...CORE_MIGRATIONS, ...migrations]);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/** Names of the migrations applied to `db`, in the order they were applied. */
export function appliedMigrations(db: Db): string[] {
  return (db.prepare('SELECT name FROM schema_migration ORDER BY seq').all() as { name: string }[]).map(
    (r) => r.name,
  );
}

function migrate(db: Db, migrations: readonly Migration[]): void {
  const names = new Set<string>();
  for (const m of migrations) {
    if (names.has(m.name)) throw new Error(`two migrations are named "${m.name}"`);
    names.add(m.name);
  }
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migration (
       seq        INTEGER PRIMARY KEY AUTOINCREMENT,
       name       TEXT NOT NULL UNIQUE,
       applied_at TEXT NOT NULL
     )`);
    // A database from before named migrations counts its core migrations in user_version.
    const legacy = db.pragma('user_version', { simple: true }) as number;
    if (legacy > 0) {
      const record = db.prepare('INSERT OR IGNORE INTO schema_migration (name, applied_at) VALUES (?, ?)');
      for (const m of CORE_MIGRATIONS.slice(0, legacy)) record.run(m.name, new Date().toISOString());
      db.pragma('user_version = 0');
    }
  })();
  const applied = new Set(appliedMigrations(db));
  const unknown = [...applied].filter((name) => !names.has(name));
  if (unknown.length > 0) {
    throw new Error(
      `the database has migrations this build does not know (${unknown.join(', ')}): it was written by a newer build; refusing to downgrade`,
    );
  }
  const record = db.prepare('INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)');
  for (const m of migrations) {
    if (applied.has(m.name)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.name, new Date().toISOString());
    })();
  }
}
