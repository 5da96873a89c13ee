/**
 * Named migrations: each feature owns an append-only list of schema steps, recorded per owner in
 * `schema_migrations`, so features add tables without sharing one global version number.
 */
import type { Db } from './db.js';

export function applyMigrations(db: Db, owner: string, steps: readonly string[]): void {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
     owner   TEXT    NOT NULL,
     step    INTEGER NOT NULL,
     at      TEXT    NOT NULL,
     PRIMARY KEY (owner, step)
   )`);
  const done = db.prepare('SELECT COALESCE(MAX(step), 0) AS n FROM schema_migrations WHERE owner = ?').get(
    owner,
  ) as { n: number };
  if (done.n > steps.length) {
    throw new Error(
      `schema of ${owner} is at step ${done.n}, newer than this build knows (${steps.length}); refusing to downgrade`,
    );
  }
  const record = db.prepare('INSERT INTO schema_migrations (owner, step, at) VALUES (?, ?, ?)');
  for (let step = done.n; step < steps.length; step++) {
    db.transaction(() => {
      db.exec(steps[step] as string);
      record.run(owner, step + 1, new Date().toISOString());
    })();
  }
}
