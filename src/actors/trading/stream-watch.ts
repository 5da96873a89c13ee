/**
 * One exchange stream kept open in the background, as ccxt pro's watch methods are meant to be used:
 * a loop awaits the next update, keeps the latest value with the time it arrived, and after a
 * failure (a dropped or refused connection) waits with backoff and subscribes again. A reader takes
 * the latest value while it is fresh and polls REST otherwise, so a dropped or silent stream never
 * stalls a trading tick. No ccxt import: the watch function is injected.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type BackoffPolicy, backoffDelay } from '../backoff.js';

export type StreamState = 'connecting' | 'streaming' | 'reconnecting' | 'closed';

export interface StreamWatchOptions<T> {
  /** Resolves with the next update (a ccxt watch call, its answer converted and copied). */
  next: () => Promise<T>;
  /** Delays between subscription attempts after failures. */
  retry: BackoffPolicy;
  now?: () => number;
  /** Called once per failure streak with the error that began it. */
  onFailure?: (err: unknown) => void;
}

export class StreamWatch<T> {
  private latest: { value: T; at: number } | undefined;
  private failures = 0;
  private lastError: string | null = null;
  private readonly abort = new AbortController();
  private readonly first = Promise.withResolvers<void>();
  private readonly now: () => number;

  constructor(private readonly o: StreamWatchOptions<T>) {
    this.now = o.now ?? Date.now;
    void this.loop();
  }

  private async loop(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        const value = await this.o.next();
        if (signal.aborted) return;
        this.latest = { value, at: this.now() };
        this.failures = 0;
        this.lastError = null;
        this.first.resolve();
      } catch (err) {
        if (signal.aborted) return;
        this.failures += 1;
        if (this.failures === 1) this.o.onFailure?.(err);
        this.lastError = err instanceof Error ? err.message : String(err);
        // The first failure also ends a reader's wait for the first value: it polls instead.
        this.first.resolve();
        await sleep(backoffDelay(this.failures, this.o.retry), undefined, { signal }).catch(() => {});
      }
    }
  }

  /** Resolves at the first update or the first failure, or after `timeoutMs`. */
  async settled(timeoutMs: number): Promise<void> {
    const timeout = new AbortController();
    await Promise.race([
      this.first.promise,
      sleep(timeoutMs, undefined, { signal: timeout.signal }).catch(() => {}),
    ]);
    timeout.abort();
  }

  /** The latest value if it arrived within `maxAgeMs` and the stream has not failed since. */
  fresh(maxAgeMs: number): T | undefined {
    if (!this.latest || this.failures > 0) return undefined;
    return this.now() - this.latest.at <= maxAgeMs ? this.latest.value : undefined;
  }

  get state(): StreamState {
    if (this.abort.signal.aborted) return 'closed';
    if (this.failures > 0) return 'reconnecting';
    return this.latest ? 'streaming' : 'connecting';
  }

  get error(): string | null {
    return this.lastError;
  }

  /** Whether an update arrived at all (a later failure does not change it). */
  get hasValue(): boolean {
    return this.latest !== undefined;
  }

  /** Ends the loop; the caller closes the connection (which rejects the pending watch). */
  stop(): void {
    this.abort.abort();
    this.first.resolve();
  }
}
