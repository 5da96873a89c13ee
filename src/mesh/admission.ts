/**
 * Who may start a mesh handshake. Before a socket has authenticated it costs memory (buffers, a
 * timer, a parser) and proves nothing, so unauthenticated work is bounded: at most `maxPending`
 * handshakes at once, at most `maxPendingPerAddress` from one address, and an address whose
 * handshakes keep failing is refused for a while (a token bucket of failures). Pure: no sockets,
 * the clock is injected; transport.ts asks it before every upgrade.
 */

export interface AdmissionLimits {
  /** Handshakes under way at once, all addresses together. */
  maxPending: number;
  /** Handshakes under way at once from one address. */
  maxPendingPerAddress: number;
  /** Failed handshakes an address may have in a burst before it is refused. */
  failureBurst: number;
  /** Failures forgiven per minute, per address (the bucket's refill rate). */
  failuresPerMinute: number;
  /** Addresses remembered at once; the least recently seen idle one is forgotten first. */
  maxAddresses: number;
}

/**
 * Loopback clusters of 25 peers dial one acceptor from one address at once, so the per-address
 * limit leaves room for them; a misconfigured peer (wrong secret) fails once per backoff, far below
 * the failure rate allowed.
 */
export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = {
  maxPending: 128,
  maxPendingPerAddress: 32,
  failureBurst: 20,
  failuresPerMinute: 30,
  maxAddresses: 4096,
};

export type Refusal = 'busy' | 'busy-address' | 'failing-address';

interface AddressState {
  pending: number;
  /** Failure tokens left, refilled over time; at < 1 the address is refused. */
  tokens: number;
  updatedAt: number;
}

export class Admission {
  private pendingTotal = 0;
  private readonly addresses = new Map<string, AddressState>();
  constructor(
    private readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS,
    private readonly now: () => number = () => performance.now(),
    /** Upgrades refused, by reason; the caller may pass its own record to count into. */
    readonly refused: Record<Refusal, number> = newRefusalCounters(),
  ) {}

  get pending(): number {
    return this.pendingTotal;
  }

  /** Number of addresses remembered (bounded by maxAddresses). */
  get trackedAddresses(): number {
    return this.addresses.size;
  }

  /**
   * Reserves a handshake slot for `address`, or says why not. The returned ticket must be settled
   * exactly once (later calls are ignored): ok when the handshake authenticated, failed otherwise.
   */
  admit(address: string): { ticket: Ticket } | { refused: Refusal } {
    const state = this.touch(address);
    if (state.tokens < 1) return this.refuse('failing-address');
    if (this.pendingTotal >= this.limits.maxPending) return this.refuse('busy');
    if (state.pending >= this.limits.maxPendingPerAddress) return this.refuse('busy-address');
    state.pending++;
    this.pendingTotal++;
    let settled = false;
    return {
      ticket: {
        settle: (ok: boolean) => {
          if (settled) return;
          settled = true;
          const s = this.touch(address);
          s.pending = Math.max(0, s.pending - 1);
          this.pendingTotal--;
          if (!ok) s.tokens -= 1;
          this.forgetIfIdle(address, s);
        },
      },
    };
  }

  private refuse(why: Refusal): { refused: Refusal } {
    this.refused[why]++;
    return { refused: why };
  }

  /** The address's state with its failure tokens refilled to now; moved to most recently seen. */
  private touch(address: string): AddressState {
    const now = this.now();
    let state = this.addresses.get(address);
    if (state) {
      this.addresses.delete(address);
      const refill = ((now - state.updatedAt) / 60_000) * this.limits.failuresPerMinute;
      state.tokens = Math.min(this.limits.failureBurst, state.tokens + refill);
      state.updatedAt = now;
    } else {
      state = { pending: 0, tokens: this.limits.failureBurst, updatedAt: now };
      this.evict();
    }
    this.addresses.set(address, state);
    return state;
  }

  /** Keeps the table bounded: forgets the least recently seen address with nothing pending. */
  private evict(): void {
    if (this.addresses.size < this.limits.maxAddresses) return;
    for (const [address, state] of this.addresses) {
      if (state.pending === 0) {
        this.addresses.delete(address);
        return;
      }
    }
  }

  private forgetIfIdle(address: string, state: AddressState): void {
    if (state.pending === 0 && state.tokens >= this.limits.failureBurst) this.addresses.delete(address);
  }
}

export function newRefusalCounters(): Record<Refusal, number> {
  return { busy: 0, 'busy-address': 0, 'failing-address': 0 };
}

export interface Ticket {
  settle(ok: boolean): void;
}
