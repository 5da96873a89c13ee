/**
 * The job pipeline: intake (API or feed) -> matching rules -> a proposal drafted by an AI task
 * (so it inherits the task queue's durability and the AI spending guard) -> approval (or
 * FREELANCE_AUTO_EXECUTE) -> delivery through the `freelance.deliver` queue. Each step is a
 * guarded state change in SQLite plus, where work must happen later, a queue item with an
 * idempotency key, so a crash between the two is repaired by `reconcile()` without doubles.
 */
import { QbError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { isStoreUnavailable } from '../../queue/pg-connection.js';
import type { Queue } from '../../queue/types.js';
import { AI_QUEUE, type AiTask, type TaskPayload, type TaskResult } from '../ai/tasks.js';
import type { FeedItem } from './feeds/parse.js';
import type { Job, JobStore, NewJob } from './jobs.js';
import { type MatchRules, matchJob } from './match.js';

/**
 * The delivery queue. Jobs in a peer's own SQLite file are delivered by that peer (another peer
 * sharing a PostgreSQL queue would not find the job): one queue per peer. Jobs in the fleet's
 * shared database (`shared`) are visible to every peer, so any peer delivers any job: one queue.
 */
export function deliveryQueue(peerId: string, shared = false): string {
  return shared ? 'freelance.deliver' : `freelance.deliver.${peerId}`;
}

export interface DeliveryPayload {
  jobId: string;
  approvedBy: 'operator' | 'auto';
}

export interface PipelineOptions {
  jobs: JobStore;
  queue: Queue;
  rules: MatchRules;
  autoExecute: boolean;
  /** deliveryQueue(peerId). */
  deliveryQueue: string;
  /** Asked to look for work after an enqueue (the AI engine, the delivery loop). */
  wakeAi(): void;
  wakeDelivery(): void;
  logger: Logger;
}

const proposalKey = (jobId: string) => `freelance:proposal:${jobId}`;
const deliveryKey = (jobId: string) => `freelance:deliver:${jobId}`;
const ORIGIN_PREFIX = 'freelance:';

export class FreelancePipeline {
  constructor(private readonly o: PipelineOptions) {}

  /**
   * Takes a job in; a repeat (same guid or URL) returns the first one. `allOrNothing` (an HTTP
   * intake, whose caller gets 503 and retries): when the proposal task cannot be committed because
   * the queue's database is unreachable, the new job is withdrawn too, so nothing is half-accepted.
   * A feed's job is kept instead (reconcile() queues its proposal later; the feed may not repeat it).
   */
  async submit(
    job: NewJob,
    options: { allOrNothing?: boolean } = {},
  ): Promise<{ job: Job; created: boolean }> {
    const verdict = matchJob(job, this.o.rules);
    const { job: stored, created } = verdict.matched
      ? await this.o.jobs.add(job, 'drafting', null)
      : await this.o.jobs.add(job, 'skipped', verdict.reason);
    if (created) {
      this.o.logger.info(
        { jobId: stored.id, source: stored.source, status: stored.status, reason: stored.reason },
        verdict.matched ? 'freelance job matched; drafting a proposal' : 'freelance job skipped',
      );
      if (stored.status === 'drafting') {
        try {
          await this.requestProposal(stored);
        } catch (err) {
          if (options.allOrNothing && isStoreUnavailable(err)) await this.o.jobs.withdraw(stored.id);
          throw err;
        }
      }
    }
    return { job: (await this.o.jobs.get(stored.id)) ?? stored, created };
  }

  /** A feed item becomes a job; its guid (or URL) is the dedup key. */
  async intakeFeedItem(item: FeedItem, feedUrl: string): Promise<void> {
    const key = item.guid ?? item.url;
    await this.submit({
      title: item.title,
      description: item.description,
      url: item.url,
      budget: item.budget,
      currency: item.currency,
      tags: item.tags,
      source: feedUrl,
      dedupKey: key ? `feed:${key}` : undefined,
    });
  }

  private async requestProposal(job: Job): Promise<void> {
    const payload: TaskPayload = {
      prompt: proposalPrompt(job),
      origin: `${ORIGIN_PREFIX}${job.id}`,
      maxTokens: 800,
    };
    const { item } = await this.o.queue.enqueue(AI_QUEUE, payload, { idempotencyKey: proposalKey(job.id) });
    await this.o.jobs.setProposalTask(job.id, item.id);
    this.o.wakeAi();
    // The task may have finished already (a repeat of a completed key).
    await this.onTaskSettled(item as AiTask);
  }

  /** An AI task settled: if it drafted a proposal, the job moves on. */
  async onTaskSettled(task: AiTask): Promise<void> {
    if (!task.payload.origin.startsWith(ORIGIN_PREFIX)) return;
    const jobId = task.payload.origin.slice(ORIGIN_PREFIX.length);
    if (task.state === 'completed' && task.result) {
      const proposal = (task.result as TaskResult).text;
      if (await this.o.jobs.move(jobId, 'drafting', 'awaiting-approval', { proposal })) {
        this.o.logger.info({ jobId }, 'proposal drafted; the job awaits approval');
        if (this.o.autoExecute)
          void this.approve(jobId, 'auto').catch((err) =>
            this.o.logger.error({ err, jobId }, 'auto-execution failed'),
          );
      }
    } else if (task.state === 'dead' || task.state === 'cancelled') {
      await this.o.jobs.move(jobId, 'drafting', 'failed', {
        reason: `proposal task ${task.state}: ${task.lastError ?? ''}`,
      });
    }
  }

  /** The operator (or auto-execute) says go: the delivery is queued. */
  async approve(jobId: string, by: 'operator' | 'auto'): Promise<Job> {
    const job = await this.o.jobs.get(jobId);
    if (!job) throw new QbError('QB_ERR_NOT_FOUND', `no freelance job ${jobId}`);
    if (
      !(await this.o.jobs.move(jobId, 'awaiting-approval', 'approved', {
        decided: true,
        reason: `approved by ${by}`,
      }))
    ) {
      // Approving twice is harmless: the delivery is keyed by the job.
      if (job.status !== 'approved') {
        throw new QbError(
          'QB_ERR_JOB_STATE',
          `job ${jobId} is ${job.status}; only a job awaiting approval can be approved`,
        );
      }
    }
    try {
      await this.queueDelivery(jobId, by);
    } catch (err) {
      // Not committed (database unreachable): the approval is taken back, so the caller's 503 is
      // the whole answer and a retry approves again.
      if (isStoreUnavailable(err) && job.status === 'awaiting-approval')
        await this.o.jobs.move(jobId, 'approved', 'awaiting-approval', {
          reason: 'approval not committed: the queue database was unreachable',
        });
      throw err;
    }
    this.o.logger.info({ jobId, by }, 'freelance job approved; delivery queued');
    return (await this.o.jobs.get(jobId)) as Job;
  }

  async reject(jobId: string, reason: string | undefined): Promise<Job> {
    const job = await this.o.jobs.get(jobId);
    if (!job) throw new QbError('QB_ERR_NOT_FOUND', `no freelance job ${jobId}`);
    const why = reason ? `rejected: ${reason}` : 'rejected by operator';
    if (!(await this.o.jobs.move(jobId, 'awaiting-approval', 'rejected', { decided: true, reason: why }))) {
      throw new QbError(
        'QB_ERR_JOB_STATE',
        `job ${jobId} is ${job.status}; only a job awaiting approval can be rejected`,
      );
    }
    this.o.logger.info({ jobId }, 'freelance job rejected');
    return (await this.o.jobs.get(jobId)) as Job;
  }

  private async queueDelivery(jobId: string, approvedBy: 'operator' | 'auto'): Promise<void> {
    const payload: DeliveryPayload = { jobId, approvedBy };
    await this.o.queue.enqueue(this.o.deliveryQueue, payload, { idempotencyKey: deliveryKey(jobId) });
    this.o.wakeDelivery();
  }

  /**
   * Repairs what a crash between a state change and its enqueue left behind: drafts without a
   * settled task, approvals without a delivery. Idempotency keys make a repeat harmless.
   */
  async reconcile(): Promise<void> {
    // Nothing can be repaired while the queue's database is unreachable; the next round will.
    if (this.o.queue.connection().state !== 'connected') return;
    for (const job of await this.o.jobs.list(500, 'drafting')) {
      if (!job.proposalTaskId) {
        await this.requestProposal(job);
        continue;
      }
      const task = await this.o.queue.get<TaskPayload, TaskResult>(job.proposalTaskId);
      if (task) await this.onTaskSettled(task as AiTask);
    }
    for (const job of await this.o.jobs.list(500, 'approved')) {
      const by = job.reason === 'approved by auto' ? 'auto' : 'operator';
      await this.queueDelivery(job.id, by);
    }
    if (this.o.autoExecute) {
      for (const job of await this.o.jobs.list(500, 'awaiting-approval')) await this.approve(job.id, 'auto');
    }
  }
}

function proposalPrompt(job: Job): string {
  const budget = job.budget === null ? 'not stated' : `${job.budget} ${job.currency ?? ''}`.trim();
  return [
    'Draft a short, specific proposal (at most 200 words) for this freelance job.',
    'Say how the work would be done and what would be delivered; do not invent credentials.',
    '',
    `Title: ${job.title}`,
    `Budget: ${budget}`,
    job.tags.length ? `Tags: ${job.tags.join(', ')}` : '',
    job.url ? `URL: ${job.url}` : '',
    '',
    job.description ?? '(no description)',
  ]
    .filter((l, i, a) => l !== '' || a[i - 1] !== '')
    .join('\n');
}
