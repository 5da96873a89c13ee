/**
 * Named migrations: each is applied once and recorded by its name in `schema_migrations`, so
 * features (queue, ledgers...) add their own without numbering by position in one shared list, and
 * branches that add migrations in parallel do not collide. A released migration is never edited; a
 * change is a new name.
 */
import type { Db } from './db.js';

export interface NamedMigration {
  /** Unique and stable, e.g. `queue/001-items`. */
  readonly name: string;
  readonly sql: string;
}

/** Applies, in order, the migrations whose names are not yet recorded; each in its own transaction. */
export function applyNamedMigrations(db: Db, migrations: readonly NamedMigration[]): string[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
     name        TEXT PRIMARY KEY,
     applied_at  TEXT NOT NULL
   )`);
  const done = db.prepare('SELECT 1 FROM schema_migrations WHERE name = ?');
  const record = db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)');
  const applied: string[] = [];
  for (const migration of migrations) {
    // immediate: two processes opening the same file both try; the second waits and then skips.
    db.transaction(() => {
      if (done.get(migration.name)) return;
      db.exec(migration.sql);
      record.run(migration.name, new Date().toISOString());
      applied.push(migration.name);
    }).immediate();
  }
  return applied;
}
