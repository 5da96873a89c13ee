/**
 * The AI worker: claims due tasks from the `ai` queue up to AI_CONCURRENCY, calls the provider
 * through a circuit breaker (cockatiel) and records the outcome on the item: completed with the
 * answer and usage; retried later on 429/5xx/timeouts/bad bodies (after Retry-After when the
 * provider names one); dead at once on any other 4xx, with the provider's message.
 *
 * It pauses, claiming nothing so every task stays queued, while no provider is configured, while a
 * spending cap holds (until the next clock hour), while the breaker is open (until its probe) and
 * while the queue's database is unreachable (until it is back).
 * stop() (kill switch, operator) aborts the calls in flight; their tasks go back to the queue
 * without spending an attempt (Queue.release).
 */
import {
  BrokenCircuitError,
  type CircuitBreakerPolicy,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import type { AiConfig } from '../../config.js';
import { describeError } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { isStoreUnavailable } from '../../queue/pg-connection.js';
import type { ClaimedItem, Lease, Queue } from '../../queue/types.js';
import { checkSpend } from './guard.js';
import { judge, type Provider } from './provider.js';
import { AI_QUEUE, type AiTask, type TaskPayload, type TaskResult } from './tasks.js';
import type { SpendLedger } from './usage.js';

/** Look at the queue at least this often (a retry came due, another peer shares it), ms. */
const POLL_MS = 1_000;

export type PauseKind = 'no-provider' | 'spend-cap' | 'breaker' | 'store';

export interface Pause {
  kind: PauseKind;
  reason: string;
  /** ISO time the pause ends on its own; null: no known end (a configuration change, the database back). */
  until: string | null;
}

export interface EngineOptions {
  queue: Queue;
  usage: SpendLedger;
  config: AiConfig;
  /** Absent without AI_BASE_URL: tasks stay queued. */
  provider: Provider | undefined;
  /** The system prompt of a task that brings none (read at each call: it is known after start-up). */
  defaultSystem: () => string;
  /** Lease owner: the peer id. */
  owner: string;
  logger: Logger;
  now?: () => number;
  /** Define the `ai` queue's settings (default true); a disabled feature leaves the queue alone. */
  defineQueue?: boolean;
}

/** Lease of one claim: the call's timeout and room to record its outcome. */
export function leaseMsFor(timeoutMs: number): number {
  return Math.ceil(timeoutMs * 1.5) + 1_000;
}

/** Marks an error the breaker counts: the provider itself is unwell. */
class ProviderFault extends Error {
  constructor(readonly original: unknown) {
    super('provider fault');
  }
}

interface InFlight {
  lease: Lease;
  abort: AbortController;
}

export class AiEngine {
  private readonly breaker: CircuitBreakerPolicy;
  private breakerOpenedAt = 0;
  private lastFault = '';
  private readonly inFlight = new Map<string, InFlight>();
  private readonly listeners = new Set<(task: AiTask) => void>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  private pumping: Promise<void> | undefined;
  private again = false;
  private pause: Pause | null = null;
  private readonly now: () => number;

  constructor(private readonly o: EngineOptions) {
    this.now = o.now ?? Date.now;
    if (o.defineQueue !== false) {
      o.queue.define(AI_QUEUE, {
        maxAttempts: o.config.maxAttempts,
        leaseMs: leaseMsFor(o.config.timeoutMs),
        backoffBaseMs: o.config.retryBaseMs,
      });
    }
    this.breaker = circuitBreaker(
      handleWhen((e) => e instanceof ProviderFault),
      {
        halfOpenAfter: o.config.breakerHalfOpenMs,
        breaker: new ConsecutiveBreaker(o.config.breakerFailures),
      },
    );
    this.breaker.onBreak(() => {
      this.breakerOpenedAt = this.now();
      o.logger.warn(
        { probeInMs: o.config.breakerHalfOpenMs, lastError: this.lastFault },
        'AI circuit breaker open: the provider keeps failing; AI tasks paused',
      );
    });
    this.breaker.onReset(() => {
      o.logger.info('AI circuit breaker closed: the provider answers again');
      this.wake();
    });
  }

  get breakerState(): 'closed' | 'open' | 'half-open' | 'isolated' {
    return (['closed', 'open', 'half-open', 'isolated'] as const)[this.breaker.state] ?? 'closed';
  }

  get paused(): Pause | null {
    return this.pause;
  }

  get isRunning(): boolean {
    return this.running;
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Told about every task this engine finished or put back for a retry (freelance waits on it). */
  onSettled(listener: (task: AiTask) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.wake();
  }

  /** Stops claiming and aborts the calls in flight; their tasks return to the queue for a retry. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
    for (const { abort } of this.inFlight.values()) abort.abort();
  }

  /** Looks for work now (a task was submitted, a pause may have ended). */
  wake(): void {
    if (!this.running) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump()
      .catch((err) => {
        // The store's loss is logged once by the queue and shown as a pause; not once per poll.
        if (isStoreUnavailable(err)) this.o.logger.debug('AI worker: queue database unreachable');
        else this.o.logger.error({ err }, 'AI worker could not claim tasks; trying again');
      })
      .finally(() => {
        this.pumping = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        } else this.schedule(POLL_MS);
      });
  }

  private async pump(): Promise<void> {
    clearTimeout(this.timer);
    const now = this.now();
    this.setPause(this.currentPause(now));
    if (this.pause) return;
    const free = this.o.config.concurrency - this.inFlight.size;
    // Claim no more than the request cap still allows: each claim is one call.
    const room = this.o.config.maxRequestsPerHour - this.o.usage.current().requests;
    // Past an open breaker's wait only the probe goes out: more would wait on its verdict, and be
    // refused (spending an attempt) if the probe fails.
    const probing = this.breaker.state !== CircuitState.Closed;
    const limit = Math.min(free, room, probing ? 1 - this.inFlight.size : free);
    if (limit <= 0) return;
    const items = await this.o.queue.claim<TaskPayload>(AI_QUEUE, {
      owner: this.o.owner,
      limit,
      leaseMs: leaseMsFor(this.o.config.timeoutMs),
    });
    if (items.length === 0) return;
    // One unit of the hourly request cap per call, taken atomically (fleet-wide with PostgreSQL:
    // another peer may have used the room the snapshot above showed).
    let granted = 0;
    try {
      granted = this.running
        ? await this.o.usage.reserveRequests(items.length, this.o.config.maxRequestsPerHour)
        : 0;
    } finally {
      items.forEach((item, i) => {
        if (i < granted && this.running) this.run(item);
        // Stopped while claiming, or no unit left: hand it straight back, without spending an attempt.
        else void this.settle(item.claim, () => this.o.queue.release(item.claim));
      });
    }
    const unused = items.filter((item, i) => i < granted && !this.inFlight.has(item.id)).length;
    if (unused > 0) await this.o.usage.refundRequests(unused);
    if (granted < items.length) this.setPause(this.currentPause(this.now()));
  }

  /** Arms an extra wake-up at `at` (epoch ms), beside the regular poll. */
  private wakeAt(at: number): void {
    if (!this.running) return;
    const timer = setTimeout(
      () => {
        this.retryTimers.delete(timer);
        this.wake();
      },
      Math.max(0, at - this.now()) + 5,
    );
    this.retryTimers.add(timer);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (!this.running) return;
    const until = this.pause?.until ? Date.parse(this.pause.until) - this.now() : ms;
    this.timer = setTimeout(() => this.wake(), Math.max(10, Math.min(until, ms * 60, 2 ** 31 - 1)));
  }

  private currentPause(now: number): Pause | null {
    if (!this.o.provider) {
      return {
        kind: 'no-provider',
        reason: 'no provider configured (AI_BASE_URL is not set); tasks stay queued',
        until: null,
      };
    }
    const store = this.o.queue.connection();
    if (store.state !== 'connected') {
      return {
        kind: 'store',
        reason: `the queue database is unreachable (${store.kind} ${store.state}); tasks wait in it and resume when it is back`,
        until: null,
      };
    }
    if (this.breaker.state === CircuitState.Open) {
      const probeAt = this.breakerOpenedAt + this.o.config.breakerHalfOpenMs;
      if (now < probeAt) {
        return {
          kind: 'breaker',
          reason: `circuit breaker open: the provider keeps failing (${this.lastFault}); next probe at ${new Date(probeAt).toISOString()}`,
          until: new Date(probeAt).toISOString(),
        };
      }
    }
    const spend = checkSpend(this.o.usage.current(), this.o.config, now);
    if (!spend.allowed) {
      return { kind: 'spend-cap', reason: spend.reason, until: new Date(spend.resumesAt).toISOString() };
    }
    return null;
  }

  private setPause(pause: Pause | null): void {
    const before = this.pause;
    this.pause = pause;
    if (pause && before?.kind !== pause.kind)
      this.o.logger.warn({ pause }, `AI tasks paused: ${pause.reason}`);
    if (!pause && before) this.o.logger.info({ was: before.kind }, 'AI tasks resumed');
  }

  private run(item: ClaimedItem<TaskPayload>): void {
    const abort = new AbortController();
    const lease = item.claim;
    this.inFlight.set(item.id, { lease, abort });
    const provider = this.o.provider as Provider;
    const model = item.payload.model ?? this.o.config.model ?? 'gpt-4o-mini';
    const call = this.breaker.execute(async () => {
      try {
        return await provider(
          {
            model,
            system: item.payload.system ?? this.o.defaultSystem(),
            prompt: item.payload.prompt,
            maxTokens: item.payload.maxTokens,
          },
          abort.signal,
        );
      } catch (err) {
        if (abort.signal.aborted) throw err;
        const verdict = judge(err);
        if (!verdict.providerFault) throw err;
        this.lastFault = verdict.message;
        throw new ProviderFault(err);
      }
    });
    call.then(
      (answer) =>
        this.settle(lease, async () => {
          // The outcome counts more than the accounting: a ledger that cannot be written (the
          // database is unreachable) does not hold the completion back.
          if (answer.usage)
            await this.o.usage
              .addTokens(answer.usage.totalTokens)
              .catch((err) =>
                this.o.logger.warn({ err: describeError(err).message }, 'AI token usage not recorded'),
              );
          const result: TaskResult = { text: answer.text, usage: answer.usage ?? null, model };
          return this.o.queue.complete(lease, result);
        }),
      (err: unknown) => this.settle(lease, () => this.recordFailure(lease, err, abort.signal.aborted)),
    );
  }

  private async settle(lease: Lease, record: () => Promise<unknown>): Promise<void> {
    try {
      const item = (await record()) as { state?: string; runAt?: number } | undefined;
      // A retry due before the next poll: look again exactly then.
      if (item?.state === 'failed' && typeof item.runAt === 'number') this.wakeAt(item.runAt);
    } catch (err) {
      const { code, message } = describeError(err);
      if (code === 'QB_ERR_QUEUE_LEASE_LOST') {
        this.o.logger.warn({ taskId: lease.id }, 'AI task lease lost; this outcome is dropped');
      } else if (code === 'QB_ERR_STORE_UNAVAILABLE') {
        this.o.logger.warn(
          { taskId: lease.id },
          'AI task outcome not recorded: the queue database stayed unreachable; the task runs again when its lease runs out',
        );
      } else if (code !== 'QB_ERR_QUEUE_CLOSED') {
        this.o.logger.error({ taskId: lease.id, err: message }, 'could not record an AI task outcome');
      }
    } finally {
      this.inFlight.delete(lease.id);
    }
    if (this.listeners.size > 0) {
      const task = (await this.o.queue
        .get<TaskPayload, TaskResult>(lease.id)
        .catch(() => null)) as AiTask | null;
      if (task) {
        for (const l of this.listeners) {
          try {
            l(task);
          } catch (err) {
            this.o.logger.error({ err }, 'AI task listener failed');
          }
        }
      }
    }
    this.wake();
  }

  private recordFailure(lease: Lease, err: unknown, aborted: boolean): Promise<unknown> {
    if (aborted) {
      // Cut off from outside (kill switch, operator stop): the task did not fail, so the attempt
      // is given back rather than spent.
      return this.o.queue.release(lease);
    }
    if (err instanceof BrokenCircuitError) {
      const probeIn = Math.max(0, this.breakerOpenedAt + this.o.config.breakerHalfOpenMs - this.now());
      return this.o.queue.fail(lease, `circuit breaker open: ${this.lastFault}`, { retryInMs: probeIn });
    }
    const verdict = judge(err instanceof ProviderFault ? err.original : err, this.now());
    if (!verdict.retry) {
      this.o.logger.warn(
        { taskId: lease.id, error: verdict.message },
        'AI task failed: the provider refused it',
      );
      return this.o.queue.fail(lease, verdict.message, { permanent: true });
    }
    this.o.logger.info(
      { taskId: lease.id, error: verdict.message },
      'AI task attempt failed; it will be retried',
    );
    return this.o.queue.fail(
      lease,
      verdict.message,
      verdict.retryAfterMs === undefined ? {} : { retryInMs: verdict.retryAfterMs },
    );
  }
}
