/**
 * The durable AI-task queue in the peer's SQLite file: a row per task with a lease (owner token,
 * expiry), attempts, a next-run time and a terminal state. Every transition is one statement
 * guarded by the lease owner, so a worker that lost its lease (the process was killed, the lease
 * expired and another claim took the task) cannot complete it: each task completes exactly once.
 */
import { randomUUID } from 'node:crypto';
import type { Db } from '../../store/db.js';

export type TaskStatus = 'queued' | 'running' | 'completed' | 'failed' | 'dead' | 'cancelled';
export const TASK_STATUSES: readonly TaskStatus[] = [
  'queued',
  'running',
  'completed',
  'failed',
  'dead',
  'cancelled',
];

export interface NewTask {
  prompt: string;
  system?: string | undefined;
  model?: string | undefined;
  maxTokens?: number | undefined;
  idempotencyKey?: string | undefined;
  /** Who asked: `api`, or `freelance:<jobId>`. */
  origin?: string;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface Task {
  id: string;
  idempotencyKey: string | null;
  status: TaskStatus;
  prompt: string;
  system: string | null;
  model: string | null;
  maxTokens: number | null;
  origin: string;
  attempts: number;
  nextRunAt: number;
  leaseOwner: string | null;
  result: string | null;
  usage: Usage | null;
  error: string | null;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

interface Row {
  id: string;
  idempotency_key: string | null;
  status: TaskStatus;
  prompt: string;
  system: string | null;
  model: string | null;
  max_tokens: number | null;
  origin: string;
  attempts: number;
  next_run_at: number;
  lease_owner: string | null;
  result: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

function toTask(r: Row): Task {
  const usage =
    r.prompt_tokens === null && r.completion_tokens === null
      ? null
      : {
          promptTokens: r.prompt_tokens ?? 0,
          completionTokens: r.completion_tokens ?? 0,
          totalTokens: (r.prompt_tokens ?? 0) + (r.completion_tokens ?? 0),
        };
  return {
    id: r.id,
    idempotencyKey: r.idempotency_key,
    status: r.status,
    prompt: r.prompt,
    system: r.system,
    model: r.model,
    maxTokens: r.max_tokens,
    origin: r.origin,
    attempts: r.attempts,
    nextRunAt: r.next_run_at,
    leaseOwner: r.lease_owner,
    result: r.result,
    usage,
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

/** A claimed task and the fencing token that proves the claim. */
export interface Lease {
  task: Task;
  token: string;
}

export const HOUR_MS = 3_600_000;
export const hourOf = (now: number) => Math.floor(now / HOUR_MS);

export class TaskStore {
  private readonly s;

  constructor(
    private readonly db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.s = {
      insert: db.prepare(
        `INSERT INTO ai_tasks (id, idempotency_key, status, prompt, system, model, max_tokens, origin,
           next_run_at, created_at, updated_at)
         VALUES (@id, @key, 'queued', @prompt, @system, @model, @maxTokens, @origin, @now, @now, @now)
         ON CONFLICT (idempotency_key) DO NOTHING`,
      ),
      byId: db.prepare('SELECT * FROM ai_tasks WHERE id = ?'),
      byKey: db.prepare('SELECT * FROM ai_tasks WHERE idempotency_key = ?'),
      list: db.prepare('SELECT * FROM ai_tasks ORDER BY created_at DESC, id LIMIT ?'),
      listStatus: db.prepare('SELECT * FROM ai_tasks WHERE status = ? ORDER BY created_at DESC, id LIMIT ?'),
      // A running task whose lease expired is claimable again: its worker died or hangs.
      claim: db.prepare(
        `UPDATE ai_tasks SET status = 'running', lease_owner = @token, lease_until = @until,
           attempts = attempts + 1, updated_at = @now
         WHERE id = (SELECT id FROM ai_tasks
                     WHERE (status = 'queued' AND next_run_at <= @now)
                        OR (status = 'running' AND lease_until < @now)
                     ORDER BY next_run_at, created_at LIMIT 1)
         RETURNING *`,
      ),
      complete: db.prepare(
        `UPDATE ai_tasks SET status = 'completed', result = @result, prompt_tokens = @promptTokens,
           completion_tokens = @completionTokens, error = NULL, lease_owner = NULL, lease_until = NULL,
           updated_at = @now, finished_at = @now
         WHERE id = @id AND status = 'running' AND lease_owner = @token`,
      ),
      retry: db.prepare(
        `UPDATE ai_tasks SET status = 'queued', error = @error, next_run_at = @at, lease_owner = NULL,
           lease_until = NULL, updated_at = @now
         WHERE id = @id AND status = 'running' AND lease_owner = @token`,
      ),
      // Handing a task back without a provider answer (kill switch, open breaker, spending cap)
      // does not spend one of its attempts.
      release: db.prepare(
        `UPDATE ai_tasks SET status = 'queued', attempts = MAX(attempts - 1, 0), next_run_at = @at,
           lease_owner = NULL, lease_until = NULL, updated_at = @now
         WHERE id = @id AND status = 'running' AND lease_owner = @token`,
      ),
      finish: db.prepare(
        `UPDATE ai_tasks SET status = @status, error = @error, lease_owner = NULL, lease_until = NULL,
           updated_at = @now, finished_at = @now
         WHERE id = @id AND status = 'running' AND lease_owner = @token`,
      ),
      releasePrefix: db.prepare(
        `UPDATE ai_tasks SET status = 'queued', next_run_at = @now, lease_owner = NULL, lease_until = NULL,
           updated_at = @now
         WHERE status = 'running' AND lease_owner LIKE @prefix AND lease_owner NOT LIKE @current`,
      ),
      counts: db.prepare('SELECT status, COUNT(*) AS n FROM ai_tasks GROUP BY status'),
      nextDue: db.prepare(
        `SELECT MIN(CASE WHEN status = 'queued' THEN next_run_at ELSE lease_until END) AS at
         FROM ai_tasks WHERE status IN ('queued', 'running')`,
      ),
      addUsage: db.prepare(
        `INSERT INTO ai_usage_hourly (hour, requests, tokens) VALUES (@hour, @requests, @tokens)
         ON CONFLICT (hour) DO UPDATE SET requests = requests + @requests, tokens = tokens + @tokens`,
      ),
      usage: db.prepare('SELECT requests, tokens FROM ai_usage_hourly WHERE hour = ?'),
      usageSince: db.prepare('SELECT hour, requests, tokens FROM ai_usage_hourly WHERE hour >= ? ORDER BY hour'),
    };
  }

  /** Queues a task; a known idempotency key returns the first task instead. */
  submit(task: NewTask): { task: Task; created: boolean } {
    const id = randomUUID();
    const now = this.now();
    const info = this.s.insert.run({
      id,
      key: task.idempotencyKey ?? null,
      prompt: task.prompt,
      system: task.system ?? null,
      model: task.model ?? null,
      maxTokens: task.maxTokens ?? null,
      origin: task.origin ?? 'api',
      now,
    });
    if (info.changes === 1) return { task: this.get(id) as Task, created: true };
    return { task: toTask(this.s.byKey.get(task.idempotencyKey) as Row), created: false };
  }

  get(id: string): Task | undefined {
    const row = this.s.byId.get(id) as Row | undefined;
    return row ? toTask(row) : undefined;
  }

  list(limit: number, status?: TaskStatus): Task[] {
    const rows = (status ? this.s.listStatus.all(status, limit) : this.s.list.all(limit)) as Row[];
    return rows.map(toTask);
  }

  /** Claims the next due task for `leaseMs`; the lease token is unique to this claim. */
  claim(ownerPrefix: string, leaseMs: number): Lease | undefined {
    const token = `${ownerPrefix}/${randomUUID()}`;
    const now = this.now();
    const row = this.s.claim.get({ token, until: now + leaseMs, now }) as Row | undefined;
    return row ? { task: toTask(row), token } : undefined;
  }

  /** False when the lease was lost: someone else owns the task now, and this result is dropped. */
  complete(lease: Lease, result: string, usage: Usage | undefined): boolean {
    return (
      this.s.complete.run({
        id: lease.task.id,
        token: lease.token,
        result,
        promptTokens: usage?.promptTokens ?? 0,
        completionTokens: usage?.completionTokens ?? 0,
        now: this.now(),
      }).changes === 1
    );
  }

  retryLater(lease: Lease, error: string, at: number): boolean {
    return this.s.retry.run({ id: lease.task.id, token: lease.token, error, at, now: this.now() }).changes === 1;
  }

  release(lease: Lease, at: number): boolean {
    return this.s.release.run({ id: lease.task.id, token: lease.token, at, now: this.now() }).changes === 1;
  }

  finish(lease: Lease, status: 'failed' | 'dead', error: string): boolean {
    return (
      this.s.finish.run({ id: lease.task.id, token: lease.token, status, error, now: this.now() }).changes === 1
    );
  }

  /**
   * Requeues tasks leased by earlier boots of this peer: one process per DATA_DIR means their
   * worker is gone, and waiting out the lease would only delay them.
   */
  releaseEarlierBoots(peerId: string, bootId: string): number {
    return this.s.releasePrefix.run({ prefix: `${peerId}:%`, current: `${peerId}:${bootId}/%`, now: this.now() })
      .changes;
  }

  counts(): Record<TaskStatus, number> {
    const out = Object.fromEntries(TASK_STATUSES.map((s) => [s, 0])) as Record<TaskStatus, number>;
    for (const r of this.s.counts.all() as { status: TaskStatus; n: number }[]) out[r.status] = r.n;
    return out;
  }

  /** Epoch ms when the next queued task is due or a lease expires; undefined when nothing waits. */
  nextDueAt(): number | undefined {
    const r = this.s.nextDue.get() as { at: number | null };
    return r.at ?? undefined;
  }

  addUsage(requests: number, tokens: number, at = this.now()): void {
    this.s.addUsage.run({ hour: hourOf(at), requests, tokens });
  }

  usage(at = this.now()): { requests: number; tokens: number } {
    return (this.s.usage.get(hourOf(at)) as { requests: number; tokens: number } | undefined) ?? {
      requests: 0,
      tokens: 0,
    };
  }

  /** Usage per clock hour over the last `hours` hours, oldest first. */
  usageHistory(hours: number, at = this.now()): { hour: string; requests: number; tokens: number }[] {
    const rows = this.s.usageSince.all(hourOf(at) - hours + 1) as { hour: number; requests: number; tokens: number }[];
    return rows.map((r) => ({ hour: new Date(r.hour * HOUR_MS).toISOString(), requests: r.requests, tokens: r.tokens }));
  }
}
