/**
 * WebSocket I/O of the mesh: the acceptor side (an upgrade on our own HTTP server at /mesh) and the
 * dialer side, each running its half of the handshake of protocol.ts, and the Link both produce.
 * A handshake either resolves to an authenticated Link or rejects with a HandshakeError carrying the
 * close code; it never throws into the process.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { type HandshakeBinding, type Keyring, newNonce } from './auth.js';
import {
  CLOSE,
  decode,
  encode,
  HANDSHAKE_TIMEOUT_MS,
  type KillSwitchWireState,
  MAX_MESSAGE_BYTES,
  MESH_PATH,
  type Message,
  message,
  PROTOCOL_VERSION,
  ProtocolError,
} from './protocol.js';

export interface SelfInfo {
  peerId: string;
  bootId: string;
  cluster: string;
  listenPort: number;
}

export interface HandshakeOptions {
  self: SelfInfo;
  keyring: Keyring;
  killSwitch: () => KillSwitchWireState;
  timeoutMs?: number;
}

export class HandshakeError extends Error {
  constructor(
    readonly closeCode: number,
    message: string,
    /** The other side's id, when it said one. */
    readonly remotePeerId?: string,
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

export type Direction = 'in' | 'out';

/** An authenticated connection to one peer. Messages are buffered until `attach`. */
export class Link {
  private onMessage: ((msg: Message) => void) | undefined;
  private onClose: ((code: number, reason: string) => void) | undefined;
  private buffered: Message[] = [];
  private closed = false;
  closeCode: number | undefined;
  bytesOut = 0;

  constructor(
    readonly ws: WebSocket,
    readonly peerId: string,
    readonly bootId: string,
    readonly direction: Direction,
    /** host:port where the peer listens (dialed address, or its address + announced port). */
    readonly address: string,
    readonly remoteKillSwitch: KillSwitchWireState,
  ) {
    ws.on('message', (data, isBinary) => {
      if (this.closed) return;
      if (isBinary) return this.close(CLOSE.BAD_MESSAGE, 'binary frames are not part of the protocol');
      let msg: Message;
      try {
        msg = decode(data as Buffer);
      } catch (err) {
        const code = err instanceof ProtocolError ? err.closeCode : CLOSE.BAD_MESSAGE;
        return this.close(code, (err as Error).message.slice(0, 120));
      }
      if (this.onMessage) this.onMessage(msg);
      else this.buffered.push(msg);
    });
    ws.on('close', (code, reason) => this.finish(code, reason.toString()));
    ws.on('error', () => {
      // 'close' follows every 'error' in ws; the close handler reports it.
    });
  }

  attach(onMessage: (msg: Message) => void, onClose: (code: number, reason: string) => void): void {
    this.onMessage = onMessage;
    this.onClose = onClose;
    for (const msg of this.buffered.splice(0)) onMessage(msg);
    if (this.closed) onClose(this.closeCode ?? 1006, 'closed before attach');
  }

  send(msg: Message): boolean {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    const text = encode(msg);
    this.bytesOut += text.length;
    this.ws.send(text);
    return true;
  }

  /** Closes with a code; falls back to terminate() if the other side never answers the close. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    closeSocket(this.ws, code, reason);
    this.finish(code, reason);
  }

  /** Drops the TCP connection at once (a peer that stopped answering). */
  terminate(code: number, reason: string): void {
    if (this.closed) return;
    this.ws.terminate();
    this.finish(code, reason);
  }

  get isOpen(): boolean {
    return !this.closed;
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    this.onClose?.(code, reason);
  }
}

const CLOSE_GRACE_MS = 2_000;

function closeSocket(ws: WebSocket, code: number, reason: string): void {
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

/** The WebSocket server of the mesh; it shares the HTTP server through `handleUpgrade`. */
export function createMeshServer(): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
    clientTracking: true,
  });
}

/** Reads frames of a socket that is still in its handshake, one at a time. */
function nextMessages(ws: WebSocket, onMessage: (msg: Message) => void, fail: (err: HandshakeError) => void) {
  const listener = (data: WebSocket.RawData, isBinary: boolean) => {
    if (isBinary) return fail(new HandshakeError(CLOSE.BAD_MESSAGE, 'binary frame in handshake'));
    try {
      onMessage(decode(data as Buffer));
    } catch (err) {
      if (err instanceof ProtocolError) fail(new HandshakeError(err.closeCode, err.message));
      else if (err instanceof HandshakeError) fail(err);
      else fail(new HandshakeError(CLOSE.BAD_MESSAGE, (err as Error).message));
    }
  };
  ws.on('message', listener);
  return () => ws.off('message', listener);
}

function checkPeer(
  hello: { v: number; cluster: string; peerId: string },
  self: SelfInfo,
): HandshakeError | undefined {
  if (hello.v !== PROTOCOL_VERSION) {
    return new HandshakeError(
      CLOSE.BAD_VERSION,
      `protocol version ${hello.v}, expected ${PROTOCOL_VERSION}`,
      hello.peerId,
    );
  }
  if (hello.cluster !== self.cluster) {
    return new HandshakeError(
      CLOSE.WRONG_CLUSTER,
      `cluster "${hello.cluster}", expected "${self.cluster}"`,
      hello.peerId,
    );
  }
  if (hello.peerId === self.peerId)
    return new HandshakeError(CLOSE.SELF, 'connected to itself', hello.peerId);
  return undefined;
}

/** Runs one side's handshake on `ws` with the shared timeout, close and error handling. */
function runHandshake(
  ws: WebSocket,
  timeoutMs: number,
  body: (resolve: (link: Link) => void, fail: (err: HandshakeError) => void) => () => void,
): Promise<Link> {
  return new Promise<Link>((resolve, reject) => {
    let done = false;
    let stopReading = () => {};
    const finish = (err: HandshakeError | undefined, link?: Link) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stopReading();
      ws.off('close', onClose);
      if (err) {
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
          if (ws.readyState === WebSocket.OPEN) closeSocket(ws, err.closeCode, err.message);
          else ws.terminate();
        }
        reject(err);
      } else resolve(link as Link);
    };
    const timer = setTimeout(
      () => finish(new HandshakeError(CLOSE.HANDSHAKE_TIMEOUT, `handshake not finished in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const onClose = (code: number, reason: Buffer) =>
      finish(new HandshakeError(code, reason.toString() || `closed during handshake (${code})`));
    ws.on('close', onClose);
    ws.on('error', (err) => finish(new HandshakeError(1006, err.message)));
    stopReading = body(
      (link) => finish(undefined, link),
      (err) => finish(err),
    );
  });
}

/** The acceptor's half: hello -> challenge -> auth -> ready. */
export function acceptHandshake(ws: WebSocket, req: IncomingMessage, opts: HandshakeOptions): Promise<Link> {
  const nonce = newNonce();
  const remoteIp = normaliseIp(req.socket.remoteAddress ?? 'unknown');
  return runHandshake(ws, opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS, (resolve, fail) => {
    let binding: HandshakeBinding | undefined;
    let hello: Extract<Message, { type: 'hello' }> | undefined;
    return nextMessages(
      ws,
      (msg) => {
        if (!hello) {
          if (msg.type !== 'hello')
            throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected hello, got ${msg.type}`);
          const problem = checkPeer(msg, opts.self);
          if (problem) throw problem;
          hello = msg;
          binding = {
            cluster: opts.self.cluster,
            dialerId: msg.peerId,
            dialerBoot: msg.bootId,
            dialerNonce: msg.nonce,
            acceptorId: opts.self.peerId,
            acceptorBoot: opts.self.bootId,
            acceptorNonce: nonce,
          };
          ws.send(
            encode(
              message('challenge', {
                v: PROTOCOL_VERSION,
                cluster: opts.self.cluster,
                peerId: opts.self.peerId,
                bootId: opts.self.bootId,
                nonce,
                killSwitch: opts.killSwitch(),
                proof: opts.keyring.prove('acceptor', binding),
              }),
            ),
          );
          return;
        }
        if (msg.type !== 'auth')
          throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected auth, got ${msg.type}`);
        if (!opts.keyring.verify('dialer', binding as HandshakeBinding, msg.proof)) {
          throw new HandshakeError(CLOSE.AUTH_FAILED, 'authentication failed', hello.peerId);
        }
        ws.send(encode(message('ready', {})));
        const address = joinHostPort(remoteIp, hello.listenPort);
        resolve(new Link(ws, hello.peerId, hello.bootId, 'in', address, hello.killSwitch));
      },
      fail,
    );
  });
}

/** The dialer's half: connect, hello -> challenge -> auth -> ready. */
export function dialHandshake(address: string, opts: HandshakeOptions): Promise<Link> {
  const timeoutMs = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const ws = new WebSocket(`ws://${address}${MESH_PATH}`, {
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    handshakeTimeout: timeoutMs,
    followRedirects: false,
  });
  const nonce = newNonce();
  return runHandshake(ws, timeoutMs, (resolve, fail) => {
    let challenge: Extract<Message, { type: 'challenge' }> | undefined;
    ws.once('open', () =>
      ws.send(
        encode(
          message('hello', {
            v: PROTOCOL_VERSION,
            cluster: opts.self.cluster,
            peerId: opts.self.peerId,
            bootId: opts.self.bootId,
            nonce,
            listenPort: opts.self.listenPort,
            killSwitch: opts.killSwitch(),
          }),
        ),
      ),
    );
    ws.once('unexpected-response', (_req, res) =>
      fail(new HandshakeError(1006, `HTTP ${res.statusCode} instead of a WebSocket upgrade`)),
    );
    return nextMessages(
      ws,
      (msg) => {
        if (!challenge) {
          if (msg.type !== 'challenge')
            throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected challenge, got ${msg.type}`);
          const problem = checkPeer(msg, opts.self);
          if (problem) throw problem;
          challenge = msg;
          const binding: HandshakeBinding = {
            cluster: opts.self.cluster,
            dialerId: opts.self.peerId,
            dialerBoot: opts.self.bootId,
            dialerNonce: nonce,
            acceptorId: msg.peerId,
            acceptorBoot: msg.bootId,
            acceptorNonce: msg.nonce,
          };
          if (!opts.keyring.verify('acceptor', binding, msg.proof)) {
            throw new HandshakeError(CLOSE.AUTH_FAILED, 'authentication failed', msg.peerId);
          }
          ws.send(encode(message('auth', { proof: opts.keyring.prove('dialer', binding) })));
          return;
        }
        if (msg.type !== 'ready')
          throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected ready, got ${msg.type}`);
        resolve(new Link(ws, challenge.peerId, challenge.bootId, 'out', address, challenge.killSwitch));
      },
      fail,
    );
  });
}

/** "::ffff:127.0.0.1" -> "127.0.0.1": IPv4 peers seen on a dual-stack socket. */
export function normaliseIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
