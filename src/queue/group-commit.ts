/**
 * Group commit for a synchronous SQLite connection. With synchronous=FULL every commit waits for
 * an fsync, so one transaction per operation caps the queue near 1,000 claim+complete/s. Instead,
 * operations requested in the same turn of the event loop are queued and run together in ONE
 * immediate transaction on the next `setImmediate`; each caller's promise settles only after that
 * commit (an enqueue is never acknowledged before it is durable).
 *
 * An operation that throws a QbError (lease lost, wrong state) must do so before writing anything;
 * its caller gets the error and the others still commit. Any other error aborts the whole batch and
 * every caller in it gets that error (nothing of the batch was committed).
 */

import type Database from 'better-sqlite3';
import { isQbError } from '../errors.js';
import type { Db } from '../store/db.js';

interface Outcome {
  ok: boolean;
  value: unknown;
}

interface Pending {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit {
  #pending: Pending[] = [];
  #scheduled: ReturnType<typeof setImmediate> | null = null;
  #idle: PromiseWithResolvers<void> | null = null;
  /** Largest batch so far (for tests and the benchmark). */
  maxBatch = 0;
  /** Built once: better-sqlite3 wraps the function anew on every db.transaction() call. */
  readonly #transaction: Database.Transaction<(batch: Pending[], outcomes: Outcome[]) => void>;

  constructor(
    db: Db,
    /** Upper bound on operations per transaction, so one commit never holds the lock for long. */
    private readonly maxOps = 2_000,
  ) {
    this.#transaction = db.transaction((batch: Pending[], outcomes: Outcome[]) => {
      for (const p of batch) {
        try {
          outcomes.push({ ok: true, value: p.op() });
        } catch (err) {
          if (!isQbError(err)) throw err;
          outcomes.push({ ok: false, value: err });
        }
      }
    });
  }

  run<T>(op: () => T): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    this.#pending.push({ op, resolve: resolve as (v: unknown) => void, reject });
    this.#scheduled ??= setImmediate(() => this.#flush());
    return promise;
  }

  /** Resolves when nothing is pending (used by close). */
  drained(): Promise<void> {
    if (this.#pending.length === 0) return Promise.resolve();
    this.#idle ??= Promise.withResolvers<void>();
    return this.#idle.promise;
  }

  #flush(): void {
    this.#scheduled = null;
    const batch = this.#pending.splice(0, this.maxOps);
    if (this.#pending.length > 0) this.#scheduled = setImmediate(() => this.#flush());
    this.maxBatch = Math.max(this.maxBatch, batch.length);
    const outcomes: Outcome[] = [];
    try {
      this.#transaction.immediate(batch, outcomes);
    } catch (err) {
      for (const p of batch) p.reject(err);
      this.#settleIdle();
      return;
    }
    batch.forEach((p, i) => {
      const outcome = outcomes[i] as Outcome;
      if (outcome.ok) p.resolve(outcome.value);
      else p.reject(outcome.value);
    });
    this.#settleIdle();
  }

  #settleIdle(): void {
    if (this.#pending.length === 0 && this.#idle) {
      this.#idle.resolve();
      this.#idle = null;
    }
  }
}
