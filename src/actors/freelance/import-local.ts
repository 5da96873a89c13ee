/**
 * A peer that had kept its freelance jobs in its own SQLite file and now runs with DATABASE_URL
 * copies them into the fleet's PostgreSQL once per start, so no job is left behind where no other
 * peer can see it. A job already there (same id or dedup key) is left as the fleet has it; the
 * pipeline's reconcile then queues what the copied jobs still need (proposals, deliveries).
 */
import type { SharedSql } from '../../queue/types.js';
import type { Db } from '../../store/db.js';
import type { JobRow } from './jobs.js';

const COLUMNS = [
  'id',
  'dedup_key',
  'source',
  'title',
  'description',
  'url',
  'budget',
  'currency',
  'tags',
  'status',
  'reason',
  'proposal_task_id',
  'proposal',
  'delivery_id',
  'created_at',
  'updated_at',
  'decided_at',
  'delivered_at',
] as const;

/** Copies the local jobs not yet in the shared table; resolves with how many were copied. */
export async function importLocalJobs(db: Db, sql: SharedSql): Promise<number> {
  const rows = db.prepare('SELECT * FROM freelance_jobs').all() as (JobRow & { dedup_key: string | null })[];
  let copied = 0;
  for (const row of rows) {
    const placeholders = COLUMNS.map((_, i) => `$${i + 1}`).join(', ');
    const done = await sql.query(
      `INSERT INTO freelance_jobs (${COLUMNS.join(', ')}) VALUES (${placeholders})
       ON CONFLICT DO NOTHING RETURNING id`,
      COLUMNS.map((c) => row[c as keyof typeof row] ?? null),
    );
    copied += done.length;
  }
  return copied;
}
