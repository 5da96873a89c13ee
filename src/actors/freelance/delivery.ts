/**
 * Delivers approved jobs: claims `freelance.deliver` items, posts the signed webhook and records
 * the outcome. A refusal or a network error is a failed attempt the queue retries with backoff;
 * past FREELANCE_WEBHOOK_MAX_ATTEMPTS the item and its job are dead. It pauses (items stay
 * queued) without FREELANCE_WEBHOOK_URL and while this hour's execution cap is reached.
 */

import type { Logger } from '../../logger.js';
import { isStoreUnavailable } from '../../queue/pg-connection.js';
import type { ClaimedItem, Queue } from '../../queue/types.js';
import { HOUR_MS, hourOf } from '../ai/usage.js';
import type { ExecutionCounter } from './executions.js';
import type { JobStore } from './jobs.js';
import type { DeliveryPayload } from './pipeline.js';
import { deliver, deliveryBody, webhookIdFor } from './webhook.js';

const POLL_MS = 1_000;
const CONCURRENCY = 2;
const DELIVERY_TIMEOUT_MS = 10_000;

export interface DeliveryOptions {
  queue: Queue;
  jobs: JobStore;
  /** Executions per hour against maxExecutionsPerHour (fleet-wide with PostgreSQL). */
  executions: ExecutionCounter;
  /** The queue to deliver from: deliveryQueue(peerId, shared). */
  queueName: string;
  webhookUrl: string | undefined;
  webhookSecret: string | undefined;
  maxAttempts: number;
  maxExecutionsPerHour: number;
  owner: string;
  logger: Logger;
  /** Define the delivery queue's settings (default true); a disabled feature leaves it alone. */
  defineQueue?: boolean;
  now?: () => number;
}

export class DeliveryWorker {
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private again = false;
  private readonly inFlight = new Map<string, AbortController>();
  private pauseReason: string | null = null;
  private readonly now: () => number;

  constructor(private readonly o: DeliveryOptions) {
    this.now = o.now ?? Date.now;
    if (o.defineQueue !== false) {
      o.queue.define(o.queueName, {
        maxAttempts: o.maxAttempts,
        leaseMs: DELIVERY_TIMEOUT_MS * 2,
        backoffBaseMs: 1_000,
        backoffMaxMs: 10 * 60_000,
      });
    }
  }

  get paused(): string | null {
    return this.pauseReason;
  }

  executionsThisHour(): number {
    return this.o.executions.current();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    for (const a of this.inFlight.values()) a.abort();
  }

  wake(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    this.pump()
      .catch((err) => {
        // The store's loss is logged once by the queue and shown as a pause; not once per poll.
        if (!isStoreUnavailable(err))
          this.o.logger.error({ err }, 'delivery worker could not claim; trying again');
      })
      .finally(() => {
        this.pumping = false;
        if (this.again) {
          this.again = false;
          this.wake();
        } else if (this.running) {
          clearTimeout(this.timer);
          this.timer = setTimeout(() => this.wake(), POLL_MS);
        }
      });
  }

  private setPause(reason: string | null): void {
    if (reason && reason !== this.pauseReason)
      this.o.logger.warn({ reason }, `freelance deliveries paused: ${reason}`);
    if (!reason && this.pauseReason) this.o.logger.info('freelance deliveries resumed');
    this.pauseReason = reason;
  }

  private async pump(): Promise<void> {
    if (this.o.queue.connection().state !== 'connected') {
      this.setPause('the queue database is unreachable; approved jobs wait in it and resume when it is back');
      return;
    }
    if (!this.o.webhookUrl || !this.o.webhookSecret) {
      this.setPause('no webhook configured (FREELANCE_WEBHOOK_URL); approved jobs stay queued');
      return;
    }
    const done = this.executionsThisHour();
    if (done >= this.o.maxExecutionsPerHour) {
      this.capReached();
      return;
    }
    this.setPause(null);
    const limit = Math.min(CONCURRENCY - this.inFlight.size, this.o.maxExecutionsPerHour - done);
    if (limit <= 0) return;
    const items = await this.o.queue.claim<DeliveryPayload>(this.o.queueName, {
      owner: this.o.owner,
      limit,
    });
    for (const item of items) {
      // A retry is the same execution; only a first attempt takes a unit of the cap, atomically
      // (another peer may have taken the last one). Without one the item goes back unspent.
      const allowed = item.attempts > 1 || (await this.takeExecution());
      if (allowed) void this.run(item);
      else await this.o.queue.release(item.claim).catch(() => undefined);
    }
  }

  private async takeExecution(): Promise<boolean> {
    if (await this.o.executions.take(this.o.maxExecutionsPerHour)) return true;
    this.capReached();
    return false;
  }

  private capReached(): void {
    const at = new Date((hourOf(this.now()) + 1) * HOUR_MS).toISOString();
    this.setPause(
      `execution cap reached: ${this.executionsThisHour()}/${this.o.maxExecutionsPerHour} this hour (FREELANCE_MAX_EXECUTIONS_PER_HOUR); resumes at ${at}`,
    );
  }

  private async run(item: ClaimedItem<DeliveryPayload>): Promise<void> {
    const abort = new AbortController();
    this.inFlight.set(item.id, abort);
    const { jobId, approvedBy } = item.payload;
    try {
      const job = await this.o.jobs.get(jobId);
      if (job?.status !== 'approved') {
        await this.o.queue.complete(item.claim, { skipped: `job is ${job?.status ?? 'gone'}` });
        return;
      }
      const id = webhookIdFor(jobId);
      const outcome = await deliver(
        this.o.webhookUrl as string,
        this.o.webhookSecret as string,
        id,
        deliveryBody(job, approvedBy, new Date(this.now())),
        { timeoutMs: DELIVERY_TIMEOUT_MS, signal: abort.signal },
      );
      if (abort.signal.aborted) {
        // Cut off from outside (kill switch, operator stop): the attempt is given back, not spent.
        await this.o.queue.release(item.claim);
        return;
      }
      if (outcome.ok) {
        // The job first, then the queue item: they are two commits (the job store, and the queue on
        // its own connection or in PostgreSQL). A death between them then leaves a running item
        // whose retry finds the job delivered and completes it as skipped; the other order left a
        // completed item and a job `approved` for ever (reconcile's enqueue returns the completed
        // item). Found by the chaos run (seed 8, --store postgres).
        await this.o.jobs.move(jobId, 'approved', 'delivered', { deliveryId: id });
        await this.o.queue.complete(item.claim, { webhookId: id, status: outcome.status });
        this.o.logger.info({ jobId, webhookId: id }, 'freelance job delivered');
        return;
      }
      const after = await this.o.queue.fail(item.claim, outcome.message);
      if (after.state === 'dead') {
        await this.o.jobs.move(jobId, 'approved', 'dead', {
          reason: `delivery dead after ${after.attempts} attempts: ${outcome.message}`,
        });
        this.o.logger.warn({ jobId, attempts: after.attempts }, 'freelance delivery dead');
      } else {
        this.o.logger.info(
          { jobId, attempts: after.attempts, error: outcome.message },
          'freelance delivery will be retried',
        );
      }
    } catch (err) {
      this.o.logger.warn({ err, jobId }, 'freelance delivery outcome not recorded');
    } finally {
      this.inFlight.delete(item.id);
      this.wake();
    }
  }
}
