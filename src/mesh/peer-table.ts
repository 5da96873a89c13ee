/**
 * The membership table, pure: where peers may be (targets, by address), who they are (peers, by
 * peerId), their states and dial deadlines. No sockets and no timers: the mesh node feeds it events
 * with the time, and asks it what to dial. Time and randomness are injected, so a unit test can walk
 * it through any history.
 */
import type { DiscoverySource } from './discovery/types.js';
import type { Summary } from './protocol.js';

export type PeerState = 'connecting' | 'connected' | 'suspect' | 'down';

export interface Refusal {
  code: number;
  reason: string;
  /** Epoch ms. */
  at: number;
}

export interface Target {
  address: string;
  sources: Set<DiscoverySource | 'inbound'>;
  /** Learned from a handshake (or claimed by mDNS). */
  peerId: string | undefined;
  /** Dial attempts since the last success. */
  attempts: number;
  /** Epoch ms before which this target is not dialed. */
  nextDialAt: number;
  dialing: boolean;
  /** The address is ourselves: never dialed again. */
  self: boolean;
  refused: Refusal | undefined;
  lastError: string | undefined;
}

export interface PeerEntry {
  peerId: string;
  bootId: string;
  address: string;
  state: PeerState;
  /** Epoch ms of the last message of any kind. */
  lastSeen: number;
  rttMs: number | null;
  /** Dial attempts since the peer was last connected. */
  reconnectAttempts: number;
  status: Summary | null;
  /** Epoch ms when the current link came up, or the peer went down. */
  since: number;
}

export interface DialPolicy {
  /** The first retry waits between `floorMs` and `baseMs`. */
  floorMs: number;
  baseMs: number;
  capMs: number;
  /** A refused handshake (wrong secret, cluster, version) waits at least this. */
  refusedMs: number;
}

export const DEFAULT_DIAL_POLICY: DialPolicy = {
  floorMs: 100,
  baseMs: 250,
  capMs: 30_000,
  refusedMs: 30_000,
};

/** Full jitter with a floor: uniform in [floor, min(cap, base * 2^(n-1))]. */
export function dialDelay(attempt: number, policy: DialPolicy, random: () => number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
  return Math.round(policy.floorMs + random() * Math.max(0, ceiling - policy.floorMs));
}

export class PeerTable {
  readonly targets = new Map<string, Target>();
  readonly peers = new Map<string, PeerEntry>();
  /** Dial attempts ever made by this node. */
  totalReconnectAttempts = 0;

  constructor(
    private readonly policy: DialPolicy = DEFAULT_DIAL_POLICY,
    private readonly random: () => number = Math.random,
  ) {}

  /** A discovery sighting: a new target, or a fresh one whose backoff starts over. */
  sighted(address: string, source: DiscoverySource | 'inbound', now: number, peerId?: string): Target {
    let t = this.targets.get(address);
    if (!t) {
      t = {
        address,
        sources: new Set(),
        peerId,
        attempts: 0,
        nextDialAt: now,
        dialing: false,
        self: false,
        refused: undefined,
        lastError: undefined,
      };
      this.targets.set(address, t);
    } else if (source !== 'static' && source !== 'inbound' && !t.refused) {
      // A live announcement (mDNS answer, DNS record) is news: dial again soon.
      t.attempts = 0;
      t.nextDialAt = Math.min(t.nextDialAt, now);
    }
    t.sources.add(source);
    if (peerId && !t.peerId) t.peerId = peerId;
    return t;
  }

  /** Targets to dial now: not ourselves, not busy, due, and not already linked under their id. */
  due(now: number): Target[] {
    return [...this.targets.values()].filter((t) => {
      if (t.self || t.dialing || t.nextDialAt > now) return false;
      const peer = t.peerId ? this.peers.get(t.peerId) : undefined;
      return !peer || peer.state === 'down';
    });
  }

  /**
   * Epoch ms of the earliest dial deadline among targets `may` accepts (and that are not ourselves,
   * busy or linked), so the node sleeps until then instead of polling.
   */
  nextDeadline(may: (t: Target) => boolean = () => true): number | undefined {
    let next: number | undefined;
    for (const t of this.targets.values()) {
      if (t.self || t.dialing || !may(t)) continue;
      const peer = t.peerId ? this.peers.get(t.peerId) : undefined;
      if (peer && peer.state !== 'down') continue;
      if (next === undefined || t.nextDialAt < next) next = t.nextDialAt;
    }
    return next;
  }

  dialStarted(t: Target): void {
    t.dialing = true;
    t.attempts++;
    this.totalReconnectAttempts++;
    const peer = t.peerId ? this.peers.get(t.peerId) : undefined;
    if (peer && peer.state === 'down') peer.reconnectAttempts++;
  }

  /** A dial that ended without a link; schedules the next attempt. */
  dialFailed(t: Target, now: number, error: string, refusal?: { code: number; reason: string }): void {
    t.dialing = false;
    t.lastError = error;
    let delay = dialDelay(t.attempts, this.policy, this.random);
    if (refusal) {
      t.refused = { ...refusal, at: now };
      delay = Math.max(delay, this.policy.refusedMs);
    }
    t.nextDialAt = now + delay;
  }

  /** The address turned out to be ourselves. */
  dialedSelf(t: Target): void {
    t.dialing = false;
    t.self = true;
  }

  /** A handshake completed (either direction). */
  linked(peerId: string, bootId: string, address: string, now: number, t?: Target): PeerEntry {
    if (t) {
      t.dialing = false;
      t.attempts = 0;
      t.refused = undefined;
      t.lastError = undefined;
      t.peerId = peerId;
    }
    const existing = this.peers.get(peerId);
    const entry: PeerEntry = {
      peerId,
      bootId,
      address,
      state: 'connected',
      lastSeen: now,
      rttMs: existing?.bootId === bootId ? existing.rttMs : null,
      reconnectAttempts: 0,
      status: existing?.bootId === bootId ? existing.status : null,
      since: now,
    };
    this.peers.set(peerId, entry);
    return entry;
  }

  heard(peerId: string, now: number): void {
    const p = this.peers.get(peerId);
    if (p && p.state !== 'down') p.lastSeen = now;
  }

  setState(peerId: string, state: PeerState, now: number): boolean {
    const p = this.peers.get(peerId);
    if (!p || p.state === state) return false;
    p.state = state;
    if (state === 'down' || state === 'connected') p.since = now;
    return true;
  }

  /**
   * The current link of a peer ended. Its known addresses become due after a short backoff so a
   * restarted peer is found again quickly.
   */
  unlinked(peerId: string, now: number): void {
    this.setState(peerId, 'down', now);
    for (const t of this.targets.values()) {
      if (t.peerId === peerId && !t.dialing) {
        t.attempts = 0;
        t.nextDialAt = now + dialDelay(1, this.policy, this.random);
      }
    }
  }
}
