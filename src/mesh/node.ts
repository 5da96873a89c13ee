/**
 * One peer's side of the mesh: accepts and dials links, keeps exactly one link per peer, watches
 * them with heartbeats, re-dials lost peers with backoff, exchanges status summaries and floods the
 * kill switch. It owns sockets and timers; decisions about membership live in the pure PeerTable.
 *
 * start() and stop() may be called any number of times, in any order (the supervisor restarts it).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.js';
import { isPlausible, type KillSwitchState, killSwitchView } from '../store/kill-switch.js';
import { newRefusalCounters, type Refusal } from './admission.js';
import { arbitrate } from './arbiter.js';
import type { Keyring } from './auth.js';
import { BootHistory } from './boot-history.js';
import { type MeshClock, type Scheduler, systemClock, systemScheduler, type TimerHandle } from './clock.js';
import { combined, type DiscoveryGroup } from './discovery/index.js';
import type { Discovery, DiscoverySource, Sighting } from './discovery/types.js';
import { detectorPolicy, FailureDetector, type Heard } from './failure-detector.js';
import type { HandshakeError, SelfInfo } from './handshake.js';
import { type Link, newWireCounters, type WireCounters } from './link.js';
import { isValidPeerId } from './peer-id.js';
import {
  DEFAULT_DIAL_POLICY,
  type DialPolicy,
  type PeerState,
  PeerTable,
  type Target,
} from './peer-table.js';
import {
  CLOSE,
  type KillSwitchWireState,
  MAX_SUMMARY_LINKS,
  type Message,
  type MessageOf,
  message,
  REFUSAL_CODES,
  repairsOf,
  type Summary,
} from './protocol.js';
import { advanceUptime, applyDelta, diffSummary } from './summary-delta.js';
import { WebSocketTransport } from './transport.js';
import type { PendingLink, Transport } from './transport-api.js';
import { type MeshPeerView, meshPeerViews } from './view.js';
import { watchRing } from './watch-ring.js';

export interface MeshTimers {
  heartbeatIntervalMs: number;
  syncIntervalMs: number;
  reconnectIntervalMs: number;
}

/** The kill switch as the mesh needs it; the store implements it. */
export interface KillSwitchPort {
  get(): KillSwitchState;
  adopt(state: KillSwitchState): boolean;
  onChange(listener: (state: KillSwitchState) => void): () => void;
}

export interface MeshNodeOptions {
  self: Omit<SelfInfo, 'listenPort'>;
  listenPort: () => number;
  keyring: Keyring;
  /** Makes the discovery providers; called at every start. */
  discoveries: () => Discovery[];
  killSwitch: KillSwitchPort;
  summary: () => Summary;
  timers: MeshTimers;
  autoReconnect: boolean;
  logger: Logger;
  dialPolicy?: DialPolicy;
  random?: () => number;
  /** Monotonic time for every deadline, wall time for display; default: performance.now. */
  clock?: MeshClock;
  /** Where timers run; default Node's. Tests run a node on virtual time (memory-transport.ts). */
  scheduler?: Scheduler;
  /** How links are dialed and accepted; default WebSocket (transport.ts). */
  transport?: Transport;
}

export interface MeshCounters {
  messagesIn: Record<string, number>;
  messagesOut: Record<string, number>;
  handshakeFailures: Record<string, number>;
  reconnects: number;
  /** What links ignored from newer peers (unknown types and values). */
  wire: WireCounters;
  /** Upgrades refused before any handshake (admission limits), by reason. */
  refusedUpgrades: Record<Refusal, number>;
  /** Optional fields dropped or trimmed from received messages, by field: counted, link kept. */
  repairedFields: Record<string, number>;
  /** Discovery sightings whose claimed peer id was not a valid id (the claim is dropped). */
  badClaimedIds: number;
  /** Kill-switch states refused for an implausible epoch (see MAX_EPOCH_JUMP). */
  implausibleKillSwitch: number;
  /** Links refused because another live process holds the same peer id (either side). */
  duplicatePeerIds: number;
  /** Status deltas that did not follow the summary held (a gap): the whole one was asked for. */
  statusGaps: number;
  /** Links closed because our own work for them threw (a full disk while adopting, say). */
  linkFailures: number;
}

/** Names of refusal close codes, for /mesh, logs and metrics. */
export const CLOSE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(CLOSE).map(([name, code]) => [code, name.toLowerCase()]),
);

/**
 * How long a peer that closed a link as a duplicate (it holds another link with us) stays
 * `connected` while that other link completes on our side: about one round trip in practice.
 */
export const OTHER_LINK_GRACE_MS = 1_000;

/** Outbound handshakes at once; more due targets wait for one to settle. */
export const MAX_DIALS_IN_FLIGHT = 16;

/** Status exchange on one link: what we last sent (for deltas) and what we last got. */
interface LinkSync {
  /** seq of the last status or delta we sent. */
  outSeq: number;
  /** The summary the peer holds of us, as far as we know (the last one we sent). */
  sent: Summary | undefined;
  /** The peer speaks status-delta (its status carried a seq, or it sent a delta). */
  peerDeltas: boolean;
  /** seq of the last status or delta we applied; undefined before the first whole summary. */
  inSeq: number | undefined;
  /** A status-request is outstanding: deltas are ignored until the whole summary comes. */
  requested: boolean;
  /** Monotonic ms of the last frame we sent on the link. */
  lastSent: number;
}

export class MeshNode {
  private readonly table: PeerTable;
  private readonly links = new Map<string, Link>();
  /** A second link we dialed to a linked peer, held until the peer (the acceptor) closes one. */
  private readonly spares = new Map<string, Link>();
  private readonly pending = new Set<PendingLink>();
  private readonly now: () => number;
  private readonly clock: MeshClock;
  private readonly random: () => number;
  private readonly log: Logger;
  private readonly transport: Transport;
  private readonly scheduler: Scheduler;
  private discovery: DiscoveryGroup = combined([]);
  /** Discovery problems already logged at warn level, by source and kind: each is warned once. */
  private readonly warnedDiscovery = new Set<string>();
  private timers: TimerHandle[] = [];
  private syncTimer: TimerHandle | undefined;
  private statusSoon: TimerHandle | undefined;
  /** Fires at the earliest dial deadline; the first retries (100-250 ms) cannot wait for the sweep. */
  private dialTimer: TimerHandle | undefined;
  /** Fires at the failure detector's next deadline, so no verdict waits for the next heartbeat. */
  private checkTimer: TimerHandle | undefined;
  /** Peers whose link closed as a duplicate while another link with them completes, by id. */
  private readonly awaitingOther = new Map<string, TimerHandle>();
  private unsubscribeKillSwitch: (() => void) | undefined;
  private running = false;
  /**
   * Bumped by every stop: a dial or start begun in an earlier generation finds it changed when it
   * settles and leaves the table alone (stop already released its target).
   */
  private generation = 0;
  /** Outbound handshakes of this generation not yet settled (at most MAX_DIALS_IN_FLIGHT). */
  private dialsInFlight = 0;
  private readonly detector: FailureDetector;
  /** The discovery start of the current generation; stop waits for it before withdrawing. */
  private discoveryStarting: Promise<void> = Promise.resolve();
  /** Resolves when the last stop has withdrawn discovery; start waits for it. */
  private stopped: Promise<void> = Promise.resolve();
  /**
   * The peers we watch (watch-ring.ts), with the monotonic ms since when: silence from before we
   * watched a peer is no evidence against it, since nobody asked it anything.
   */
  private readonly watched = new Map<string, number>();
  /** The peers that watch us, as far as our ring tells. */
  private watchers = new Set<string>();
  /**
   * Peers we do not watch but ask for now, pinging them every heartbeat and judging them like
   * watched ones until we hear them, with the evidence baseline: a watcher reported them `suspect`
   * (silent since `suspectAfterMs` before the report), or one we watch fell silent and the fault may
   * be ours (a partition around us: silent since we started asking).
   */
  private readonly asking = new Map<string, number>();
  private pingId = 0;
  private readonly pingsSent = new Map<string, { id: number; t: number }>();
  private readonly syncs = new WeakMap<Link, LinkSync>();
  /** The link a kill-switch state is being adopted from, while adopt() runs (its listener relays). */
  private adoptingFrom: Link | undefined;
  /** Monotonic ms each peer's held summary was last updated (its uptime advances from there). */
  private readonly statusAt = new Map<string, number>();
  /** Refusals already logged, by address and code: each is logged once. */
  private readonly loggedRefusals = new Set<string>();
  readonly counters: MeshCounters = {
    messagesIn: {},
    messagesOut: {},
    handshakeFailures: {},
    reconnects: 0,
    wire: newWireCounters(),
    refusedUpgrades: newRefusalCounters(),
    repairedFields: {},
    badClaimedIds: 0,
    implausibleKillSwitch: 0,
    duplicatePeerIds: 0,
    statusGaps: 0,
    linkFailures: 0,
  };
  private readonly boots = new BootHistory();

  constructor(private readonly opts: MeshNodeOptions) {
    this.clock = opts.clock ?? systemClock;
    this.now = () => this.clock.now();
    this.scheduler = opts.scheduler ?? systemScheduler;
    this.transport =
      opts.transport ??
      new WebSocketTransport({
        refused: this.counters.refusedUpgrades,
        clock: this.clock,
        scheduler: this.scheduler,
      });
    this.detector = new FailureDetector(detectorPolicy(opts.timers.heartbeatIntervalMs), this.now());
    this.random = opts.random ?? Math.random;
    this.table = new PeerTable(opts.dialPolicy ?? DEFAULT_DIAL_POLICY, this.random);
    this.log = opts.logger;
  }

  get isRunning(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const generation = this.generation;
    await this.stopped;
    // stop() ran while we waited: it owns the teardown, and nothing may be set up after it.
    if (generation !== this.generation) return;
    this.transport.listen({
      options: () => this.handshakeOptions(),
      inbound: (pending, address) => this.inbound(pending, address),
    });
    this.unsubscribeKillSwitch = this.opts.killSwitch.onChange((state) =>
      this.safely('kill switch', () => this.relayKillSwitch(state)),
    );
    this.detector.reset(this.now());
    const { heartbeatIntervalMs, reconnectIntervalMs } = this.opts.timers;
    this.timers.push(
      this.scheduler.setInterval(() => this.safely('heartbeat', () => this.heartbeat()), heartbeatIntervalMs),
    );
    this.timers.push(
      this.scheduler.setInterval(() => this.safely('sweep', () => this.dialDue()), reconnectIntervalMs),
    );
    this.scheduleSync();
    // A provider that cannot start (mDNS port taken, DNS unreachable) is reported; the others run.
    const group = combined(this.opts.discoveries());
    this.discovery = group;
    this.discoveryStarting = group.start({
      onSighting: (s) => this.safely('sighting', () => this.sighted(s)),
      onError: (err, source) => this.discoveryError(err, source),
    });
    await this.discoveryStarting;
    if (generation !== this.generation) return;
    this.log.info(
      { discovery: this.discovery.discoveries.map((d) => d.source), cluster: this.opts.self.cluster },
      'mesh started',
    );
  }

  /**
   * Says bye, closes every link with 1001 and stops timers at once; the promise resolves when
   * discovery has withdrawn (mDNS unpublish). Idempotent.
   */
  stop(): Promise<void> {
    if (!this.running) return this.stopped;
    this.running = false;
    this.generation++;
    this.dialsInFlight = 0;
    // Dials in flight settle into a later generation and are ignored: free their targets now, or
    // due() would skip them for ever after the next start.
    this.table.dialsAbandoned();
    for (const t of this.timers) this.scheduler.clear(t);
    this.timers = [];
    this.scheduler.clear(this.syncTimer);
    this.scheduler.clear(this.statusSoon);
    this.statusSoon = undefined;
    this.scheduler.clear(this.dialTimer);
    this.dialTimer = undefined;
    this.scheduler.clear(this.checkTimer);
    this.checkTimer = undefined;
    for (const t of this.awaitingOther.values()) this.scheduler.clear(t);
    this.awaitingOther.clear();
    this.unsubscribeKillSwitch?.();
    for (const p of this.pending) p.abort();
    this.pending.clear();
    for (const link of this.links.values()) {
      this.send(link, message('bye', { reason: 'peer stopping' }));
      link.close(CLOSE.GOING_AWAY, 'peer stopping');
    }
    this.links.clear();
    this.watched.clear();
    this.asking.clear();
    for (const spare of this.spares.values()) spare.close(CLOSE.GOING_AWAY, 'peer stopping');
    this.spares.clear();
    this.transport.close();
    const now = this.now();
    for (const peer of this.table.peers.values()) this.table.setState(peer.peerId, 'down', now);
    // A discovery start still under way (mDNS publishing) finishes before it is withdrawn, so an
    // announcement is never sent after its goodbye.
    const group = this.discovery;
    this.stopped = this.discoveryStarting
      .catch(() => {})
      .then(() => group.stop())
      .then(() => {
        this.log.info('mesh stopped');
      });
    return this.stopped;
  }

  /** A repeated problem (a DNS name with no peers yet, every 5 s) is warned once, then debug. */
  private discoveryError(err: unknown, source: DiscoverySource): void {
    const kind = `${source}|${(err as { code?: string }).code ?? (err as Error).message}`;
    const first = !this.warnedDiscovery.has(kind);
    this.warnedDiscovery.add(kind);
    if (first) this.log.warn({ err, source }, 'discovery problem (repeats are logged at debug level)');
    else this.log.debug({ err, source }, 'discovery problem');
  }

  /** Takes an HTTP upgrade on /mesh; refuses it while the mesh is not running. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (!this.running || !(this.transport instanceof WebSocketTransport)) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    this.transport.handleUpgrade(req, socket, head);
  }

  /** An inbound handshake began (the transport accepted a connection). */
  private inbound(pending: PendingLink, address: string): void {
    this.pending.add(pending);
    pending.link.then(
      (link) => {
        this.pending.delete(pending);
        this.guardLink(link, 'link up', () => this.linkUp(link, undefined));
      },
      (err: HandshakeError) => {
        this.pending.delete(pending);
        this.safely('handshake failed', () => this.handshakeFailed(err, address, 'in'));
      },
    );
  }

  /** Every peer this node knows, as GET /mesh shows them. */
  peers(): MeshPeerView[] {
    const now = this.now();
    return meshPeerViews(this.table, (t) => this.clock.wall(t)).map((v) => {
      const at = v.peerId === null ? undefined : this.statusAt.get(v.peerId);
      return v.status && at !== undefined ? { ...v, status: advanceUptime(v.status, at, now) } : v;
    });
  }

  /**
   * This node's own links, for the `links` of its status summary: linked peers only (never an
   * address or an id discovery merely claimed), at most MAX_SUMMARY_LINKS.
   */
  linkStates(): Array<{ peerId: string; state: PeerState }> {
    const out: Array<{ peerId: string; state: PeerState }> = [];
    for (const peerId of this.links.keys()) {
      const state = this.table.peers.get(peerId)?.state;
      if (state === 'connected' || state === 'suspect') out.push({ peerId, state });
      if (out.length >= MAX_SUMMARY_LINKS) break;
    }
    return out;
  }

  get totalReconnectAttempts(): number {
    return this.table.totalReconnectAttempts;
  }

  /** Handshakes under way, in either direction. */
  get handshakesInFlight(): number {
    return this.pending.size;
  }

  /** Live links (for health's connection count). */
  get linkCount(): number {
    return this.links.size;
  }

  private handshakeOptions() {
    return {
      self: { ...this.opts.self, listenPort: this.opts.listenPort() },
      keyring: this.opts.keyring,
      killSwitch: () => toWire(this.opts.killSwitch.get()),
      counters: this.counters.wire,
    };
  }

  private sighted(s: Sighting): void {
    if (!this.running) return;
    if (s.peerId === this.opts.self.peerId) return;
    let claimed = s.peerId;
    if (claimed !== undefined && !isValidPeerId(claimed)) {
      // A hint only, and unauthenticated: keep the address, drop the claim.
      this.counters.badClaimedIds++;
      claimed = undefined;
    }
    this.table.sighted(s.address, s.source, this.now(), claimed);
    this.dialDue();
  }

  private dialDue(): void {
    if (!this.running) return;
    for (const target of this.table.due(this.now())) {
      // Bounded: one announcer naming hundreds of addresses must not open hundreds of sockets in one
      // tick (that blocked the event loop for seconds); the rest are dialed as these settle.
      if (this.dialsInFlight >= MAX_DIALS_IN_FLIGHT) break;
      if (this.mayDial(target)) this.dial(target.address);
    }
    this.armDialTimer();
  }

  /** Without AUTO_RECONNECT a target is dialed only until it has linked once. */
  private mayDial(target: Target): boolean {
    return this.opts.autoReconnect || !target.peerId || !this.table.peers.has(target.peerId);
  }

  private armDialTimer(): void {
    this.scheduler.clear(this.dialTimer);
    this.dialTimer = undefined;
    if (!this.running) return;
    const next = this.table.nextDeadline((t) => this.mayDial(t));
    if (next === undefined) return;
    // At least 20 ms: a deadline already due but not dialable must not become a busy loop.
    const delay = Math.max(20, next - this.now());
    this.dialTimer = this.scheduler.setTimeout(() => this.safely('dial', () => this.dialDue()), delay);
  }

  private dial(address: string): void {
    const target = this.table.targets.get(address);
    if (!target) return;
    this.table.dialStarted(target);
    this.counters.reconnects++;
    this.dialsInFlight++;
    const generation = this.generation;
    const stale = () => generation !== this.generation || !this.running;
    const settled = () => {
      if (generation === this.generation) this.dialsInFlight--;
    };
    // stop() aborts it (it settles at once); a link that still comes up in a later generation is
    // discarded by the generation check below.
    const pending = this.transport.dial(address, this.handshakeOptions());
    this.pending.add(pending);
    pending.link.then(
      (link) => {
        this.pending.delete(pending);
        settled();
        if (stale()) return link.close(CLOSE.GOING_AWAY, 'peer stopping');
        this.guardLink(link, 'link up', () => this.linkUp(link, address));
      },
      (err: HandshakeError) =>
        this.safely('dial failed', () => {
          this.pending.delete(pending);
          settled();
          if (stale()) return;
          if (err.closeCode === CLOSE.SELF) {
            this.table.dialedSelf(target);
            return;
          }
          const refused = REFUSAL_CODES.has(err.closeCode);
          this.table.dialFailed(
            target,
            this.now(),
            err.message,
            refused ? { code: err.closeCode, reason: err.message } : undefined,
          );
          if (refused) this.handshakeFailed(err, address, 'out');
          this.armDialTimer();
        }),
    );
  }

  private handshakeFailed(err: HandshakeError, address: string, direction: 'in' | 'out'): void {
    const name = CLOSE_NAMES[err.closeCode] ?? String(err.closeCode);
    if (err.closeCode === CLOSE.SELF) return;
    this.counters.handshakeFailures[name] = (this.counters.handshakeFailures[name] ?? 0) + 1;
    const key = `${direction}|${address}|${err.closeCode}`;
    if (REFUSAL_CODES.has(err.closeCode) && !this.loggedRefusals.has(key)) {
      this.loggedRefusals.add(key);
      this.log.warn(
        { address, direction, code: err.closeCode, reason: err.message, remotePeerId: err.remotePeerId },
        `mesh handshake refused (${name})`,
      );
    }
  }

  /** A handshake finished: keep exactly one link per peer. */
  private linkUp(link: Link, dialedAddress: string | undefined): void {
    if (!this.running) {
      link.close(CLOSE.GOING_AWAY, 'peer stopping');
      return;
    }
    const existing = this.links.get(link.peerId);
    if (
      existing?.isOpen &&
      existing.bootId !== link.bootId &&
      this.boots.isRetired(link.peerId, link.bootId)
    ) {
      this.refuseDuplicate(link, existing, dialedAddress);
      return;
    }
    const known = this.table.peers.get(link.peerId);
    if (known && known.bootId !== link.bootId) this.boots.retire(link.peerId, known.bootId);
    if (existing?.isOpen) {
      const verdict = arbitrate(this.opts.self.peerId, existing, link);
      if (verdict.action === 'refuse') {
        link.close(verdict.code, verdict.reason);
        if (dialedAddress) this.linkedTarget(dialedAddress, link);
        return;
      }
      if (verdict.action === 'spare') {
        this.spares.get(link.peerId)?.close(CLOSE.DUPLICATE, 'a link to this peer exists');
        this.spares.set(link.peerId, link);
        link.attach(
          () => {},
          () => this.safely('close', () => this.onClose(link, 1000, 'spare closed')),
        );
        if (dialedAddress) this.linkedTarget(dialedAddress, link);
        return;
      }
      existing.close(verdict.code, verdict.reason);
    }
    const now = this.now();
    this.links.set(link.peerId, link);
    const target = dialedAddress
      ? this.table.targets.get(dialedAddress)
      : this.table.sighted(link.address, 'inbound', now, link.peerId);
    const wasDown = this.table.peers.get(link.peerId)?.state !== 'connected';
    this.table.linked(link.peerId, link.bootId, link.address, now, target);
    this.scheduler.clear(this.awaitingOther.get(link.peerId));
    this.awaitingOther.delete(link.peerId);
    link.attach(
      (msg) => this.guardLink(link, 'message', () => this.onMessage(link, msg)),
      (code, reason) => this.safely('close', () => this.onClose(link, code, reason)),
    );
    if (wasDown)
      this.log.info({ peer: link.peerId, address: link.address, direction: link.direction }, 'peer linked');
    this.adoptKillSwitch(link, link.remoteKillSwitch);
    // Our state may be the newer one: the handshake carried it, but say it again after adopt races.
    this.send(link, killSwitchMessage(this.opts.killSwitch.get()));
    this.sendWholeStatus(link, this.opts.summary());
    this.announceSoon();
  }

  /**
   * A boot we replaced links again while the current one is linked: two live processes share this
   * peer id. Keep the current link, refuse the other with its own close code, and say so loudly:
   * an operator must give one of them another PEER_ID.
   */
  private refuseDuplicate(link: Link, current: Link, dialedAddress: string | undefined): void {
    const now = this.now();
    const reason = 'another live process uses this peer id';
    link.close(CLOSE.DUPLICATE_PEER_ID, reason);
    const target = dialedAddress ? this.table.targets.get(dialedAddress) : undefined;
    if (target) this.table.dialFailed(target, now, reason, { code: CLOSE.DUPLICATE_PEER_ID, reason });
    const peer = this.table.peers.get(link.peerId);
    if (!peer) return;
    const refusals = (peer.duplicate?.refusals ?? 0) + 1;
    peer.duplicate = { bootIds: [current.bootId, link.bootId], refusals, lastAt: now };
    this.counters.duplicatePeerIds++;
    if (refusals === 1 || refusals % 100 === 0) {
      this.log.error(
        { peer: link.peerId, bootIds: peer.duplicate.bootIds, address: link.address, refusals },
        `PEER_ID CONFLICT: two live processes use peer id "${link.peerId}"; refused the other (close ${CLOSE.DUPLICATE_PEER_ID}). Give one of them another PEER_ID.`,
      );
    }
    this.announceSoon();
  }

  /** Links changed: tell everyone soon (coalesced), so every dashboard redraws the mesh at once. */
  private announceSoon(): void {
    if (this.statusSoon || !this.running) return;
    this.statusSoon = this.scheduler.setTimeout(() => {
      this.statusSoon = undefined;
      this.safely('announce', () => this.syncStatus());
    }, 100);
  }

  private linkedTarget(address: string, link: Link): void {
    const target = this.table.targets.get(address);
    if (!target) return;
    target.dialing = false;
    target.attempts = 0;
    target.peerId = link.peerId;
  }

  private onMessage(link: Link, msg: Message): void {
    if (this.links.get(link.peerId) !== link) return;
    this.counters.messagesIn[msg.type] = (this.counters.messagesIn[msg.type] ?? 0) + 1;
    for (const field of repairsOf(msg)) {
      const first = this.counters.repairedFields[field] === undefined;
      this.counters.repairedFields[field] = (this.counters.repairedFields[field] ?? 0) + 1;
      if (first) this.log.warn({ peer: link.peerId, field }, 'dropped an invalid optional field; link kept');
    }
    const now = this.now();
    this.table.heard(link.peerId, now);
    this.asking.delete(link.peerId);
    const peer = this.table.peers.get(link.peerId);
    if (peer && peer.state === 'suspect') this.setState(peer.peerId, 'connected');
    switch (msg.type) {
      case 'ping':
        this.send(link, message('pong', { id: msg.id, t: msg.t }));
        // The pinger measured the round trip; the side that only answers shows the same figure.
        if (peer && msg.rttMs !== undefined) peer.rttMs = msg.rttMs;
        break;
      case 'pong': {
        const sent = this.pingsSent.get(link.peerId);
        if (peer && sent && sent.id === msg.id) peer.rttMs = Math.max(0, now - sent.t);
        break;
      }
      case 'status':
        if (peer && msg.summary.peerId === link.peerId) {
          peer.status = msg.summary;
          this.statusAt.set(peer.peerId, now);
          this.adoptKillSwitch(link, msg.summary.killSwitch);
          const sync = this.syncOf(link);
          if (msg.seq !== undefined) {
            sync.peerDeltas = true;
            sync.inSeq = msg.seq;
            sync.requested = false;
          }
        }
        break;
      case 'status-delta':
        if (peer) this.applyStatusDelta(link, peer, msg, now);
        break;
      case 'status-request':
        this.sendWholeStatus(link, this.opts.summary());
        break;
      case 'killswitch':
        this.adoptKillSwitch(link, msg.state);
        break;
      case 'bye':
        this.log.info({ peer: link.peerId, reason: msg.reason }, 'peer leaving');
        break;
      case 'suspect':
        this.onSuspectReport(link, msg);
        break;
      default:
        // Handshake messages after the handshake are out of order.
        link.close(CLOSE.BAD_MESSAGE, `unexpected ${msg.type}`);
    }
  }

  /** Adopts a peer's kill switch when newer; an implausible epoch is refused, counted and logged. */
  private adoptKillSwitch(link: Link, state: KillSwitchState): void {
    if (!isPlausible(state, this.opts.killSwitch.get())) {
      if (this.counters.implausibleKillSwitch++ === 0 || this.counters.implausibleKillSwitch % 100 === 0) {
        this.log.warn(
          { peer: link.peerId, epoch: state.epoch, ours: this.opts.killSwitch.get().epoch },
          'refused a kill-switch state with an implausible epoch',
        );
      }
      return;
    }
    this.adoptingFrom = link;
    try {
      this.opts.killSwitch.adopt(state);
    } finally {
      this.adoptingFrom = undefined;
    }
  }

  /**
   * Floods a kill-switch change. Ours goes to every link. One adopted from its origin directly goes
   * only to the links the origin's summary does not list as connected: the origin sent it to those
   * itself, and relaying it too made every change cost N^2 frames in a full mesh. Should the
   * origin's summary be stale, the summaries that follow carry the new state to whoever missed it
   * (see the status handling), within one sync interval.
   */
  private relayKillSwitch(state: KillSwitchState): void {
    const from = this.adoptingFrom;
    if (from) {
      // Every peer says when it took a change from the mesh: it halts trading, and the line's time
      // is how the mesh bench measures propagation on the peers' own clocks.
      this.log.warn(
        { peer: from.peerId, origin: state.origin, epoch: state.epoch, active: state.active },
        'kill switch adopted from the mesh',
      );
    }
    const originLinks = new Set<string>();
    if (from && from.peerId === state.origin) {
      for (const l of this.table.peers.get(from.peerId)?.status?.links ?? [])
        if (l.state === 'connected') originLinks.add(l.peerId);
    }
    const msg = killSwitchMessage(state);
    for (const link of this.links.values()) {
      if (link !== from && !originLinks.has(link.peerId)) this.send(link, msg);
    }
  }

  /**
   * A delta applies only on top of the summary it follows (seq + 1); after a gap, or before any
   * whole summary, the whole one is asked for once and deltas are ignored until it comes.
   */
  private applyStatusDelta(
    link: Link,
    peer: { peerId: string; status: Summary | null },
    msg: MessageOf<'status-delta'>,
    now: number,
  ): void {
    const sync = this.syncOf(link);
    sync.peerDeltas = true;
    if (sync.inSeq !== undefined && msg.seq === sync.inSeq + 1 && peer.status && !sync.requested) {
      peer.status = applyDelta(peer.status, msg);
      this.statusAt.set(peer.peerId, now);
      sync.inSeq = msg.seq;
      if (msg.set?.killSwitch) this.adoptKillSwitch(link, msg.set.killSwitch);
      return;
    }
    if (sync.requested) return;
    sync.requested = true;
    this.counters.statusGaps++;
    this.send(link, message('status-request', {}));
  }

  private syncOf(link: Link): LinkSync {
    let sync = this.syncs.get(link);
    if (!sync) {
      sync = {
        outSeq: 0,
        sent: undefined,
        peerDeltas: false,
        inSeq: undefined,
        requested: false,
        lastSent: 0,
      };
      this.syncs.set(link, sync);
    }
    return sync;
  }

  /** The whole summary, with the seq that tells the peer we speak deltas. */
  private sendWholeStatus(link: Link, summary: Summary): void {
    const sync = this.syncOf(link);
    sync.outSeq++;
    sync.sent = summary;
    this.send(link, message('status', { summary, seq: sync.outSeq }));
  }

  /**
   * Every sync (and soon after a link change): to each peer that speaks deltas, what changed since
   * the last summary it got, or nothing when nothing did; to an older peer, the whole summary as
   * before. Links that got the same summary last share one diff.
   */
  private syncStatus(): void {
    const summary = this.opts.summary();
    const diffs = new Map<Summary, ReturnType<typeof diffSummary>>();
    for (const link of this.links.values()) {
      const sync = this.syncOf(link);
      if (!sync.peerDeltas || !sync.sent) {
        this.sendWholeStatus(link, summary);
        continue;
      }
      const prev = sync.sent;
      if (!diffs.has(prev)) diffs.set(prev, diffSummary(prev, summary));
      const delta = diffs.get(prev);
      if (!delta) continue;
      sync.outSeq++;
      sync.sent = summary;
      this.send(link, message('status-delta', { seq: sync.outSeq, ...delta }));
    }
  }

  private onClose(link: Link, code: number, reason: string): void {
    if (this.spares.get(link.peerId) === link) {
      this.spares.delete(link.peerId);
      return;
    }
    if (this.links.get(link.peerId) !== link) return;
    this.links.delete(link.peerId);
    this.pingsSent.delete(link.peerId);
    this.asking.delete(link.peerId);
    if (!this.running) return;
    const spare = this.spares.get(link.peerId);
    this.spares.delete(link.peerId);
    if (spare?.isOpen && link.bootId === spare.bootId) {
      // The peer closed the other of our two links to it: the spare becomes the link.
      this.guardLink(spare, 'link up', () => this.linkUp(spare, undefined));
      return;
    }
    if (code === CLOSE.DUPLICATE && this.pending.size > 0) {
      // The peer closed this link because it keeps another one with us, which is still completing
      // on our side (one peer dialed at two addresses: the acceptor's refusal of one travels right
      // behind its ready, before the other's ready arrives). Wait for it rather than calling the
      // peer down and back up; without a link by then, it is down after all.
      const peerId = link.peerId;
      this.scheduler.clear(this.awaitingOther.get(peerId));
      const timer = this.scheduler.setTimeout(() => {
        this.awaitingOther.delete(peerId);
        if (this.running && !this.links.has(peerId))
          this.safely('close', () => this.lost(link, code, reason));
      }, OTHER_LINK_GRACE_MS);
      this.awaitingOther.set(peerId, timer);
      return;
    }
    this.lost(link, code, reason);
  }

  /** The current link of a peer is gone, with no other to take over: the peer is down. */
  private lost(link: Link, code: number, reason: string): void {
    if (code === CLOSE.BAD_MESSAGE || code === CLOSE.TOO_LARGE) {
      this.log.warn({ peer: link.peerId, code, reason }, 'mesh link closed for a protocol violation');
    }
    const now = this.now();
    this.table.unlinked(link.peerId, now);
    if (code === CLOSE.DUPLICATE_PEER_ID) {
      // The other side links another live process with OUR peer id: we are one of two.
      this.table.refusedAfterLink(link.peerId, { code, reason }, now);
      this.counters.duplicatePeerIds++;
      this.log.error(
        { peer: link.peerId, code, reason, peerId: this.opts.self.peerId, bootId: this.opts.self.bootId },
        `PEER_ID CONFLICT: ${link.peerId} refused us because another live process uses our peer id "${this.opts.self.peerId}". Give one of them another PEER_ID.`,
      );
    }
    this.armDialTimer();
    this.log.warn({ peer: link.peerId, code, reason }, 'peer down');
    this.announceSoon();
  }

  /** Asks the failure detector, acts on its verdicts, and sets the timer for its next deadline. */
  private judge(): void {
    const now = this.now();
    const { lagMs, suspect, down, nextCheckAt } = this.detector.tick(now, this.judged());
    if (lagMs > 0) {
      // The detector stretched its copies; the table and the baselines are just as stale.
      for (const p of this.table.peers.values()) if (p.state !== 'down') p.lastSeen += lagMs;
      for (const m of [this.watched, this.asking]) for (const [id, at] of m) m.set(id, at + lagMs);
      if (lagMs >= 500) this.log.warn({ lagMs }, 'event loop lagged; stretching peer timeouts');
      else this.log.debug({ lagMs }, 'event loop lagged; stretching peer timeouts');
    }
    for (const { peerId, silentMs } of down) {
      this.links.get(peerId)?.terminate(CLOSE.TIMEOUT, `silent for ${Math.round(silentMs)} ms`);
    }
    for (const { peerId, silentMs } of suspect) {
      this.setState(peerId, 'suspect');
      this.announceSoon();
      this.log.warn({ peer: peerId, silentMs: Math.round(silentMs) }, 'peer suspect');
      this.reportSuspect(peerId);
    }
    this.scheduler.clear(this.checkTimer);
    this.checkTimer = undefined;
    if (nextCheckAt !== undefined && this.running) {
      // At the deadline, judge one turn of the event loop later: a timer runs before the loop
      // reads its sockets, and a frame the peer sent in time may be waiting there to be read.
      this.checkTimer = this.scheduler.setTimeout(
        () => {
          this.checkTimer = this.scheduler.setTimeout(
            () => this.safely('failure detection', () => this.judge()),
            0,
          );
        },
        Math.max(0, nextCheckAt - now),
      );
    }
  }

  /**
   * What the failure detector judges: the peers we watch or ask, if linked,
   * each as last heard or as first watched, whichever is later. Copies: the detector stretches
   * them for our own lag, and judge() stretches the originals.
   */
  private judged(): Heard[] {
    // A peer in more than one set is judged from the earliest: we have asked it since then.
    const since = new Map<string, number>();
    for (const m of [this.watched, this.asking])
      for (const [peerId, at] of m) since.set(peerId, Math.min(at, since.get(peerId) ?? at));
    const heard: Heard[] = [];
    for (const [peerId, at] of since) {
      const peer = this.links.has(peerId) ? this.table.peers.get(peerId) : undefined;
      if (peer) heard.push({ peerId, state: peer.state, lastSeen: Math.max(peer.lastSeen, at) });
    }
    return heard;
  }

  /**
   * Recomputes whom we watch from the current links (cheap: a sort of N ids per heartbeat). A peer
   * we start watching counts as heard one interval ago at the latest: it is asked from now on, and
   * so gets the same 1.29 s to answer as one that fell silent right after its last heartbeat,
   * while one heard since (a link that just came up) is judged from then, not a heartbeat late.
   */
  private rewatch(now: number): void {
    const { targets, watchers } = watchRing(this.opts.self.peerId, this.links.keys());
    const since = now - this.opts.timers.heartbeatIntervalMs;
    for (const peerId of this.watched.keys()) if (!targets.has(peerId)) this.watched.delete(peerId);
    for (const peerId of targets) if (!this.watched.has(peerId)) this.watched.set(peerId, since);
    this.watchers = watchers;
  }

  /**
   * A peer we watch fell silent: tell everyone, so they ask it themselves (see onSuspectReport),
   * and ask everyone else ourselves, in case we are the one cut off.
   */
  private reportSuspect(peerId: string): void {
    const link = this.links.get(peerId);
    if (!link || !this.watched.has(peerId)) return;
    const report = message('suspect', { peerId, bootId: link.bootId });
    const now = this.now();
    for (const other of this.links.values()) {
      if (other === link) continue;
      this.send(other, report);
      const id = other.peerId;
      if (this.watched.has(id) || this.asking.has(id)) continue;
      this.asking.set(id, now);
      this.ping(other, now);
    }
  }

  /**
   * A watcher says a peer fell silent. We take the report as evidence that the peer has been
   * silent for a suspicion's time, unless we heard it ourselves since: we ping it at once and every
   * heartbeat and judge it like one we watch, from the later of the two. So a peer we have not heard
   * for that long is `suspect` here at once and `down` DOWN_GRACE_MS later unless it answers; one we
   * heard more recently stays `connected` until our own silence says otherwise (if only the
   * watcher's link is at fault, the peer answers us and the watcher's detector ends that link). A
   * report about us, about a peer we watch ourselves, or about an older boot changes nothing.
   */
  private onSuspectReport(from: Link, msg: MessageOf<'suspect'>): void {
    const { peerId } = msg;
    const link = this.links.get(peerId);
    const peer = this.table.peers.get(peerId);
    if (!link || !peer || link.bootId !== msg.bootId || this.watched.has(peerId)) return;
    const now = this.now();
    const since = now - this.detector.policy.suspectAfterMs;
    // Already asked on older evidence (an earlier report): nothing new.
    if ((this.asking.get(peerId) ?? Number.POSITIVE_INFINITY) <= since) return;
    this.asking.set(peerId, since);
    if (peer.state === 'connected' && peer.lastSeen <= since) {
      this.setState(peerId, 'suspect');
      this.announceSoon();
      this.log.warn({ peer: peerId, reportedBy: from.peerId }, 'peer suspect (reported by its watcher)');
    } else {
      this.log.debug(
        { peer: peerId, reportedBy: from.peerId },
        'peer reported suspect; heard it since, asking it',
      );
    }
    this.ping(link, now);
    this.judge();
  }

  private ping(link: Link, now: number): void {
    const rttMs = this.table.peers.get(link.peerId)?.rttMs;
    const ping = { id: ++this.pingId, t: now };
    this.pingsSent.set(link.peerId, ping);
    this.send(link, message('ping', rttMs === null || rttMs === undefined ? ping : { ...ping, rttMs }));
  }

  private heartbeat(): void {
    this.rewatch(this.now());
    this.judge();
    const now = this.now();
    const interval = this.opts.timers.heartbeatIntervalMs;
    for (const peerId of new Set([...this.watched.keys(), ...this.asking.keys()])) {
      const link = this.links.get(peerId);
      const peer = this.table.peers.get(peerId);
      if (!link || !peer) continue;
      // Where two peers watch each other, one pings (the greater peer id) and the other answers:
      // each hears the other once per interval, at half the frames of both pinging. The other side
      // pings only when the pinger fell silent (an older peer pings anyway). Any frame counts as
      // liveness, so a ping is skipped while traffic flows both ways.
      const pinger = !this.watchers.has(peerId) || this.opts.self.peerId > peerId || this.asking.has(peerId);
      const silentMs = now - peer.lastSeen;
      if (!pinger && silentMs <= 1.5 * interval) continue;
      if (now - this.syncOf(link).lastSent < interval / 2 && silentMs < interval / 2) continue;
      this.ping(link, now);
    }
  }

  private scheduleSync(): void {
    const base = this.opts.timers.syncIntervalMs;
    const delay = base * (0.9 + this.random() * 0.2);
    this.syncTimer = this.scheduler.setTimeout(() => {
      this.safely('sync', () => this.syncStatus());
      if (this.running) this.scheduleSync();
    }, delay);
  }

  private setState(peerId: string, state: PeerState): void {
    this.table.setState(peerId, state, this.now());
  }

  private send(link: Link, msg: Message): void {
    if (!link.send(msg)) return;
    this.counters.messagesOut[msg.type] = (this.counters.messagesOut[msg.type] ?? 0) + 1;
    this.syncOf(link).lastSent = this.now();
  }

  /**
   * Work for one link (its link-up, its messages) that fails closes that link, never the process:
   * a full disk while adopting a peer's kill switch is that link's problem, and the link is retried
   * with backoff like any other that ended.
   */
  private guardLink(link: Link, what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.counters.linkFailures++;
      this.log.error({ err, what, peer: link.peerId }, 'mesh link failed; closing that link');
      const reason = `internal error (${what})`;
      this.safely('close failed link', () => link.close(CLOSE.INTERNAL_ERROR, reason));
      // Cleans up a link that failed before its close handler was attached (no-op otherwise).
      this.safely('close', () => this.onClose(link, CLOSE.INTERNAL_ERROR, reason));
    }
  }

  /** Timer and socket callbacks must never throw into the process. */
  private safely(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err, what }, 'mesh callback failed');
    }
  }
}

function toWire(s: KillSwitchState): KillSwitchWireState {
  return killSwitchView(s);
}

function killSwitchMessage(state: KillSwitchState) {
  return message('killswitch', { state: toWire(state) });
}
