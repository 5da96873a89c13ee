/**
 * WebSocket I/O of the mesh: the acceptor side (an upgrade on our own HTTP server at /mesh) and the
 * dialer side, each running its half of the handshake of protocol.ts, and the sealed Link both
 * produce. A handshake either resolves to an authenticated Link or rejects with a HandshakeError
 * carrying the close code; it never throws into the process.
 *
 * Before authentication a socket is bounded (admission.ts): upgrades beyond the pending caps or
 * from an address whose handshakes keep failing are refused with HTTP 503 before any WebSocket
 * exists; an admitted socket may receive only MAX_PREAUTH_BYTES in all and frames of at most
 * MAX_HANDSHAKE_FRAME_BYTES (close 1009 before parsing), for HANDSHAKE_TIMEOUT_MS.
 * After authentication every frame is sealed (seal.ts); the node above sees plaintext messages.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import {
  Admission,
  type AdmissionLimits,
  DEFAULT_ADMISSION_LIMITS,
  type Refusal,
  type Ticket,
} from './admission.js';
import { type Keyring, type NonceCache, newNonce, transcriptHash } from './auth.js';
import {
  announcedRange,
  CLOSE,
  decode,
  decodeTolerant,
  encode,
  fitExtra,
  HANDSHAKE_TIMEOUT_MS,
  type KillSwitchWireState,
  MAX_HANDSHAKE_FRAME_BYTES,
  MAX_MESSAGE_BYTES,
  MESH_PATH,
  type Message,
  message,
  negotiateVersion,
  ProtocolError,
  SUPPORTED_VERSIONS,
  type VersionRange,
} from './protocol.js';
import { deriveSessionKeys, SEAL_OVERHEAD, SealedChannel } from './seal.js';

/** Bytes an unauthenticated socket may send in all: hello, auth and WebSocket framing, with room. */
export const MAX_PREAUTH_BYTES = 4 * MAX_HANDSHAKE_FRAME_BYTES;

export interface SelfInfo {
  peerId: string;
  bootId: string;
  cluster: string;
  listenPort: number;
}

/** What the link layer dropped rather than closing the link for: a newer peer's additions. */
export interface WireCounters {
  /** Messages of a type this version does not know, by type. */
  unknownTypes: Record<string, number>;
  /** Unknown enum values and over-budget subsystem data dropped from messages. */
  ignoredValues: number;
}

export function newWireCounters(): WireCounters {
  return { unknownTypes: {}, ignoredValues: 0 };
}

export interface HandshakeOptions {
  self: SelfInfo;
  keyring: Keyring;
  nonces: NonceCache;
  killSwitch: () => KillSwitchWireState;
  timeoutMs?: number;
  /** Protocol versions spoken; default SUPPORTED_VERSIONS (tests play an older or newer peer). */
  versions?: VersionRange;
  /** Where links count what they ignored; default a fresh object per link. */
  counters?: WireCounters;
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

/** The sealed session of a link: one channel per direction and the version both speak. */
export interface Session {
  version: number;
  out: SealedChannel;
  in: SealedChannel;
}

/** An authenticated, sealed connection to one peer. Messages are buffered until `attach`. */
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
    private readonly session: Session,
    counters: WireCounters = newWireCounters(),
  ) {
    ws.on('message', (data, isBinary) => {
      if (this.closed) return;
      const frame = data as Buffer;
      const plain = isBinary ? session.in.open(frame) : undefined;
      if (!plain) return this.close(CLOSE.UNSEALED, 'a frame did not open (tampered, replayed or unsealed)');
      let decoded: ReturnType<typeof decodeTolerant>;
      try {
        decoded = decodeTolerant(plain);
      } catch (err) {
        const code = err instanceof ProtocolError ? err.closeCode : CLOSE.BAD_MESSAGE;
        return this.close(code, (err as Error).message.slice(0, 120));
      }
      if (decoded.kind === 'unknown-type') {
        // A newer peer's message: counted and ignored, so one peer can upgrade ahead of the fleet.
        counters.unknownTypes[decoded.type] = (counters.unknownTypes[decoded.type] ?? 0) + 1;
        return;
      }
      counters.ignoredValues += decoded.ignored;
      if (this.onMessage) this.onMessage(decoded.msg);
      else this.buffered.push(decoded.msg);
    });
    ws.on('close', (code, reason) => this.finish(code, reason.toString()));
    ws.on('error', () => {
      // 'close' follows every 'error' in ws; the close handler reports it.
    });
  }

  /** The protocol version both sides speak on this link. */
  get version(): number {
    return this.session.version;
  }

  attach(onMessage: (msg: Message) => void, onClose: (code: number, reason: string) => void): void {
    this.onMessage = onMessage;
    this.onClose = onClose;
    for (const msg of this.buffered.splice(0)) onMessage(msg);
    if (this.closed) onClose(this.closeCode ?? 1006, 'closed before attach');
  }

  send(msg: Message): boolean {
    return this.sendBytes(Buffer.from(encode(withinBudget(msg))));
  }

  /**
   * Seals and sends bytes as one frame, whatever they hold. For send() and for tests that play a
   * newer or a broken peer; nothing else builds frames.
   */
  sendBytes(plain: Buffer): boolean {
    if (this.closed || this.ws.readyState !== WebSocket.OPEN) return false;
    if (plain.length + SEAL_OVERHEAD > MAX_MESSAGE_BYTES) return false;
    this.bytesOut += plain.length + SEAL_OVERHEAD;
    this.ws.send(this.session.out.seal(plain), { binary: true });
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

/** A status whose subsystem data is over its budget goes out without the entries that do not fit. */
function withinBudget(msg: Message): Message {
  if (msg.type !== 'status' || !msg.summary.extra) return msg;
  const { extra, dropped } = fitExtra(msg.summary.extra);
  return dropped === 0 ? msg : message('status', { summary: { ...msg.summary, extra } });
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

/** An admitted, not yet authenticated socket: its slot and its byte budget. */
interface PreAuth {
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

/**
 * Reads the frames of a socket that is still in its handshake, one at a time; a frame over
 * MAX_HANDSHAKE_FRAME_BYTES fails the handshake with 1009 before it is parsed.
 */
function handshakeFrames(
  ws: WebSocket,
  onFrame: (data: Buffer, isBinary: boolean) => void,
  fail: (err: HandshakeError) => void,
) {
  const listener = (data: WebSocket.RawData, isBinary: boolean) => {
    const frame = data as Buffer;
    if (frame.length > MAX_HANDSHAKE_FRAME_BYTES) {
      return fail(new HandshakeError(CLOSE.TOO_LARGE, `handshake frame of ${frame.length} bytes`));
    }
    try {
      onFrame(frame, isBinary);
    } catch (err) {
      if (err instanceof ProtocolError) fail(new HandshakeError(err.closeCode, err.message));
      else if (err instanceof HandshakeError) fail(err);
      else fail(new HandshakeError(CLOSE.BAD_MESSAGE, (err as Error).message));
    }
  };
  ws.on('message', listener);
  return () => ws.off('message', listener);
}

/** A plaintext handshake message; binary frames are not part of the handshake. */
function textMessage(data: Buffer, isBinary: boolean): Message {
  if (isBinary) throw new HandshakeError(CLOSE.BAD_MESSAGE, 'binary frame in handshake');
  return decode(data);
}

/** The other side's announcement checked against ours. @returns the version to speak. */
function checkPeer(
  hello: { v: number; vMin?: number | undefined; cluster: string; peerId: string },
  self: SelfInfo,
  versions: VersionRange,
): number {
  const theirs = announcedRange(hello);
  const version = negotiateVersion(versions, theirs);
  if (version === undefined) {
    throw new HandshakeError(
      CLOSE.BAD_VERSION,
      `protocol versions ${theirs.min}-${theirs.max}, this peer speaks ${versions.min}-${versions.max}`,
      hello.peerId,
    );
  }
  if (hello.cluster !== self.cluster) {
    throw new HandshakeError(
      CLOSE.WRONG_CLUSTER,
      `cluster "${hello.cluster}", expected "${self.cluster}"`,
      hello.peerId,
    );
  }
  if (hello.peerId === self.peerId) throw new HandshakeError(CLOSE.SELF, 'connected to itself', hello.peerId);
  return version;
}

/**
 * A message as its receiver will parse it: ws sends strings as UTF-8, which replaces lone
 * surrogates, and the transcript must hash what both sides see.
 */
function asReceived(msg: Message): object {
  return JSON.parse(Buffer.from(encode(msg)).toString('utf8'));
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
    const admitted = preAuth.get(ws);
    const finish = (err: HandshakeError | undefined, link?: Link) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stopReading();
      ws.off('close', onClose);
      if (admitted) {
        admitted.stopCounting();
        admitted.ticket.settle(err === undefined);
        preAuth.delete(ws);
      }
      if (err) {
        if (ws.readyState === WebSocket.OPEN) closeSocket(ws, err.closeCode, err.message);
        else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
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
    if (admitted) {
      const overflow = () =>
        finish(
          new HandshakeError(CLOSE.TOO_LARGE, `more than ${MAX_PREAUTH_BYTES} bytes before authentication`),
        );
      if (admitted.overflowed) overflow();
      else admitted.onOverflow = overflow;
    }
    stopReading = body(
      (link) => finish(undefined, link),
      (err) => finish(err),
    );
  });
}

/** The acceptor's half: hello -> challenge -> auth -> ready (sealed). */
export function acceptHandshake(ws: WebSocket, req: IncomingMessage, opts: HandshakeOptions): Promise<Link> {
  const nonce = newNonce();
  const remoteIp = normaliseIp(req.socket.remoteAddress ?? 'unknown');
  const versions = opts.versions ?? SUPPORTED_VERSIONS;
  return runHandshake(ws, opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS, (resolve, fail) => {
    let hello: Extract<Message, { type: 'hello' }> | undefined;
    let transcript: Buffer | undefined;
    let version = 0;
    return handshakeFrames(
      ws,
      (data, isBinary) => {
        const msg = textMessage(data, isBinary);
        if (!hello) {
          if (msg.type !== 'hello')
            throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected hello, got ${msg.type}`);
          version = checkPeer(msg, opts.self, versions);
          if (!opts.nonces.remember(msg.nonce)) {
            throw new HandshakeError(CLOSE.REPLAYED, 'nonce seen before', msg.peerId);
          }
          hello = msg;
          const challenge = message('challenge', {
            v: versions.max,
            vMin: versions.min,
            cluster: opts.self.cluster,
            peerId: opts.self.peerId,
            bootId: opts.self.bootId,
            nonce,
            killSwitch: opts.killSwitch(),
            proof: '',
          });
          // The proof covers the challenge (its proof aside) as the dialer will parse it.
          transcript = transcriptHash(hello, asReceived(challenge));
          ws.send(encode({ ...challenge, proof: opts.keyring.prove('acceptor', transcript) }));
          return;
        }
        if (msg.type !== 'auth')
          throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected auth, got ${msg.type}`);
        const secret = opts.keyring.verify('dialer', transcript as Buffer, msg.proof);
        if (secret === undefined) {
          throw new HandshakeError(CLOSE.AUTH_FAILED, 'authentication failed', hello.peerId);
        }
        const keys = deriveSessionKeys(opts.keyring.secret(secret), transcript as Buffer);
        const session: Session = {
          version,
          out: new SealedChannel(keys.acceptorToDialer),
          in: new SealedChannel(keys.dialerToAcceptor),
        };
        const address = joinHostPort(remoteIp, hello.listenPort);
        const link = new Link(
          ws,
          hello.peerId,
          hello.bootId,
          'in',
          address,
          hello.killSwitch,
          session,
          opts.counters,
        );
        // The first sealed frame: the dialer learns that both sides derived the same keys.
        link.send(message('ready', {}));
        resolve(link);
      },
      fail,
    );
  });
}
/** The dialer's half: connect, hello -> challenge -> auth -> ready (sealed). */
export function dialHandshake(address: string, opts: HandshakeOptions): Promise<Link> {
  const timeoutMs = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const versions = opts.versions ?? SUPPORTED_VERSIONS;
  const ws = new WebSocket(`ws://${address}${MESH_PATH}`, {
    perMessageDeflate: false,
    maxPayload: MAX_MESSAGE_BYTES,
    handshakeTimeout: timeoutMs,
    followRedirects: false,
  });
  const hello = message('hello', {
    v: versions.max,
    vMin: versions.min,
    cluster: opts.self.cluster,
    peerId: opts.self.peerId,
    bootId: opts.self.bootId,
    nonce: newNonce(),
    listenPort: opts.self.listenPort,
    killSwitch: opts.killSwitch(),
  });
  return runHandshake(ws, timeoutMs, (resolve, fail) => {
    let challenge: Extract<Message, { type: 'challenge' }> | undefined;
    let session: Session | undefined;
    ws.once('open', () => ws.send(encode(hello)));
    ws.once('unexpected-response', (_req, res) =>
      fail(new HandshakeError(1006, `HTTP ${res.statusCode} instead of a WebSocket upgrade`)),
    );
    return handshakeFrames(
      ws,
      (data, isBinary) => {
        if (!challenge) {
          const msg = textMessage(data, isBinary);
          if (msg.type !== 'challenge')
            throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected challenge, got ${msg.type}`);
          const version = checkPeer(msg, opts.self, versions);
          const transcript = transcriptHash(asReceived(hello), msg);
          const secret = opts.keyring.verify('acceptor', transcript, msg.proof);
          if (secret === undefined) {
            throw new HandshakeError(CLOSE.AUTH_FAILED, 'authentication failed', msg.peerId);
          }
          challenge = msg;
          // Answer with the secret that verified: both sides then derive keys from the same one.
          const keys = deriveSessionKeys(opts.keyring.secret(secret), transcript);
          session = {
            version,
            out: new SealedChannel(keys.dialerToAcceptor),
            in: new SealedChannel(keys.acceptorToDialer),
          };
          ws.send(encode(message('auth', { proof: opts.keyring.prove('dialer', transcript, secret) })));
          return;
        }
        const plain = isBinary ? session?.in.open(data) : undefined;
        if (!plain) throw new HandshakeError(CLOSE.UNSEALED, 'ready did not open', challenge.peerId);
        const msg = decode(plain);
        if (msg.type !== 'ready')
          throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected ready, got ${msg.type}`);
        const c = challenge;
        resolve(
          new Link(ws, c.peerId, c.bootId, 'out', address, c.killSwitch, session as Session, opts.counters),
        );
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
