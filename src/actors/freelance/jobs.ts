/**
 * Freelance jobs: in the peer's SQLite file (a peer alone), or in the fleet's PostgreSQL
 * (DATABASE_URL; shared-jobs.ts), where every peer sees, approves and delivers every job. A job moves
 *
 *   skipped                      (matching rules said no; the reason is kept)
 *   drafting ──▶ awaiting-approval ──approve──▶ approved ──▶ delivered
 *      │                 │ (FREELANCE_AUTO_EXECUTE skips     │ webhook refused past the limit
 *      ▼                 ▼  the approval)                    ▼
 *   failed           rejected                               dead
 *
 * Every transition is one UPDATE guarded by the state it leaves, so two racing decisions (two
 * operators, approve against auto-execute) resolve to exactly one.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../store/db.js';

export const JOB_STATUSES = [
  'skipped',
  'drafting',
  'awaiting-approval',
  'approved',
  'rejected',
  'delivered',
  'dead',
  'failed',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export interface NewJob {
  title: string;
  description?: string | undefined;
  url?: string | undefined;
  budget?: number | undefined;
  currency?: string | undefined;
  tags?: string[] | undefined;
  /** `api`, or the feed URL it came from. */
  source: string;
  /** Feed guid or URL; a second job with the same key is the same job. */
  dedupKey?: string | undefined;
}

export interface Job {
  id: string;
  source: string;
  title: string;
  description: string | null;
  url: string | null;
  budget: number | null;
  currency: string | null;
  tags: string[];
  status: JobStatus;
  /** Why it was skipped, rejected, failed or died. */
  reason: string | null;
  proposalTaskId: string | null;
  proposal: string | null;
  /** The webhook id of its delivery (the receiver's idempotency key). */
  deliveryId: string | null;
  createdAt: number;
  updatedAt: number;
  decidedAt: number | null;
  deliveredAt: number | null;
}

export interface JobRow {
  id: string;
  source: string;
  title: string;
  description: string | null;
  url: string | null;
  budget: number | null;
  currency: string | null;
  tags: string;
  status: JobStatus;
  reason: string | null;
  proposal_task_id: string | null;
  proposal: string | null;
  delivery_id: string | null;
  created_at: number;
  updated_at: number;
  decided_at: number | null;
  delivered_at: number | null;
}

export const toJob = (r: JobRow): Job => ({
  id: r.id,
  source: r.source,
  title: r.title,
  description: r.description,
  url: r.url,
  budget: r.budget,
  currency: r.currency,
  tags: JSON.parse(r.tags) as string[],
  status: r.status,
  reason: r.reason,
  proposalTaskId: r.proposal_task_id,
  proposal: r.proposal,
  deliveryId: r.delivery_id,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
  decidedAt: r.decided_at,
  deliveredAt: r.delivered_at,
});

/** Fields a transition may set beside the status. */
export interface MoveFields {
  reason?: string;
  proposal?: string;
  deliveryId?: string;
  decided?: boolean;
}

/** Where jobs are kept. Every transition is guarded by the state it leaves (see above). */
export interface JobStore {
  /** Stores a job; a known dedup key returns the first job and `created: false`. */
  add(job: NewJob, status: JobStatus, reason: string | null): Promise<{ job: Job; created: boolean }>;
  get(id: string): Promise<Job | undefined>;
  /** Newest first. */
  list(limit: number, status?: JobStatus): Promise<Job[]>;
  /** Jobs by status (with PostgreSQL the fleet's, as of the last refresh). */
  counts(): Record<JobStatus, number>;
  /** Re-reads what `counts` shows (PostgreSQL); nothing to do for SQLite. */
  refresh(): Promise<void>;
  setProposalTask(id: string, taskId: string): Promise<void>;
  /** Removes a job just added whose proposal could not be queued (an intake answered 503). */
  withdraw(id: string): Promise<void>;
  /** Moves a job from `from` to `to`; false when it was not in `from` (someone else moved it). */
  move(id: string, from: JobStatus, to: JobStatus, fields?: MoveFields): Promise<boolean>;
}

export const emptyCounts = (): Record<JobStatus, number> =>
  Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;

/** The SQLite job store: one peer's jobs. */
export class SqliteJobStore implements JobStore {
  private readonly s;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO freelance_jobs (id, dedup_key, source, title, description, url, budget, currency, tags,
           status, reason, created_at, updated_at)
         VALUES (@id, @dedupKey, @source, @title, @description, @url, @budget, @currency, @tags, @status,
           @reason, @now, @now)
         ON CONFLICT (dedup_key) DO NOTHING`,
      ),
      byId: db.prepare('SELECT * FROM freelance_jobs WHERE id = ?'),
      byKey: db.prepare('SELECT * FROM freelance_jobs WHERE dedup_key = ?'),
      list: db.prepare('SELECT * FROM freelance_jobs ORDER BY created_at DESC, id LIMIT ?'),
      listStatus: db.prepare(
        'SELECT * FROM freelance_jobs WHERE status = ? ORDER BY created_at DESC, id LIMIT ?',
      ),
      withdraw: db.prepare(
        `DELETE FROM freelance_jobs WHERE id = ? AND status = 'drafting' AND proposal_task_id IS NULL`,
      ),
      counts: db.prepare('SELECT status, COUNT(*) AS n FROM freelance_jobs GROUP BY status'),
      setTask: db.prepare(
        `UPDATE freelance_jobs SET proposal_task_id = @taskId, updated_at = @now
         WHERE id = @id AND status = 'drafting'`,
      ),
      move: db.prepare(
        `UPDATE freelance_jobs SET status = @to, reason = COALESCE(@reason, reason),
           proposal = COALESCE(@proposal, proposal), delivery_id = COALESCE(@deliveryId, delivery_id),
           decided_at = CASE WHEN @decided = 1 THEN @now ELSE decided_at END,
           delivered_at = CASE WHEN @to = 'delivered' THEN @now ELSE delivered_at END,
           updated_at = @now
         WHERE id = @id AND status = @from`,
      ),
    };
  }

  async add(job: NewJob, status: JobStatus, reason: string | null): Promise<{ job: Job; created: boolean }> {
    const id = randomUUID();
    const info = this.s.insert.run({
      id,
      dedupKey: job.dedupKey ?? null,
      source: job.source,
      title: job.title,
      description: job.description ?? null,
      url: job.url ?? null,
      budget: job.budget ?? null,
      currency: job.currency ?? null,
      tags: JSON.stringify(job.tags ?? []),
      status,
      reason,
      now: this.now(),
    });
    if (info.changes === 1) return { job: this.getNow(id) as Job, created: true };
    return { job: toJob(this.s.byKey.get(job.dedupKey) as JobRow), created: false };
  }

  private getNow(id: string): Job | undefined {
    const r = this.s.byId.get(id) as JobRow | undefined;
    return r ? toJob(r) : undefined;
  }

  async get(id: string): Promise<Job | undefined> {
    return this.getNow(id);
  }

  async list(limit: number, status?: JobStatus): Promise<Job[]> {
    return ((status ? this.s.listStatus.all(status, limit) : this.s.list.all(limit)) as JobRow[]).map(toJob);
  }

  async refresh(): Promise<void> {}

  counts(): Record<JobStatus, number> {
    const out = emptyCounts();
    for (const r of this.s.counts.all() as { status: JobStatus; n: number }[]) out[r.status] = r.n;
    return out;
  }

  async withdraw(id: string): Promise<void> {
    this.s.withdraw.run(id);
  }

  async setProposalTask(id: string, taskId: string): Promise<void> {
    this.s.setTask.run({ id, taskId, now: this.now() });
  }

  async move(id: string, from: JobStatus, to: JobStatus, fields: MoveFields = {}): Promise<boolean> {
    return (
      this.s.move.run({
        id,
        from,
        to,
        reason: fields.reason ?? null,
        proposal: fields.proposal ?? null,
        deliveryId: fields.deliveryId ?? null,
        decided: fields.decided ? 1 : 0,
        now: this.now(),
      }).changes === 1
    );
  }
}
