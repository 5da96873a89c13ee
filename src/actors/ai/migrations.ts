import type { NamedMigration } from '../../store/migrations.js';

/**
 * Schema of the AI feature beside the queue (which holds the tasks themselves): usage per clock
 * hour, which the spending guard reads. ONLY APPEND: a released migration is never edited.
 */
export const AI_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'ai/001-usage-hourly',
    sql: `CREATE TABLE ai_usage_hourly (
            hour      INTEGER PRIMARY KEY,
            requests  INTEGER NOT NULL DEFAULT 0,
            tokens    INTEGER NOT NULL DEFAULT 0
          )`,
  },
];
