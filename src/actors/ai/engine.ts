/**
 * The AI worker: claims due tasks from the store up to AI_CONCURRENCY, calls the provider through
 * a circuit breaker (cockatiel), and records the outcome on the task. It pauses, keeping tasks
 * queued, while no provider is configured, while a spending cap holds (until the next clock hour)
 * and while the breaker is open (until its half-open probe). stop() aborts the calls in flight and
 * hands their tasks back to the queue: the kill switch loses nothing.
 */
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  type CircuitBreakerPolicy,
  circuitBreaker,
  handleWhen,
} from 'cockatiel';
import type { AiConfig } from '../../config.js';
import type { Logger } from '../../logger.js';
import { checkSpend } from './guard.js';
import { judge, type Provider } from './provider.js';
import type { Lease, Task, TaskStore } from './store.js';

/** Cap of the retry delay when the provider names none, ms. */
const MAX_RETRY_DELAY_MS = 5 * 60_000;
/** Extra lease time beyond the call timeout, ms: a claim outlives its call, never the reverse. */
const LEASE_MARGIN_MS = 10_000;
/** Even with nothing due, look at the queue this often (another peer may share it), ms. */
const IDLE_POLL_MS = 5_000;

export type PauseKind = 'no-provider' | 'spend-cap' | 'breaker';

export interface Pause {
  kind: PauseKind;
  reason: string;
  /** ISO time the pause ends on its own; null: when configuration changes. */
  until: string | null;
}

export interface EngineOptions {
  store: TaskStore;
  config: AiConfig;
  /** Absent without AI_BASE_URL: tasks stay queued. */
  provider: Provider | undefined;
  defaultSystem: string;
  /** `peerId:bootId`, the prefix of every lease token. */
  owner: string;
  logger: Logger;
  now?: () => number;
  random?: () => number;
}

class ProviderFault extends Error {
  constructor(readonly original: unknown) {
    super('provider fault');
  }
}

export class AiEngine {
  private readonly breaker: CircuitBreakerPolicy;
  private breakerOpenedAt = 0;
  private readonly inFlight = new Map<string, { lease: Lease; abort: AbortController }>();
  private readonly listeners = new Set<(task: Task) => void>();
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private pumping = false;
  private pause: Pause | null = null;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(private readonly o: EngineOptions) {
    this.now = o.now ?? Date.now;
    this.random = o.random ?? Math.random;
    this.breaker = circuitBreaker(
      handleWhen((e) => e instanceof ProviderFault),
      { halfOpenAfter: o.config.breakerHalfOpenMs, breaker: new ConsecutiveBreaker(o.config.breakerFailures) },
    );
    this.breaker.onBreak(() => {
      this.breakerOpenedAt = this.now();
      o.logger.warn(
        { probeInMs: o.config.breakerHalfOpenMs },
        'AI circuit breaker open: the provider keeps failing; AI tasks paused',
      );
    });
    this.breaker.onReset(() => o.logger.info('AI circuit breaker closed: the provider answers again'));
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

  /** Called with each task that reached a final state or was requeued with an error. */
  onSettled(listener: (task: Task) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const released = this.o.store.releaseEarlierBoots(...splitOwner(this.o.owner));
    if (released > 0) this.o.logger.info({ released }, 'requeued AI tasks leased by an earlier run of this peer');
    this.wake();
  }

  /** Stops claiming, aborts the calls in flight and requeues their tasks without spending an attempt. */
  stop(): void {
    if (!this.running) return;
    this.running = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const { lease, abort } of this.inFlight.values()) {
      this.o.store.release(lease, this.now());
      abort.abort();
    }
    this.inFlight.clear();
  }

  /** Looks for work now (a task was submitted). */
  wake(): void {
    if (!this.running || this.pumping) return;
    this.pumping = true;
    try {
      this.pump();
    } finally {
      this.pumping = false;
    }
  }

  private pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = this.now();
    this.setPause(this.currentPause(now));
    if (this.pause) {
      const until = this.pause.until ? Date.parse(this.pause.until) : now + IDLE_POLL_MS;
      this.schedule(Math.max(until, now + 10) - now);
      return;
    }
    while (this.inFlight.size < this.o.config.concurrency) {
      // Each claim is one call: re-check the caps, which this call may be the one to reach.
      const spend = checkSpend(this.o.store.usage(now), this.o.config, now);
      if (!spend.allowed) {
        this.setPause({ kind: 'spend-cap', reason: spend.reason, until: new Date(spend.resumesAt).toISOString() });
        this.schedule(spend.resumesAt - now);
        return;
      }
      const lease = this.o.store.claim(this.o.owner, this.o.config.timeoutMs + LEASE_MARGIN_MS);
      if (!lease) break;
      this.o.store.addUsage(1, 0, now);
      this.run(lease);
    }
    const due = this.o.store.nextDueAt();
    const wait = due === undefined ? IDLE_POLL_MS : Math.min(IDLE_POLL_MS, Math.max(10, due - now));
    this.schedule(wait);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (!this.running) return;
    this.timer = setTimeout(() => this.wake(), Math.min(ms, 2 ** 31 - 1));
  }

  private currentPause(now: number): Pause | null {
    if (!this.o.provider) {
      return { kind: 'no-provider', reason: 'no provider configured (AI_BASE_URL is not set); tasks stay queued', until: null };
    }
    if (this.breaker.state === CircuitState.Open) {
      const probeAt = this.breakerOpenedAt + this.o.config.breakerHalfOpenMs;
      if (now < probeAt) {
        const last = this.breaker.lastFailure;
        const cause = last && 'error' in last ? judge((last.error as ProviderFault).original).message : 'failures';
        return {
          kind: 'breaker',
          reason: `circuit breaker open: the provider keeps failing (${cause}); probing again at ${new Date(probeAt).toISOString()}`,
          until: new Date(probeAt).toISOString(),
        };
      }
    }
    const spend = checkSpend(this.o.store.usage(now), this.o.config, now);
    if (!spend.allowed) return { kind: 'spend-cap', reason: spend.reason, until: new Date(spend.resumesAt).toISOString() };
    return null;
  }

  private setPause(pause: Pause | null): void {
    const before = this.pause;
    this.pause = pause;
    if (pause && (before?.kind !== pause.kind)) this.o.logger.warn({ pause }, `AI tasks paused: ${pause.reason}`);
    if (!pause && before) this.o.logger.info({ was: before.kind }, 'AI tasks resumed');
  }

  private run(lease: Lease): void {
    const abort = new AbortController();
    this.inFlight.set(lease.task.id, { lease, abort });
    const task = lease.task;
    const provider = this.o.provider as Provider;
    const call = this.breaker.execute(async () => {
      try {
        return await provider(
          {
            model: task.model ?? this.o.config.model ?? 'gpt-4o-mini',
            system: task.system ?? this.o.defaultSystem,
            prompt: task.prompt,
            maxTokens: task.maxTokens ?? undefined,
          },
          abort.signal,
        );
      } catch (err) {
        if (abort.signal.aborted) throw err;
        throw judge(err).providerFault ? new ProviderFault(err) : err;
      }
    });
    call.then(
      (answer) => this.settle(lease, abort, () => {
        const tokens = answer.usage?.totalTokens ?? 0;
        if (tokens > 0) this.o.store.addUsage(0, tokens);
        return this.o.store.complete(lease, answer.text, answer.usage);
      }),
      (err: unknown) => this.settle(lease, abort, () => this.recordFailure(lease, err)),
    );
  }

  private settle(lease: Lease, abort: AbortController, record: () => boolean): void {
    // Stopped (kill switch): stop() already handed the task back.
    if (abort.signal.aborted || !this.inFlight.has(lease.task.id)) return;
    this.inFlight.delete(lease.task.id);
    let kept = false;
    try {
      kept = record();
    } catch (err) {
      this.o.logger.error({ err, taskId: lease.task.id }, 'could not record an AI task outcome');
    }
    if (!kept) this.o.logger.warn({ taskId: lease.task.id }, 'AI task lease lost; its outcome is dropped');
    const task = this.o.store.get(lease.task.id);
    if (task) for (const l of this.listeners) safely(() => l(task), this.o.logger);
    this.wake();
  }

  private recordFailure(lease: Lease, err: unknown): boolean {
    const now = this.now();
    if (err instanceof BrokenCircuitError) {
      // Never reached the provider: no attempt spent; try once the breaker lets a probe through.
      return this.o.store.release(lease, this.breakerOpenedAt + this.o.config.breakerHalfOpenMs);
    }
    const verdict = judge(err instanceof ProviderFault ? err.original : err, now);
    const attempts = lease.task.attempts;
    if (!verdict.retry) {
      this.o.logger.warn({ taskId: lease.task.id, error: verdict.message }, 'AI task failed');
      return this.o.store.finish(lease, 'failed', verdict.message);
    }
    if (attempts >= this.o.config.maxAttempts) {
      this.o.logger.warn({ taskId: lease.task.id, attempts, error: verdict.message }, 'AI task dead after its last attempt');
      return this.o.store.finish(lease, 'dead', `gave up after ${attempts} attempts: ${verdict.message}`);
    }
    const backoff = Math.min(MAX_RETRY_DELAY_MS, this.o.config.retryBaseMs * 2 ** (attempts - 1));
    const delay = verdict.retryAfterMs ?? backoff / 2 + (this.random() * backoff) / 2;
    this.o.logger.info({ taskId: lease.task.id, attempts, delayMs: Math.round(delay), error: verdict.message }, 'AI task will be retried');
    return this.o.store.retryLater(lease, verdict.message, now + delay);
  }
}

function splitOwner(owner: string): [string, string] {
  const i = owner.lastIndexOf(':');
  return [owner.slice(0, i), owner.slice(i + 1)];
}

function safely(fn: () => void, logger: Logger): void {
  try {
    fn();
  } catch (err) {
    logger.error({ err }, 'AI task listener failed');
  }
}
