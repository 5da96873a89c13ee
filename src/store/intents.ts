/**
 * What the operator last asked of each subsystem (start or stop), so a respawned worker or a
 * restarted peer honours it: a subsystem stopped through the API stays stopped after a crash, and
 * one started by hand with AUTO_START=false comes back running.
 */
import type { Db } from './db.js';

export type Intent = 'running' | 'stopped';

export class IntentStore {
  constructor(private readonly db: Db) {}

  get(name: string): Intent | undefined {
    const row = this.db.prepare('SELECT desired FROM subsystem_intent WHERE name = ?').get(name) as
      | { desired: Intent }
      | undefined;
    return row?.desired;
  }

  set(name: string, desired: Intent): void {
    this.db
      .prepare(
        `INSERT INTO subsystem_intent (name, desired, at) VALUES (?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET desired = excluded.desired, at = excluded.at`,
      )
      .run(name, desired, new Date().toISOString());
  }
}
