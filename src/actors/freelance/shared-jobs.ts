/**
 * Freelance jobs in the fleet's PostgreSQL (DATABASE_URL): the same table and transitions as the
 * SQLite store (jobs.ts), so a job posted to one peer is listed, approved and delivered from any.
 * Each transition is one UPDATE guarded by the state it leaves, as in SQLite: two peers deciding at
 * once resolve to exactly one.
 */
import { randomUUID } from 'node:crypto';
import type { SharedSql } from '../../queue/types.js';
import type { NamedMigration } from '../../store/migrations.js';
import {
  emptyCounts,
  type Job,
  type JobRow,
  type JobStatus,
  type JobStore,
  type MoveFields,
  type NewJob,
  toJob,
} from './jobs.js';

/** The shared tables of the freelance feature. ONLY APPEND. */
export const FREELANCE_SHARED_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'freelance/pg-001-jobs-executions',
    sql: `CREATE TABLE freelance_jobs (
            id                TEXT    PRIMARY KEY,
            dedup_key         TEXT    UNIQUE,
            source            TEXT    NOT NULL,
            title             TEXT    NOT NULL,
            description       TEXT,
            url               TEXT,
            budget            DOUBLE PRECISION,
            currency          TEXT,
            tags              TEXT    NOT NULL DEFAULT '[]',
            status            TEXT    NOT NULL,
            reason            TEXT,
            proposal_task_id  TEXT,
            proposal          TEXT,
            delivery_id       TEXT,
            created_at        BIGINT  NOT NULL,
            updated_at        BIGINT  NOT NULL,
            decided_at        BIGINT,
            delivered_at      BIGINT
          );
          CREATE INDEX freelance_jobs_status ON freelance_jobs (status, created_at);
          CREATE TABLE freelance_executions_hourly (
            hour   BIGINT  PRIMARY KEY,
            count  INTEGER NOT NULL DEFAULT 0
          );`,
  },
];

export class SharedJobStore implements JobStore {
  private snapshot = emptyCounts();

  constructor(
    private readonly sql: SharedSql,
    private readonly now: () => number = Date.now,
  ) {}

  async add(job: NewJob, status: JobStatus, reason: string | null): Promise<{ job: Job; created: boolean }> {
    const rows = await this.sql.query<JobRow>(
      `INSERT INTO freelance_jobs (id, dedup_key, source, title, description, url, budget, currency, tags,
         status, reason, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)
       ON CONFLICT (dedup_key) DO NOTHING
       RETURNING *`,
      [
        randomUUID(),
        job.dedupKey ?? null,
        job.source,
        job.title,
        job.description ?? null,
        job.url ?? null,
        job.budget ?? null,
        job.currency ?? null,
        JSON.stringify(job.tags ?? []),
        status,
        reason,
        this.now(),
      ],
    );
    if (rows[0]) return { job: toJob(rows[0]), created: true };
    const first = await this.sql.query<JobRow>('SELECT * FROM freelance_jobs WHERE dedup_key = $1', [
      job.dedupKey,
    ]);
    return { job: toJob(first[0] as JobRow), created: false };
  }

  async get(id: string): Promise<Job | undefined> {
    const rows = await this.sql.query<JobRow>('SELECT * FROM freelance_jobs WHERE id = $1', [id]);
    return rows[0] ? toJob(rows[0]) : undefined;
  }

  async list(limit: number, status?: JobStatus): Promise<Job[]> {
    const rows = status
      ? await this.sql.query<JobRow>(
          'SELECT * FROM freelance_jobs WHERE status = $1 ORDER BY created_at DESC, id LIMIT $2',
          [status, limit],
        )
      : await this.sql.query<JobRow>('SELECT * FROM freelance_jobs ORDER BY created_at DESC, id LIMIT $1', [
          limit,
        ]);
    return rows.map(toJob);
  }

  counts(): Record<JobStatus, number> {
    return this.snapshot;
  }

  async refresh(): Promise<void> {
    const rows = await this.sql.query<{ status: JobStatus; n: number }>(
      'SELECT status, COUNT(*)::int AS n FROM freelance_jobs GROUP BY status',
    );
    const out = emptyCounts();
    for (const r of rows) out[r.status] = r.n;
    this.snapshot = out;
  }

  async setProposalTask(id: string, taskId: string): Promise<void> {
    await this.sql.query(
      `UPDATE freelance_jobs SET proposal_task_id = $2, updated_at = $3 WHERE id = $1 AND status = 'drafting'`,
      [id, taskId, this.now()],
    );
  }

  async withdraw(id: string): Promise<void> {
    await this.sql.query(
      `DELETE FROM freelance_jobs WHERE id = $1 AND status = 'drafting' AND proposal_task_id IS NULL`,
      [id],
    );
  }

  async move(id: string, from: JobStatus, to: JobStatus, fields: MoveFields = {}): Promise<boolean> {
    const rows = await this.sql.query(
      `UPDATE freelance_jobs SET status = $3::text, reason = COALESCE($4, reason),
         proposal = COALESCE($5, proposal), delivery_id = COALESCE($6, delivery_id),
         decided_at = CASE WHEN $7::boolean THEN $8 ELSE decided_at END,
         delivered_at = CASE WHEN $3::text = 'delivered' THEN $8 ELSE delivered_at END,
         updated_at = $8
       WHERE id = $1 AND status = $2
       RETURNING id`,
      [
        id,
        from,
        to,
        fields.reason ?? null,
        fields.proposal ?? null,
        fields.deliveryId ?? null,
        fields.decided === true,
        this.now(),
      ],
    );
    return rows.length === 1;
  }
}
