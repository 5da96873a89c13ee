/**
 * The WebSocket transport of the mesh: the acceptor side (an upgrade on our own HTTP server at
 * /mesh) and the dialer side, each running its half of the handshake (handshake.ts) over a
 * WebSocket, and the sealed Link (link.ts) both produce. A handshake either resolves to an
 * authenticated Link or rejects with a HandshakeError carrying the close code; it never throws into
 * the process.
 *
 * Before authentication a socket is bounded: mesh-server.ts admits it (admission.ts) or refuses it
 * with HTTP 503, and counts what it sends; every handshake frame over MAX_HANDSHAKE_FRAME_BYTES
 * closes it (1009) before parsing, and the whole handshake has HANDSHAKE_TIMEOUT_MS. After
 * authentication every frame is sealed (link.ts, seal.ts); the node above sees plaintext messages.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import type { Refusal } from './admission.js';
import { type MeshClock, type Scheduler, systemClock, systemScheduler } from './clock.js';
import {
  AcceptorHandshake,
  DialerHandshake,
  type Frame,
  HandshakeError,
  type HandshakeOptions,
} from './handshake.js';
import type { Link } from './link.js';
import { MAX_PREAUTH_BYTES, MeshServer, normaliseIp, takePreAuth } from './mesh-server.js';
import { CLOSE, HANDSHAKE_TIMEOUT_MS, MAX_MESSAGE_BYTES, MESH_PATH } from './protocol.js';
import type { Acceptor, FrameSocket, PendingLink, Transport } from './transport-api.js';
import { runHandshake } from './transport-api.js';

// The handshake's and the link layer's names, for the node and the tests that import them from here.
export {
  type Established,
  HandshakeError,
  type HandshakeOptions,
  joinHostPort,
  type SelfInfo,
} from './handshake.js';
export { type Direction, Link, newWireCounters, type Session, type WireCounters } from './link.js';
export {
  createMeshServer,
  MAX_PREAUTH_BYTES,
  MeshServer,
  type MeshServerOptions,
  normaliseIp,
} from './mesh-server.js';

const CLOSE_GRACE_MS = 2_000;

/** Closes with a code; terminates should the other side not answer the close within the grace. */
export function closeSocket(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code, reason.slice(0, 120));
  } catch {
    ws.terminate();
    return;
  }
  const timer = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
  timer.unref();
  ws.once('close', () => clearTimeout(timer));
}

/** A WebSocket as a FrameSocket. */
export class WebSocketFrames implements FrameSocket {
  constructor(readonly ws: WebSocket) {
    // 'close' follows every 'error' in ws; the close handlers report it (a handshake fails at once).
    ws.on('error', () => {});
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(frame: Frame): void {
    this.ws.send(frame.data, { binary: frame.binary });
  }

  close(code: number, reason: string): void {
    if (this.ws.readyState === WebSocket.OPEN) closeSocket(this.ws, code, reason);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }

  terminate(): void {
    this.ws.terminate();
  }

  onFrame(listener: (data: Buffer, binary: boolean) => void): () => void {
    const l = (data: WebSocket.RawData, isBinary: boolean) => listener(data as Buffer, isBinary);
    this.ws.on('message', l);
    return () => this.ws.off('message', l);
  }

  onClose(listener: (code: number, reason: string) => void): () => void {
    const l = (code: number, reason: Buffer) => listener(code, reason.toString());
    this.ws.on('close', l);
    return () => this.ws.off('close', l);
  }
}

/**
 * Most links carry no heartbeats (watch-ring.ts): the kernel's TCP keepalive probes an idle one,
 * at no cost to the event loop, and ends a connection whose peer vanished without a FIN (a host
 * that lost power, a NAT that forgot it): libuv probes after this much idle time, then every
 * second, ten times.
 */
export const MESH_KEEPALIVE_MS = 10_000;

function keepAlive(socket: { setKeepAlive?: (enable: boolean, delay: number) => unknown }): void {
  socket.setKeepAlive?.(true, MESH_KEEPALIVE_MS);
}

/** The acceptor's half on a socket our MeshServer upgraded: its admission ticket is settled here. */
export function acceptWebSocket(
  ws: WebSocket,
  req: IncomingMessage,
  opts: HandshakeOptions,
  scheduler: Scheduler = systemScheduler,
): PendingLink {
  const admitted = takePreAuth(ws);
  keepAlive(req.socket);
  const socket = new WebSocketFrames(ws);
  const machine = new AcceptorHandshake(opts, normaliseIp(req.socket.remoteAddress ?? 'unknown'));
  const running = runHandshake(socket, machine, {
    scheduler,
    ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
    onSettled: (ok) => {
      if (!admitted) return;
      admitted.stopCounting();
      admitted.ticket.settle(ok);
    },
  });
  ws.on('error', (err) => running.fail(new HandshakeError(1006, err.message)));
  if (admitted) {
    const overflow = () =>
      running.fail(
        new HandshakeError(CLOSE.TOO_LARGE, `more than ${MAX_PREAUTH_BYTES} bytes before authentication`),
      );
    if (admitted.overflowed) overflow();
    else admitted.onOverflow = overflow;
  }
  return running;
}

/** The dialer's half: connect to ws://address/mesh, send hello once open, run the handshake. */
export function dialWebSocket(
  address: string,
  opts: HandshakeOptions,
  scheduler: Scheduler = systemScheduler,
): PendingLink {
  const timeoutMs = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const ws = new WebSocket(`ws://${address}${MESH_PATH}`, {
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    handshakeTimeout: timeoutMs,
    followRedirects: false,
  });
  const socket = new WebSocketFrames(ws);
  const machine = new DialerHandshake(opts, address);
  const running = runHandshake(socket, machine, { scheduler, timeoutMs });
  ws.on('error', (err) => running.fail(new HandshakeError(1006, err.message)));
  ws.once('upgrade', (res) => keepAlive(res.socket));
  ws.once('open', () => socket.send(machine.hello));
  ws.once('unexpected-response', (_req, res) =>
    running.fail(new HandshakeError(1006, `HTTP ${res.statusCode} instead of a WebSocket upgrade`)),
  );
  return running;
}

/** The acceptor's half as a promise (tests and tools). */
export function acceptHandshake(ws: WebSocket, req: IncomingMessage, opts: HandshakeOptions): Promise<Link> {
  return acceptWebSocket(ws, req, opts).link;
}

/** The dialer's half as a promise (tests and tools). */
export function dialHandshake(address: string, opts: HandshakeOptions): Promise<Link> {
  return dialWebSocket(address, opts).link;
}

export interface WebSocketTransportOptions {
  /** Where refused upgrades are counted, by reason (the node's counters). */
  refused?: Record<Refusal, number>;
  clock?: MeshClock;
  scheduler?: Scheduler;
}

/**
 * The production Transport: dials ws://address/mesh, and accepts the upgrades the HTTP server routes
 * to handleUpgrade while listening (refused with 503 otherwise).
 */
export class WebSocketTransport implements Transport {
  private server: MeshServer | undefined;
  private acceptor: Acceptor | undefined;
  private readonly scheduler: Scheduler;

  constructor(private readonly opts: WebSocketTransportOptions = {}) {
    this.scheduler = opts.scheduler ?? systemScheduler;
  }

  listen(acceptor: Acceptor): void {
    this.acceptor = acceptor;
    const clock = this.opts.clock ?? systemClock;
    this.server = new MeshServer({
      now: () => clock.now(),
      ...(this.opts.refused ? { refused: this.opts.refused } : {}),
    });
  }

  close(): void {
    for (const ws of this.server?.clients ?? []) ws.terminate();
    this.server?.close();
    this.server = undefined;
    this.acceptor = undefined;
  }

  dial(address: string, opts: HandshakeOptions): PendingLink {
    return dialWebSocket(address, opts, this.scheduler);
  }

  /** Takes an HTTP upgrade on /mesh; refuses it with 503 while not listening. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const { server, acceptor } = this;
    if (!server || !acceptor) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\n');
      return;
    }
    server.handleUpgrade(req, socket, head, (ws) => {
      const pending = acceptWebSocket(ws, req, acceptor.options(), this.scheduler);
      acceptor.inbound(pending, `${req.socket.remoteAddress ?? 'unknown'}`);
    });
  }
}
