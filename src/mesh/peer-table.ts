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
  /** Monotonic ms (see clock.ts). */
  at: number;
}

export interface Target {
  address: string;
  sources: Set<DiscoverySource | 'inbound'>;
  /** Learned from a handshake (or claimed by mDNS). */
  peerId: string | undefined;
  /** Dial attempts since the last success. */
  attempts: number;
  /** Monotonic ms (see clock.ts) before which this target is not dialed. */
  nextDialAt: number;
  dialing: boolean;
  /** The address is ourselves: never dialed again. */
  self: boolean;
  refused: Refusal | undefined;
  lastError: string | undefined;
  /** When discovery (or an inbound link) last named this address. */
  lastSightedAt: number;
}

/** Two live processes announced this peer id (see boot-history.ts). */
export interface DuplicateId {
  /** The boot holding the link, then the one refused. */
  bootIds: string[];
  /** Links refused for it so far. */
  refusals: number;
  /** Monotonic ms (see clock.ts) of the last refusal. */
  lastAt: number;
}

export interface PeerEntry {
  peerId: string;
  bootId: string;
  address: string;
  state: PeerState;
  /** Monotonic ms (see clock.ts) of the last message of any kind. */
  lastSeen: number;
  rttMs: number | null;
  /** Dial attempts since the peer was last connected. */
  reconnectAttempts: number;
  status: Summary | null;
  /** Monotonic ms (see clock.ts) when the current link came up, or the peer went down. */
  since: number;
  /** Links in a row that ended within STABLE_LINK_MS: each one doubles the wait before the next dial. */
  flaps: number;
  /** Set when two live processes use this peer id; kept while the entry lives. */
  duplicate: DuplicateId | null;
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

/**
 * Bounds of the table. Targets come from unauthenticated discovery (one mDNS announcer can name any
 * number of addresses), so they are capped: past the cap the longest-unseen target that is neither
 * static, nor being dialed, nor linked makes room, or the new one is dropped. Peers are
 * authenticated, but a peer down for long still makes room for a new one.
 */
export const MAX_TARGETS = 1024;
export const MAX_PEERS = 512;
/** A sighting after this long without one is news again (3 mDNS re-queries, 6 DNS rounds). */
export const SIGHTING_GAP_MS = 30_000;
/** A link that ended sooner than this after coming up counts as a flap (no backoff reset). */
export const STABLE_LINK_MS = 10_000;

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

  /**
   * A discovery sighting: a new target, or a fresh one whose backoff starts over. Undefined when the
   * table is full of targets that cannot make room (a discovery sighting is then dropped).
   */
  sighted(address: string, source: 'static' | 'inbound', now: number, peerId?: string): Target;
  sighted(
    address: string,
    source: DiscoverySource | 'inbound',
    now: number,
    peerId?: string,
  ): Target | undefined;
  sighted(
    address: string,
    source: DiscoverySource | 'inbound',
    now: number,
    peerId?: string,
  ): Target | undefined {
    let t = this.targets.get(address);
    if (!t) {
      // Static entries (bounded by the config) and authenticated inbound links always get a slot.
      const trusted = source === 'static' || source === 'inbound';
      if (this.targets.size >= MAX_TARGETS && !this.evictTarget() && !trusted) return undefined;
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
        lastSightedAt: now,
      };
      this.targets.set(address, t);
    } else if (source !== 'static' && source !== 'inbound' && !t.refused) {
      // Only news resets the backoff: a source naming this address for the first time, or the
      // address coming back after discovery stopped naming it. DNS re-resolves every 5 s and mDNS
      // re-queries every 10 s; counting each repeat as fresh kept an address that answers and
      // refuses at the first retry step for ever, never reaching the 30 s cap.
      const news = !t.sources.has(source) || now - t.lastSightedAt > SIGHTING_GAP_MS;
      if (news) {
        t.attempts = 0;
        t.nextDialAt = Math.min(t.nextDialAt, now);
      }
    }
    t.sources.add(source);
    t.lastSightedAt = now;
    if (peerId && !t.peerId) t.peerId = peerId;
    return t;
  }

  /** Frees one target slot: the longest-unseen target that is not static, dialing or linked. */
  private evictTarget(): boolean {
    let victim: Target | undefined;
    for (const t of this.targets.values()) {
      if (t.sources.has('static') || t.dialing) continue;
      const peer = t.peerId ? this.peers.get(t.peerId) : undefined;
      if (peer && peer.state !== 'down') continue;
      if (!victim || t.lastSightedAt < victim.lastSightedAt) victim = t;
    }
    if (victim) this.targets.delete(victim.address);
    return victim !== undefined;
  }

  /** Past MAX_PEERS, forgets the peer down the longest. */
  private prunePeers(): void {
    while (this.peers.size > MAX_PEERS) {
      let victim: PeerEntry | undefined;
      for (const p of this.peers.values()) {
        if (p.state === 'down' && (!victim || p.since < victim.since)) victim = p;
      }
      if (!victim) return;
      this.peers.delete(victim.peerId);
    }
  }

  /**
   * Targets to dial now: not ourselves, not busy, due, and not already linked under their id. One
   * address per known peer id at a time: two dials to one peer (hostname and IP, IPv4 and IPv6)
   * would only make a duplicate link for the arbiter to close.
   */
  due(now: number): Target[] {
    const busy = new Set<string>();
    for (const t of this.targets.values()) if (t.dialing && t.peerId) busy.add(t.peerId);
    return [...this.targets.values()].filter((t) => {
      if (t.self || t.dialing || t.nextDialAt > now) return false;
      const peer = t.peerId ? this.peers.get(t.peerId) : undefined;
      if (peer && peer.state !== 'down') return false;
      if (t.peerId) {
        if (busy.has(t.peerId)) return false;
        busy.add(t.peerId);
      }
      return true;
    });
  }

  /**
   * Monotonic ms (see clock.ts) of the earliest dial deadline among targets `may` accepts (and that are not ourselves,
   * busy or linked), so the node sleeps until then instead of polling.
   */
  nextDeadline(may: (t: Target) => boolean = () => true): number | undefined {
    let next: number | undefined;
    const busy = new Set<string>();
    for (const t of this.targets.values()) if (t.dialing && t.peerId) busy.add(t.peerId);
    for (const t of this.targets.values()) {
      if (t.self || t.dialing || !may(t)) continue;
      if (t.peerId && busy.has(t.peerId)) continue;
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

  /** The node stopped: dials in flight will be ignored when they settle, so none is busy any more. */
  dialsAbandoned(): void {
    for (const t of this.targets.values()) t.dialing = false;
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
      flaps: existing?.flaps ?? 0,
      duplicate: existing?.duplicate ?? null,
    };
    this.peers.set(peerId, entry);
    this.prunePeers();
    return entry;
  }

  /**
   * The other side refused a link after its handshake (a PEER_ID conflict): every address of that
   * peer waits like a refused handshake.
   */
  refusedAfterLink(peerId: string, refusal: { code: number; reason: string }, now: number): void {
    for (const t of this.targets.values()) {
      if (t.peerId !== peerId) continue;
      t.refused = { ...refusal, at: now };
      t.nextDialAt = Math.max(t.nextDialAt, now + this.policy.refusedMs);
    }
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
   * restarted peer is found again quickly; a link that keeps ending soon after it came up (a flap)
   * backs off exponentially instead, so a flapping pair never relinks in a tight loop.
   */
  unlinked(peerId: string, now: number): void {
    const p = this.peers.get(peerId);
    let flaps = 0;
    if (p && p.state !== 'down') {
      p.flaps = now - p.since < STABLE_LINK_MS ? p.flaps + 1 : 0;
      flaps = p.flaps;
    }
    this.setState(peerId, 'down', now);
    for (const t of this.targets.values()) {
      if (t.peerId === peerId && !t.dialing) {
        t.attempts = flaps;
        t.nextDialAt = now + dialDelay(flaps + 1, this.policy, this.random);
      }
    }
  }
}
