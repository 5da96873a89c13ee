/**
 * One trader per account with a shared PostgreSQL (DATABASE_URL): the right to trade an account is
 * a row of `trading_lease` holding the holder (peer id + boot id), a fencing token that grows with
 * every acquisition, and an expiry computed by the DATABASE's clock (`now() + lease`), so the
 * peers' clocks never enter the decision.
 *
 * - acquire, renew and release are each one atomic statement (with their lease-log row in a CTE);
 *   acquire succeeds only on a free, expired or already-own row, and always bumps the token;
 * - the holder renews every third of the lease;
 * - it may place orders only while `monotonic now < local deadline`, where the deadline is the
 *   monotonic time the last successful renewal was SENT plus the lease minus a safety margin. The
 *   row cannot expire before `send time + lease` (the database stamps it after receiving the
 *   request), so a slow renewal, a partition or a paused process stops placement before the row
 *   can expire and another peer can take it. Only the rate of the two clocks matters, not their
 *   offset; the margin (a quarter of the lease) covers rate drift and the time an order takes to
 *   leave after the check;
 * - a renewal that fails or finds the row taken stops trading at once;
 * - every ledger write is fenced: the store checks, in the transaction that writes, that the row
 *   still holds its token and has not expired (store-pg.ts), so a paused-then-resumed old holder
 *   cannot write even if its process never noticed.
 */
import type { Logger } from '../../logger.js';
import type { GuardVerdict } from './account-guard.js';
import { acquireLease, type Exec, type Fence, logLeaseLost, releaseLease, renewLease } from './lease-sql.js';

export { acquireLease, type Fence, releaseLease, renewLease } from './lease-sql.js';

export interface AccountLeaseOptions {
  db: Exec;
  account: string;
  peerId: string;
  bootId: string;
  /** Lease length, ms (TRADING_LEASE). */
  leaseMs: number;
  logger: Logger;
  /** Monotonic ms; default performance.now. Never the wall clock: a clock step must not extend a lease. */
  monotonic?: () => number;
}

/** What /status shows of the lease. */
export interface LeaseView {
  backend: 'postgres';
  held: boolean;
  token: number | null;
  /** The holder when it is not this peer: who trades the account, and since when (ISO). */
  standby: { holder: string; since: string } | null;
  /** ms this peer may still place orders (0 when it may not). */
  placeForMs: number;
  lastError: string | null;
}

/** The renewal loop and the verdict the engine asks before every order. */
export class AccountLease {
  private readonly monotonic: () => number;
  private fence: Fence | null = null;
  /** Monotonic ms before which orders may be placed (the renewal's send time + lease - margin). */
  private deadline = 0;
  private holder: { peerId: string; since: number } | null = null;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private busy = false;
  private again = false;
  private loop: Promise<void> = Promise.resolve();
  readonly marginMs: number;

  constructor(private readonly o: AccountLeaseOptions) {
    this.monotonic = o.monotonic ?? (() => performance.now());
    this.marginMs = Math.floor(o.leaseMs / 4);
  }

  /** Starts acquiring (and then renewing) in the background. Safe to call twice. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops the loop and releases the lease, so another peer takes over without waiting. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.loop;
    const fence = this.fence;
    this.drop();
    if (fence) {
      await releaseLease(this.o.db, this.o.account, fence).then(
        (released) => released && this.o.logger.info({ leaseToken: fence.token }, 'account lease released'),
        (err) => this.o.logger.warn({ err }, 'releasing the account lease failed; it expires by itself'),
      );
    }
  }

  /** The fence ledger writes go under while the lease is held. */
  currentFence(): Fence | null {
    return this.fence;
  }

  /**
   * A ledger write was refused (or failed): stop trading at once; the loop acquires again, which
   * gives a new token, and the engine reloads the ledger before it trades again.
   */
  lost(reason: string): void {
    const fence = this.fence;
    if (!fence) return;
    this.o.logger.error({ leaseToken: fence.token, reason }, 'account lease lost: trading stops at once');
    this.drop();
    this.lastError = reason;
    void logLeaseLost(this.o.db, this.o.account, fence, reason).catch(() => undefined);
    if (this.running) this.schedule(0);
  }

  verdict(): GuardVerdict {
    const fence = this.fence;
    if (fence && this.monotonic() < this.deadline) {
      return { mayTrade: true, holder: null, contenders: [], token: fence.token };
    }
    const h = this.holder;
    return {
      mayTrade: false,
      holder: h ? { peerId: h.peerId, account: this.o.account, since: h.since } : null,
      contenders: [],
      reason: h
        ? `account ${this.o.account} is leased to peer ${h.peerId} (since ${new Date(h.since).toISOString()}): this peer stands by`
        : fence
          ? `the account lease could not be renewed in time (${this.lastError ?? 'no answer'}): no order until it is`
          : `waiting for the account lease of ${this.o.account}${this.lastError ? `: ${this.lastError}` : ''}`,
    };
  }

  view(): LeaseView {
    const v = this.verdict();
    return {
      backend: 'postgres',
      held: v.mayTrade,
      token: this.fence?.token ?? null,
      standby: this.holder
        ? { holder: this.holder.peerId, since: new Date(this.holder.since).toISOString() }
        : null,
      placeForMs: v.mayTrade ? Math.max(0, Math.round(this.deadline - this.monotonic())) : 0,
      lastError: this.lastError,
    };
  }

  private drop(): void {
    this.fence = null;
    this.deadline = 0;
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      // One statement at a time: a step asked for while one runs follows it at once.
      if (this.busy) {
        this.again = true;
        return;
      }
      this.busy = true;
      this.loop = this.step()
        .catch(() => Math.floor(this.o.leaseMs / 3))
        .then((next) => {
          this.busy = false;
          const again = this.again;
          this.again = false;
          this.schedule(again ? 0 : next);
        });
    }, delayMs);
  }

  /** One acquire or renew; returns the delay before the next. */
  private async step(): Promise<number> {
    const { db, account, leaseMs, logger } = this.o;
    const third = Math.floor(leaseMs / 3);
    // Measured BEFORE the request leaves: the row's expiry is at least this + lease.
    const sentAt = this.monotonic();
    const fence = this.fence;
    try {
      if (fence) {
        if (await renewLease(db, account, fence, leaseMs)) {
          if (this.fence === fence) this.deadline = sentAt + leaseMs - this.marginMs;
          this.lastError = null;
          return third;
        }
        this.lost('the lease expired or another peer holds it');
        return 0;
      }
      const r = await acquireLease(db, account, { peerId: this.o.peerId, bootId: this.o.bootId }, leaseMs);
      if (!this.running) {
        if (r.acquired)
          await releaseLease(db, account, { token: r.token, peerId: this.o.peerId, bootId: this.o.bootId });
        return third;
      }
      if (r.acquired) {
        this.fence = { token: r.token, peerId: this.o.peerId, bootId: this.o.bootId };
        this.deadline = sentAt + leaseMs - this.marginMs;
        this.holder = null;
        this.lastError = null;
        logger.warn({ leaseToken: r.token, account }, 'account lease acquired: this peer trades the account');
        return third;
      }
      if (this.holder?.peerId !== r.holder.peerId)
        logger.warn(
          { holder: r.holder.peerId, leaseToken: r.holder.token, account },
          'ONE TRADER PER ACCOUNT: another peer holds the account lease; this peer stands by',
        );
      this.holder = { peerId: r.holder.peerId, since: r.holder.since };
      // Try again just after the holder's row would expire (by the database's clock), or sooner.
      return Math.min(third, r.remainingMs + 20);
    } catch (err) {
      this.lastError = err instanceof Error ? err.message : String(err);
      if (fence) {
        // Stop at once: the deadline would stop us anyway, but a failed renewal is news now.
        this.lost(`renewal failed: ${this.lastError}`);
        return Math.min(third, 500);
      }
      return third;
    }
  }
}
