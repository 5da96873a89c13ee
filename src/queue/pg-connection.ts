/**
 * The PostgreSQL backend's view of its server: `connected`, or `reconnecting` after a connection
 * error (at start or mid-run). While reconnecting, the queue refuses every call at once with
 * QB_ERR_STORE_UNAVAILABLE instead of waiting on a dead server, so workers stop claiming and an
 * HTTP POST answers 503 without anything half-accepted; a probe (connect, then the pending
 * migrations) runs on an exponential backoff with jitter (cockatiel's decorrelated jitter) until it
 * succeeds. The loss is logged once as a warning, the recovery once as info; failed probes, and a
 * link that flaps (lost again within a minute), only at debug level, so an outage does not flood
 * the log.
 */
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import { QbError } from '../errors.js';
import type { Clock, StoreConnection } from './types.js';

/** What the connection logs through (the peer's pino child; absent in unit tests). */
export interface ConnectionLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

/** SQLSTATE classes and socket errors that mean "the server is not there", not "the query is wrong". */
const CONNECTION_SQLSTATE = /^(08|57P0[1-3]|53300)/;
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ECONNABORTED',
]);
/** node-postgres reports a lost socket and a connect timeout with plain Errors (no code). */
const CONNECTION_MESSAGES =
  /Connection terminated|connection timeout|Client has encountered a connection error|Client was closed/i;

/** Is this error the server (or the network to it) going away, rather than a bad statement? */
export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || CONNECTION_SQLSTATE.test(e.code)))
    return true;
  // Node reports a refused dual-stack connect as an AggregateError of one error per address.
  if (Array.isArray(e.errors) && e.errors.length > 0 && e.errors.every(isConnectionError)) return true;
  return typeof e.message === 'string' && CONNECTION_MESSAGES.test(e.message);
}

export function storeUnavailable(cause?: unknown): QbError {
  return new QbError(
    'QB_ERR_STORE_UNAVAILABLE',
    'the queue database (PostgreSQL) is unreachable; nothing was committed: retry later, with the same idempotency key',
    cause === undefined ? undefined : { cause },
  );
}

export function isStoreUnavailable(err: unknown): boolean {
  return err instanceof QbError && err.code === 'QB_ERR_STORE_UNAVAILABLE';
}

/** Losses this soon after a logged one are logged at debug level only, ms. */
const FLAP_WINDOW_MS = 60_000;

export interface PgConnectionOptions {
  /** Connects and applies what is pending; resolves when the store is usable. */
  probe: () => Promise<void>;
  clock: Clock;
  log?: ConnectionLog | undefined;
  /** First reconnect delay, ms. Default 250. */
  initialDelayMs?: number;
  /** Longest reconnect delay, ms. Default 10000. */
  maxDelayMs?: number;
}

export class PgConnection {
  #state: StoreConnection['state'] = 'connected';
  #since: number;
  #lastError: string | null = null;
  #backoff: IBackoff<unknown> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #probing = false;
  #closed = false;
  readonly #waiters = new Set<(up: boolean) => void>();
  /** When the last loss was logged as a warning; losses within FLAP_WINDOW_MS of it go to debug. */
  #warnedAt = Number.NEGATIVE_INFINITY;
  #quiet = false;
  #flaps = 0;
  readonly #factory: ExponentialBackoff<unknown>;

  constructor(private readonly o: PgConnectionOptions) {
    this.#since = o.clock.now();
    this.#factory = new ExponentialBackoff({
      initialDelay: o.initialDelayMs ?? 250,
      maxDelay: o.maxDelayMs ?? 10_000,
    });
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  view(): StoreConnection {
    return { kind: 'postgres', state: this.#state, since: this.#since, lastError: this.#lastError };
  }

  /** The error a failed call should throw: a connection error also starts the reconnect loop. */
  translate(err: unknown): unknown {
    if (!isConnectionError(err)) return err;
    this.lost(err);
    return storeUnavailable(err);
  }

  /** The server went away (or was never there): refuse calls and start probing. */
  lost(err: unknown, atStart = false): void {
    if (this.#closed) return;
    this.#lastError = err instanceof Error ? err.message : String(err);
    if (this.#state === 'reconnecting') return;
    this.#state = 'reconnecting';
    this.#since = this.o.clock.now();
    // A flapping link (lost again soon after each recovery) is logged once per window, not per flap.
    this.#quiet = this.#since - this.#warnedAt < FLAP_WINDOW_MS;
    if (this.#quiet) {
      this.#flaps++;
      this.o.log?.debug({ err: this.#lastError }, 'PostgreSQL connection lost again');
    } else {
      this.#warnedAt = this.#since;
      this.o.log?.warn(
        { err: this.#lastError, ...(this.#flaps > 0 ? { flapsSinceLastWarning: this.#flaps } : {}) },
        atStart
          ? 'PostgreSQL unreachable at start: serving without it, queue work paused, reconnecting with backoff'
          : 'PostgreSQL connection lost: queue work paused, reconnecting with backoff',
      );
      this.#flaps = 0;
    }
    this.#backoff = undefined;
    this.#schedule();
  }

  /** Resolves true once connected, false after `ms` or on close. */
  whenConnected(ms: number): Promise<boolean> {
    if (this.#state === 'connected') return Promise.resolve(true);
    if (this.#closed || ms <= 0) return Promise.resolve(false);
    const { promise, resolve } = Promise.withResolvers<boolean>();
    const done = (up: boolean) => {
      clearTimeout(timer);
      this.#waiters.delete(done);
      resolve(up);
    };
    const timer = setTimeout(() => done(false), ms);
    this.#waiters.add(done);
    return promise;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const w of [...this.#waiters]) w(false);
  }

  #schedule(): void {
    if (this.#closed) return;
    this.#backoff = this.#backoff ? this.#backoff.next(undefined) : this.#factory.next();
    this.#timer = setTimeout(() => void this.#probe(), this.#backoff.duration);
  }

  async #probe(): Promise<void> {
    if (this.#probing || this.#closed) return;
    this.#probing = true;
    try {
      await this.o.probe();
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      this.o.log?.debug({ err: this.#lastError }, 'PostgreSQL still unreachable');
      this.#probing = false;
      this.#schedule();
      return;
    }
    this.#probing = false;
    if (this.#closed) return;
    const downMs = this.o.clock.now() - this.#since;
    this.#state = 'connected';
    this.#since = this.o.clock.now();
    if (this.#quiet) this.o.log?.debug({ downMs }, 'PostgreSQL reachable again');
    else
      this.o.log?.info(
        { downMs, lastError: this.#lastError },
        'PostgreSQL reachable again: queue work resumes',
      );
    for (const w of [...this.#waiters]) w(true);
  }
}
