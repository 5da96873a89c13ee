/**
 * The supervisor's journal: per subsystem, its consecutive failures and whether it is live (its
 * `run` started and not yet stopped). It makes the 10-failure limit hold when a subsystem's failure
 * takes the whole worker process down (an async throw that becomes an uncaught exception, an OOM):
 * the count would otherwise start over in the respawned worker, and such a subsystem would crash the
 * worker forever.
 *
 * The lifecycle writes a row on every change, and marks the subsystem live before its `run` can do
 * anything. When this store opens (once per process, before any subsystem starts), a row still
 * marked live means the previous process died while that subsystem was starting or running. When
 * the death was pinned on one subsystem (an uncaught exception thrown from its code, see
 * actors/blame.ts, recorded by `blame`), it counts as one more failure of that subsystem only;
 * otherwise (SIGKILL, OOM, a throw from no subsystem's code) it counts against every subsystem that
 * was live. A stable period resets the count (the lifecycle writes 0).
 */
import type { Statement } from 'better-sqlite3';
import type { ERRORS } from '../errors.js';
import type { Db } from './db.js';
import { applyNamedMigrations, type NamedMigration } from './migrations.js';

/** ONLY APPEND; a released migration is never edited. */
export const SUPERVISION_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'supervision/001-subsystem-supervision',
    sql: `CREATE TABLE subsystem_supervision (
      name                  TEXT PRIMARY KEY,
      live                  INTEGER NOT NULL CHECK (live IN (0, 1)),
      -- 1: an uncaught exception in this subsystem's own code took the process down.
      blamed                INTEGER NOT NULL DEFAULT 0 CHECK (blamed IN (0, 1)),
      consecutive_failures  INTEGER NOT NULL CHECK (consecutive_failures >= 0),
      last_error_code       TEXT,
      last_error_message    TEXT,
      last_error_at         TEXT,
      updated_at            TEXT NOT NULL
    )`,
  },
];

// Structural copies of the lifecycle's types: the store does not import the actors.
export interface SupervisionError {
  code: string;
  message: string;
  at: string;
}

export interface SupervisionRecord {
  live: boolean;
  consecutiveFailures: number;
  lastError: SupervisionError | null;
}

export interface RestoredRecord extends SupervisionRecord {
  /** The previous process died while this subsystem was live (already counted above). */
  diedWhileLive: boolean;
}

interface Row {
  name: string;
  live: number;
  consecutive_failures: number;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: string | null;
}

const WORKER_DIED: keyof typeof ERRORS = 'QB_ERR_WORKER_DIED';
const DIED_UNDER = 'the worker process died while this subsystem was starting or running';

export class SupervisionStore {
  private readonly statements: { read: Statement; upsert: Statement; blame: Statement };
  /** Subsystems the previous process died under; reported once each, by the first `load`. */
  private readonly diedUnder = new Set<string>();

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    applyNamedMigrations(db, SUPERVISION_MIGRATIONS);
    this.statements = {
      read: db.prepare(
        `SELECT name, live, consecutive_failures, last_error_code, last_error_message, last_error_at
         FROM subsystem_supervision WHERE name = ?`,
      ),
      upsert: db.prepare(
        `INSERT INTO subsystem_supervision
           (name, live, consecutive_failures, last_error_code, last_error_message, last_error_at, updated_at)
         VALUES (@name, @live, @failures, @code, @message, @at, @updated)
         ON CONFLICT (name) DO UPDATE SET live = @live, blamed = 0, consecutive_failures = @failures,
           last_error_code = @code, last_error_message = @message, last_error_at = @at,
           updated_at = @updated`,
      ),
      blame: db.prepare(
        `UPDATE subsystem_supervision SET blamed = 1, last_error_message = ?, updated_at = ?
         WHERE name = ? AND live = 1`,
      ),
    };
    this.countDeathsOfThePreviousProcess(db);
  }

  /** The subsystem's record; `diedWhileLive` is true only on the first load after such a death. */
  load(name: string): RestoredRecord | undefined {
    const row = this.statements.read.get(name) as Row | undefined;
    if (!row) return undefined;
    const died = this.diedUnder.delete(name);
    return { ...fromRow(row), diedWhileLive: died };
  }

  save(name: string, record: SupervisionRecord): void {
    this.statements.upsert.run({
      name,
      live: record.live ? 1 : 0,
      failures: record.consecutiveFailures,
      code: record.lastError?.code ?? null,
      message: record.lastError?.message ?? null,
      at: record.lastError?.at ?? null,
      updated: this.now().toISOString(),
    });
  }

  /**
   * Pins the coming death of this process on `name`: called synchronously from the
   * uncaught-exception monitor, before the worker exits. The message is kept for the next boot.
   */
  blame(name: string, error: unknown): void {
    const why = error instanceof Error ? error.message : String(error);
    this.statements.blame.run(
      `an uncaught exception in this subsystem's code took the worker process down: ${why}`,
      this.now().toISOString(),
      name,
    );
  }

  private countDeathsOfThePreviousProcess(db: Db): void {
    const at = this.now().toISOString();
    const live = db.prepare('SELECT name, blamed FROM subsystem_supervision WHERE live = 1').all() as Array<{
      name: string;
      blamed: number;
    }>;
    if (live.length === 0) return;
    const pinned = live.some((r) => r.blamed === 1);
    db.transaction(() => {
      // The innocent bystanders of a pinned death are simply no longer live.
      if (pinned) db.prepare('UPDATE subsystem_supervision SET live = 0 WHERE live = 1 AND blamed = 0').run();
      db.prepare(
        `UPDATE subsystem_supervision
         SET live = 0, blamed = 0, consecutive_failures = consecutive_failures + 1,
             last_error_code = ?, last_error_message = CASE WHEN blamed = 1 THEN last_error_message ELSE ? END,
             last_error_at = ?, updated_at = ?
         WHERE live = 1`,
      ).run(WORKER_DIED, DIED_UNDER, at, at);
    })();
    for (const r of live) if (!pinned || r.blamed === 1) this.diedUnder.add(r.name);
  }
}

function fromRow(row: Row): SupervisionRecord {
  return {
    live: row.live === 1,
    consecutiveFailures: row.consecutive_failures,
    lastError:
      row.last_error_code === null
        ? null
        : { code: row.last_error_code, message: row.last_error_message ?? '', at: row.last_error_at ?? '' },
  };
}
