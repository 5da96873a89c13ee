/**
 * The acceptor's WebSocket server of the mesh, shared with the HTTP server through handleUpgrade.
 * It bounds what an unauthenticated socket can cost: an upgrade beyond the admission limits
 * (admission.ts) is refused with HTTP 503 before any WebSocket exists, and an admitted socket may
 * send at most MAX_PREAUTH_BYTES until its handshake (transport.ts) settles its ticket.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import { WebSocketServer } from 'ws';
import {
  Admission,
  type AdmissionLimits,
  DEFAULT_ADMISSION_LIMITS,
  type Refusal,
  type Ticket,
} from './admission.js';
import { MAX_HANDSHAKE_FRAME_BYTES, MAX_MESSAGE_BYTES } from './protocol.js';

/** Bytes an unauthenticated socket may send in all: hello, auth and WebSocket framing, with room. */
export const MAX_PREAUTH_BYTES = 4 * MAX_HANDSHAKE_FRAME_BYTES;

/** An admitted, not yet authenticated socket: its slot and its byte budget. */
export interface PreAuth {
  ticket: Ticket;
  /** Called once when the byte budget is spent; set by acceptHandshake. */
  onOverflow?: () => void;
  overflowed: boolean;
  stopCounting: () => void;
}

/**
 * The admission state of sockets between upgrade and authentication. A WeakMap rather than a
 * property on the socket: ws owns that object, and an entry must not outlive it.
 */
const preAuth = new WeakMap<WebSocket, PreAuth>();

export interface MeshServerOptions {
  limits?: AdmissionLimits;
  now?: () => number;
  /** Where refused upgrades are counted, by reason (the node's counters). */
  refused?: Record<Refusal, number>;
}

/**
 * The WebSocket server of the mesh; it shares the HTTP server through `handleUpgrade`, and admits
 * an upgrade only within the limits of admission.ts.
 */
export class MeshServer {
  readonly admission: Admission;
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
    clientTracking: true,
  });

  constructor(opts: MeshServerOptions = {}) {
    this.admission = new Admission(opts.limits ?? DEFAULT_ADMISSION_LIMITS, opts.now, opts.refused);
  }

  get clients(): Set<WebSocket> {
    return this.wss.clients;
  }

  /** Upgrades `socket` and hands the WebSocket to `onSocket`, or refuses it with 503. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, onSocket: (ws: WebSocket) => void): void {
    const verdict = this.admission.admit(normaliseIp(req.socket.remoteAddress ?? 'unknown'));
    if ('refused' in verdict) {
      const why = verdict.refused;
      socket.end(
        `HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nX-Mesh-Refused: ${why}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
        () => socket.destroy(),
      );
      return;
    }
    const { ticket } = verdict;
    // Any close before authentication is a failed handshake (settle is idempotent).
    socket.once('close', () => ticket.settle(false));
    const state: PreAuth = { ticket, overflowed: false, stopCounting: () => socket.off('data', count) };
    // `head` is not counted here: ws unshifts it into the socket, so it passes `count` as data.
    let bytes = 0;
    function count(chunk: Buffer) {
      bytes += chunk.length;
      if (bytes <= MAX_PREAUTH_BYTES || state.overflowed) return;
      state.overflowed = true;
      // Nothing more this socket says can matter: stop reading (what it still sends waits in the
      // kernel, not in our heap, and ws buffers nothing more), send the close frame (1009), then
      // FIN, so the other side learns the code at once; the close grace timer destroys the socket.
      socket.removeAllListeners('data');
      socket.pause();
      if (state.onOverflow) state.onOverflow();
      socket.end();
    }
    socket.on('data', count);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      preAuth.set(ws, state);
      onSocket(ws);
    });
  }

  close(): void {
    this.wss.close();
  }
}

export function createMeshServer(opts: MeshServerOptions = {}): MeshServer {
  return new MeshServer(opts);
}

/** The admission state of a socket this server upgraded, handed over once to its handshake. */
export function takePreAuth(ws: WebSocket): PreAuth | undefined {
  const state = preAuth.get(ws);
  preAuth.delete(ws);
  return state;
}

/** "::ffff:127.0.0.1" -> "127.0.0.1": IPv4 peers seen on a dual-stack socket. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
