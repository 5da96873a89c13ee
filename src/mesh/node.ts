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
import type { KillSwitchState } from '../store/kill-switch.js';
import { newRefusalCounters, type Refusal } from './admission.js';
import { type Keyring, NonceCache } from './auth.js';
import { combined, type DiscoveryGroup } from './discovery/index.js';
import type { Discovery, DiscoverySource, Sighting } from './discovery/types.js';
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
  type Message,
  message,
  REFUSAL_CODES,
  type Summary,
} from './protocol.js';
import {
  acceptHandshake,
  createMeshServer,
  dialHandshake,
  type HandshakeError,
  type Link,
  type MeshServer,
  newWireCounters,
  type SelfInfo,
  type WireCounters,
} from './transport.js';
import { type MeshPeerView, meshPeerViews } from './view.js';

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
  now?: () => number;
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
}

/** Names of refusal close codes, for /mesh, logs and metrics. */
export const CLOSE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(CLOSE).map(([name, code]) => [code, name.toLowerCase()]),
);

/** Missed heartbeat intervals before `suspect`, and before `down`. */
const SUSPECT_AFTER_INTERVALS = 2.5;
const DOWN_AFTER_INTERVALS = 4;

export class MeshNode {
  private readonly table: PeerTable;
  private readonly links = new Map<string, Link>();
  private readonly pending = new Set<{ abort(): void }>();
  private readonly nonces = new NonceCache();
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly log: Logger;
  private server: MeshServer | undefined;
  private discovery: DiscoveryGroup = combined([]);
  /** Discovery problems already logged at warn level, by source and kind: each is warned once. */
  private readonly warnedDiscovery = new Set<string>();
  private timers: NodeJS.Timeout[] = [];
  private syncTimer: NodeJS.Timeout | undefined;
  private statusSoon: NodeJS.Timeout | undefined;
  /** Fires at the earliest dial deadline; the first retries (100-250 ms) cannot wait for the sweep. */
  private dialTimer: NodeJS.Timeout | undefined;
  private unsubscribeKillSwitch: (() => void) | undefined;
  private running = false;
  private lastTick = 0;
  /** Resolves when the last stop has withdrawn discovery; start waits for it. */
  private stopped: Promise<void> = Promise.resolve();
  private pingId = 0;
  private readonly pingsSent = new Map<string, { id: number; t: number }>();
  /** Refusals already logged, by address and code: each is logged once. */
  private readonly loggedRefusals = new Set<string>();
  readonly counters: MeshCounters = {
    messagesIn: {},
    messagesOut: {},
    handshakeFailures: {},
    reconnects: 0,
    wire: newWireCounters(),
    refusedUpgrades: newRefusalCounters(),
  };

  constructor(private readonly opts: MeshNodeOptions) {
    this.now = opts.now ?? Date.now;
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
    await this.stopped;
    this.server = createMeshServer({ refused: this.counters.refusedUpgrades });
    this.unsubscribeKillSwitch = this.opts.killSwitch.onChange((state) =>
      this.broadcast(killSwitchMessage(state)),
    );
    this.lastTick = this.now();
    const { heartbeatIntervalMs, reconnectIntervalMs } = this.opts.timers;
    this.timers.push(
      setInterval(() => this.safely('heartbeat', () => this.heartbeat()), heartbeatIntervalMs),
    );
    this.timers.push(setInterval(() => this.safely('sweep', () => this.dialDue()), reconnectIntervalMs));
    this.scheduleSync();
    // A provider that cannot start (mDNS port taken, DNS unreachable) is reported; the others run.
    this.discovery = combined(this.opts.discoveries());
    await this.discovery.start({
      onSighting: (s) => this.safely('sighting', () => this.sighted(s)),
      onError: (err, source) => this.discoveryError(err, source),
    });
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
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.statusSoon) clearTimeout(this.statusSoon);
    if (this.dialTimer) clearTimeout(this.dialTimer);
    this.unsubscribeKillSwitch?.();
    for (const p of this.pending) p.abort();
    this.pending.clear();
    for (const link of this.links.values()) {
      this.send(link, message('bye', { reason: 'peer stopping' }));
      link.close(CLOSE.GOING_AWAY, 'peer stopping');
    }
    this.links.clear();
    for (const ws of this.server?.clients ?? []) ws.terminate();
    this.server?.close();
    this.server = undefined;
    const now = this.now();
    for (const peer of this.table.peers.values()) this.table.setState(peer.peerId, 'down', now);
    this.stopped = this.discovery.stop().then(() => {
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
    const server = this.server;
    if (!this.running || !server) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    server.handleUpgrade(req, socket, head, (ws) => {
      const handshake = acceptHandshake(ws, req, this.handshakeOptions());
      const abort = { abort: () => ws.terminate() };
      this.pending.add(abort);
      handshake.then(
        (link) => {
          this.pending.delete(abort);
          this.linkUp(link, undefined);
        },
        (err: HandshakeError) => {
          this.pending.delete(abort);
          const address = `${req.socket.remoteAddress ?? 'unknown'}`;
          this.handshakeFailed(err, address, 'in');
        },
      );
    });
  }

  /** Every peer this node knows, as GET /mesh shows them. */
  peers(): MeshPeerView[] {
    return meshPeerViews(this.table);
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
      nonces: this.nonces,
      killSwitch: () => toWire(this.opts.killSwitch.get()),
      counters: this.counters.wire,
    };
  }

  private sighted(s: Sighting): void {
    if (!this.running) return;
    if (s.peerId === this.opts.self.peerId) return;
    this.table.sighted(s.address, s.source, this.now(), s.peerId);
    this.dialDue();
  }

  private dialDue(): void {
    if (!this.running) return;
    for (const target of this.table.due(this.now())) if (this.mayDial(target)) this.dial(target.address);
    this.armDialTimer();
  }

  /** Without AUTO_RECONNECT a target is dialed only until it has linked once. */
  private mayDial(target: Target): boolean {
    return this.opts.autoReconnect || !target.peerId || !this.table.peers.has(target.peerId);
  }

  private armDialTimer(): void {
    if (this.dialTimer) clearTimeout(this.dialTimer);
    this.dialTimer = undefined;
    if (!this.running) return;
    const next = this.table.nextDeadline((t) => this.mayDial(t));
    if (next === undefined) return;
    // At least 20 ms: a deadline already due but not dialable must not become a busy loop.
    const delay = Math.max(20, next - this.now());
    this.dialTimer = setTimeout(() => this.safely('dial', () => this.dialDue()), delay);
  }

  private dial(address: string): void {
    const target = this.table.targets.get(address);
    if (!target) return;
    this.table.dialStarted(target);
    this.counters.reconnects++;
    let aborted = false;
    const handshake = dialHandshake(address, this.handshakeOptions());
    const abort = {
      abort: () => {
        aborted = true;
      },
    };
    this.pending.add(abort);
    handshake.then(
      (link) => {
        this.pending.delete(abort);
        if (aborted || !this.running) return link.close(CLOSE.GOING_AWAY, 'peer stopping');
        this.linkUp(link, address);
      },
      (err: HandshakeError) => {
        this.pending.delete(abort);
        if (!this.running) return;
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
      },
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
    if (existing?.isOpen) {
      if (existing.bootId !== link.bootId) {
        // The peer restarted: its old link belongs to a dead process.
        existing.close(CLOSE.REPLACED, 'replaced by a link of a newer boot');
      } else {
        // Simultaneous dial: both sides keep the link dialed by the greater peerId.
        const dialer = (l: Link) => (l.direction === 'out' ? this.opts.self.peerId : l.peerId);
        if (dialer(link) <= dialer(existing)) {
          link.close(CLOSE.DUPLICATE, 'a link to this peer exists');
          if (dialedAddress) this.linkedTarget(dialedAddress, link);
          return;
        }
        existing.close(CLOSE.DUPLICATE, 'a link to this peer exists');
      }
    }
    const now = this.now();
    this.links.set(link.peerId, link);
    const target = dialedAddress
      ? this.table.targets.get(dialedAddress)
      : this.table.sighted(link.address, 'inbound', now, link.peerId);
    const wasDown = this.table.peers.get(link.peerId)?.state !== 'connected';
    this.table.linked(link.peerId, link.bootId, link.address, now, target);
    link.attach(
      (msg) => this.safely('message', () => this.onMessage(link, msg)),
      (code, reason) => this.safely('close', () => this.onClose(link, code, reason)),
    );
    if (wasDown)
      this.log.info({ peer: link.peerId, address: link.address, direction: link.direction }, 'peer linked');
    this.opts.killSwitch.adopt(link.remoteKillSwitch);
    // Our state may be the newer one: the handshake carried it, but say it again after adopt races.
    this.send(link, killSwitchMessage(this.opts.killSwitch.get()));
    this.send(link, message('status', { summary: this.opts.summary() }));
    this.announceSoon();
  }

  /** Links changed: tell everyone soon (coalesced), so every dashboard redraws the mesh at once. */
  private announceSoon(): void {
    if (this.statusSoon || !this.running) return;
    this.statusSoon = setTimeout(() => {
      this.statusSoon = undefined;
      this.safely('announce', () => this.broadcast(message('status', { summary: this.opts.summary() })));
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
    const now = this.now();
    this.table.heard(link.peerId, now);
    const peer = this.table.peers.get(link.peerId);
    if (peer && peer.state === 'suspect') this.setState(peer.peerId, 'connected');
    switch (msg.type) {
      case 'ping':
        this.send(link, message('pong', { id: msg.id, t: msg.t }));
        break;
      case 'pong': {
        const sent = this.pingsSent.get(link.peerId);
        if (peer && sent && sent.id === msg.id) peer.rttMs = Math.max(0, now - sent.t);
        break;
      }
      case 'status':
        if (peer && msg.summary.peerId === link.peerId) peer.status = msg.summary;
        break;
      case 'killswitch':
        this.opts.killSwitch.adopt(msg.state);
        break;
      case 'bye':
        this.log.info({ peer: link.peerId, reason: msg.reason }, 'peer leaving');
        break;
      default:
        // Handshake messages after the handshake are out of order.
        link.close(CLOSE.BAD_MESSAGE, `unexpected ${msg.type}`);
    }
  }

  private onClose(link: Link, code: number, reason: string): void {
    if (this.links.get(link.peerId) !== link) return;
    this.links.delete(link.peerId);
    this.pingsSent.delete(link.peerId);
    if (!this.running) return;
    if (code === CLOSE.BAD_MESSAGE || code === CLOSE.TOO_LARGE) {
      this.log.warn({ peer: link.peerId, code, reason }, 'mesh link closed for a protocol violation');
    }
    this.table.unlinked(link.peerId, this.now());
    this.armDialTimer();
    this.log.warn({ peer: link.peerId, code, reason }, 'peer down');
    this.announceSoon();
  }

  private heartbeat(): void {
    const now = this.now();
    const interval = this.opts.timers.heartbeatIntervalMs;
    // Our own event loop was blocked: nobody could be heard meanwhile, so do not blame them.
    const lag = now - this.lastTick - interval;
    this.lastTick = now;
    if (lag > interval / 2) {
      for (const p of this.table.peers.values()) if (p.state !== 'down') p.lastSeen += lag;
      this.log.warn({ lagMs: lag }, 'event loop lagged; stretching peer timeouts');
    }
    for (const [peerId, link] of this.links) {
      const peer = this.table.peers.get(peerId);
      if (!peer) continue;
      const silentMs = now - peer.lastSeen;
      if (silentMs > DOWN_AFTER_INTERVALS * interval) {
        link.terminate(CLOSE.TIMEOUT, `silent for ${silentMs} ms`);
        continue;
      }
      if (silentMs > SUSPECT_AFTER_INTERVALS * interval && peer.state === 'connected') {
        this.setState(peerId, 'suspect');
        this.announceSoon();
        this.log.warn({ peer: peerId, silentMs }, 'peer suspect');
      }
      const ping = { id: ++this.pingId, t: now };
      this.pingsSent.set(peerId, ping);
      this.send(link, message('ping', ping));
    }
  }

  private scheduleSync(): void {
    const base = this.opts.timers.syncIntervalMs;
    const delay = base * (0.9 + this.random() * 0.2);
    this.syncTimer = setTimeout(() => {
      this.safely('sync', () => this.broadcast(message('status', { summary: this.opts.summary() })));
      if (this.running) this.scheduleSync();
    }, delay);
  }

  private setState(peerId: string, state: PeerState): void {
    this.table.setState(peerId, state, this.now());
  }

  private broadcast(msg: Message): void {
    for (const link of this.links.values()) this.send(link, msg);
  }

  private send(link: Link, msg: Message): void {
    if (link.send(msg)) this.counters.messagesOut[msg.type] = (this.counters.messagesOut[msg.type] ?? 0) + 1;
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
  return {
    active: s.active,
    reason: s.reason.slice(0, 500),
    since: s.since,
    origin: s.origin,
    epoch: s.epoch,
  };
}

function killSwitchMessage(state: KillSwitchState) {
  return message('killswitch', { state: toWire(state) });
}
