/**
 * An in-memory network for MeshNode tests (compare memberlist's MockNetwork): hosts on virtual time
 * (virtual-time.ts) linked by pipes that deliver frames asynchronously, in order, after a delay.
 * The handshake (handshake.ts) and the sealed Link (link.ts) are the production ones; only the
 * carrier differs. Controls: partition and heal two hosts (frames wait, as TCP retransmits, and
 * new connections hang), drop frames between two hosts, set the delay, pause a host (SIGSTOP: its
 * timers do not run and its inbound frames queue up) and refuse connections to a host.
 */
import { AcceptorHandshake, DialerHandshake, type Frame, type HandshakeOptions } from './handshake.js';
import {
  type Acceptor,
  type FrameSocket,
  type PendingLink,
  runHandshake,
  type Transport,
} from './transport-api.js';
import { Host, VirtualTime } from './virtual-time.js';

/** What travels in a pipe: a frame, a close frame (with its code), or a reset (TCP RST/FIN). */
type Packet =
  | { kind: 'frame'; data: Buffer; binary: boolean }
  | { kind: 'close'; code: number; reason: string }
  | { kind: 'reset' };

export const MEMORY_PORT = 9000;

export class MemoryNetwork {
  readonly time = new VirtualTime();
  private readonly hosts = new Map<string, MemoryHost>();
  /** Dialable addresses (host:port) to hosts; a host may have several (hostname and IP). */
  private readonly addresses = new Map<string, MemoryHost>();
  private readonly delays = new Map<string, number>();
  private readonly partitions = new Set<string>();
  private readonly drops = new Set<string>();
  /** Packets held by a partition, per direction, delivered in order on heal. */
  private readonly heldByPartition = new Map<string, Array<() => void>>();
  /** Virtual time of the last delivery per sending socket: a pipe never reorders. */
  private readonly lastDelivery = new WeakMap<MemorySocket, number>();
  /** Extra one-way delays of connections dialed to an address (one route slower than another). */
  private readonly routes = new Map<string, { toDialer: number; toAcceptor: number }>();

  constructor(readonly defaultDelayMs = 1) {}

  /** A new host at 10.0.0.N:9000. */
  host(name: string): MemoryHost {
    const ip = `10.0.0.${this.hosts.size + 1}`;
    const host = new MemoryHost(this, name, ip);
    this.hosts.set(name, host);
    this.addresses.set(host.address, host);
    return host;
  }

  /** Makes `address` (a hostname's, say) reach `host` too. */
  alias(address: string, host: MemoryHost): void {
    this.addresses.set(address, host);
  }

  resolve(address: string): MemoryHost | undefined {
    return this.addresses.get(address);
  }

  /** Cuts both directions between two hosts: frames wait, connections hang. */
  partition(a: MemoryHost, b: MemoryHost): void {
    this.partitions.add(pair(a, b));
  }

  heal(a: MemoryHost, b: MemoryHost): void {
    this.partitions.delete(pair(a, b));
    for (const key of [dir(a, b), dir(b, a)]) {
      const held = this.heldByPartition.get(key) ?? [];
      this.heldByPartition.delete(key);
      for (const send of held) send();
    }
  }

  isPartitioned(a: MemoryHost, b: MemoryHost): boolean {
    return this.partitions.has(pair(a, b));
  }

  /** Frames from `from` to `to` are lost while on (a faulty middlebox; the seal notices). */
  drop(from: MemoryHost, to: MemoryHost, on = true): void {
    if (on) this.drops.add(dir(from, to));
    else this.drops.delete(dir(from, to));
  }

  /** One-way delay between two hosts, both directions. */
  delay(a: MemoryHost, b: MemoryHost, ms: number): void {
    this.delays.set(pair(a, b), ms);
  }

  /**
   * Connections dialed to `address` from now on take extra time each way: a peer reached at two
   * addresses can then complete its two handshakes in a different order on each side.
   */
  route(address: string, extra: { toDialer?: number; toAcceptor?: number }): void {
    this.routes.set(address, { toDialer: extra.toDialer ?? 0, toAcceptor: extra.toAcceptor ?? 0 });
  }

  routeOf(address: string): { toDialer: number; toAcceptor: number } {
    return this.routes.get(address) ?? { toDialer: 0, toAcceptor: 0 };
  }

  delayOf(a: MemoryHost, b: MemoryHost): number {
    return this.delays.get(pair(a, b)) ?? this.defaultDelayMs;
  }

  /** Sends a packet from one socket to its other end, through partitions, drops and delays. */
  transmit(from: MemorySocket, packet: Packet): void {
    const to = from.remote;
    if (!to) return;
    const key = dir(from.host, to.host);
    if (packet.kind === 'frame' && this.drops.has(key)) return;
    const send = () => {
      const delay = this.delayOf(from.host, to.host) + from.extraDelayMs;
      const at = Math.max(this.time.now + delay, this.lastDelivery.get(from) ?? 0);
      this.lastDelivery.set(from, at);
      to.host.at(at, () => to.receive(packet));
    };
    if (this.isPartitioned(from.host, to.host)) {
      const held = this.heldByPartition.get(key) ?? [];
      held.push(send);
      this.heldByPartition.set(key, held);
    } else send();
  }
}

const pair = (a: MemoryHost, b: MemoryHost) => [a.name, b.name].sort().join('|');
const dir = (from: MemoryHost, to: MemoryHost) => `${from.name}>${to.name}`;

/** A simulated process: virtual clock and timers (Host), an address, and a transport. */
export class MemoryHost extends Host {
  readonly address: string;
  readonly transport: MemoryTransport;
  /** Connections to this host are refused (nothing listens, or a firewall rejects). */
  refusing = false;

  constructor(
    readonly net: MemoryNetwork,
    name: string,
    readonly ip: string,
  ) {
    super(net.time, name);
    this.address = `${ip}:${MEMORY_PORT}`;
    this.transport = new MemoryTransport(this);
  }
}

/** One end of a pipe. */
export class MemorySocket implements FrameSocket {
  remote: MemorySocket | undefined;
  private state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting';
  private readonly frameListeners = new Set<(data: Buffer, binary: boolean) => void>();
  private readonly closeListeners = new Set<(code: number, reason: string) => void>();
  /** Called once the connection is open (the dialer sends its hello then). */
  onOpen: (() => void) | undefined;
  /** Added to the network's delay for what this end sends (see MemoryNetwork.route). */
  extraDelayMs = 0;

  constructor(
    readonly net: MemoryNetwork,
    readonly host: MemoryHost,
  ) {}

  get isOpen(): boolean {
    return this.state === 'open';
  }

  get isClosed(): boolean {
    return this.state === 'closed';
  }

  opened(): void {
    if (this.state !== 'connecting') return;
    this.state = 'open';
    this.onOpen?.();
  }

  send(frame: Frame): void {
    if (this.state !== 'open') return;
    const data = typeof frame.data === 'string' ? Buffer.from(frame.data) : Buffer.from(frame.data);
    this.net.transmit(this, { kind: 'frame', data, binary: frame.binary });
  }

  close(code: number, reason: string): void {
    if (this.state === 'connecting') {
      this.terminate();
      return;
    }
    if (this.state !== 'open') return;
    this.state = 'closing';
    this.net.transmit(this, { kind: 'close', code, reason: reason.slice(0, 120) });
  }

  terminate(): void {
    if (this.state === 'closed') return;
    this.net.transmit(this, { kind: 'reset' });
    // As ws does: the close event comes on a later turn of the event loop.
    this.host.at(this.net.time.now, () => this.ended(1006, ''));
    this.state = 'closed';
  }

  /** The connection could not be made (refused) or was reset before it opened. */
  refused(): void {
    if (this.state === 'closed') return;
    this.ended(1006, 'connect ECONNREFUSED');
  }

  onFrame(listener: (data: Buffer, binary: boolean) => void): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  onClose(listener: (code: number, reason: string) => void): () => void {
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  receive(packet: Packet): void {
    if (packet.kind === 'frame') {
      if (this.state !== 'open') return;
      // A copy: a listener added while this frame is delivered (the Link, at the end of the
      // handshake) gets only the frames after it, as with an EventEmitter.
      for (const l of [...this.frameListeners]) l(packet.data, packet.binary);
      return;
    }
    if (packet.kind === 'reset') {
      this.ended(1006, '');
      return;
    }
    // A close frame: answer it (as ws does) unless we sent ours first, then the connection is over.
    if (this.state === 'open') this.net.transmit(this, packet);
    this.ended(packet.code, packet.reason);
  }

  /** Reports the end once: the listeners are dropped as they are told. */
  private ended(code: number, reason: string): void {
    this.state = 'closed';
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const l of listeners) l(code, reason);
  }
}

/** The Transport of one MemoryHost. */
export class MemoryTransport implements Transport {
  private acceptor: Acceptor | undefined;
  private readonly accepted = new Set<MemorySocket>();
  /** Connections accepted, ever (a test's view of inbound attempts). */
  acceptedCount = 0;
  /** Dials started, ever. */
  dialCount = 0;

  constructor(readonly host: MemoryHost) {}

  get listening(): boolean {
    return this.acceptor !== undefined;
  }

  listen(acceptor: Acceptor): void {
    this.acceptor = acceptor;
  }

  close(): void {
    this.acceptor = undefined;
    for (const socket of this.accepted) socket.terminate();
    this.accepted.clear();
  }

  dial(address: string, opts: HandshakeOptions): PendingLink {
    this.dialCount++;
    const { host } = this;
    const net = host.net;
    const socket = new MemorySocket(net, host);
    const machine = new DialerHandshake(opts, address);
    const running = runHandshake(socket, machine, {
      scheduler: host.scheduler,
      ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    });
    socket.onOpen = () => socket.send(machine.hello);
    const target = net.resolve(address);
    const now = net.time.now;
    if (!target) {
      host.at(now + net.defaultDelayMs, () => socket.refused());
      return running;
    }
    // A partition loses the SYN: the dial hangs until its handshake timeout (or an abort).
    if (net.isPartitioned(host, target)) return running;
    const delay = net.delayOf(host, target);
    // The target's kernel answers even while the process is paused: refuse, or accept the
    // connection; the process sees it (and its frames) when it runs.
    net.time.at(now + delay, () => {
      if (socket.isClosed) return;
      if (target.refusing || !target.transport.listening) {
        host.at(net.time.now + delay, () => socket.refused());
        return;
      }
      const remote = new MemorySocket(net, target);
      const route = net.routeOf(address);
      socket.extraDelayMs = route.toAcceptor;
      remote.extraDelayMs = route.toDialer;
      remote.remote = socket;
      socket.remote = remote;
      remote.opened();
      target.at(net.time.now, () => target.transport.accept(remote, host.ip));
      host.at(net.time.now + delay, () => socket.opened());
    });
    return running;
  }

  /** A connection reached this host's process: run the acceptor's handshake on it. */
  private accept(socket: MemorySocket, remoteIp: string): void {
    const acceptor = this.acceptor;
    if (!acceptor || socket.isClosed) {
      socket.terminate();
      return;
    }
    this.acceptedCount++;
    this.accepted.add(socket);
    socket.onClose(() => this.accepted.delete(socket));
    const running = runHandshake(socket, new AcceptorHandshake(acceptor.options(), remoteIp), {
      scheduler: this.host.scheduler,
    });
    acceptor.inbound(running, remoteIp);
  }
}
