/**
 * Freelance jobs in the peer's SQLite file. A job moves
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

interface Row {
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

const toJob = (r: Row): Job => ({
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

export class JobStore {
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

  /** Stores a job; a known dedup key returns the first job and `created: false`. */
  add(job: NewJob, status: JobStatus, reason: string | null): { job: Job; created: boolean } {
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
    if (info.changes === 1) return { job: this.get(id) as Job, created: true };
    return { job: toJob(this.s.byKey.get(job.dedupKey) as Row), created: false };
  }

  get(id: string): Job | undefined {
    const r = this.s.byId.get(id) as Row | undefined;
    return r ? toJob(r) : undefined;
  }

  list(limit: number, status?: JobStatus): Job[] {
    return ((status ? this.s.listStatus.all(status, limit) : this.s.list.all(limit)) as Row[]).map(toJob);
  }

  counts(): Record<JobStatus, number> {
    const out = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>;
    for (const r of this.s.counts.all() as { status: JobStatus; n: number }[]) out[r.status] = r.n;
    return out;
  }

  /** Removes a job just added whose proposal could not be queued (an intake answered 503). */
  withdraw(id: string): void {
    this.s.withdraw.run(id);
  }

  setProposalTask(id: string, taskId: string): void {
    this.s.setTask.run({ id, taskId, now: this.now() });
  }

  /** Moves a job from `from` to `to`; false when it was not in `from` (someone else moved it). */
  move(
    id: string,
    from: JobStatus,
    to: JobStatus,
    fields: { reason?: string; proposal?: string; deliveryId?: string; decided?: boolean } = {},
  ): boolean {
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
