/**
 * WebSocket I/O of the mesh: the acceptor side (an upgrade on our own HTTP server at /mesh) and the
 * dialer side, each running its half of the handshake of protocol.ts, and the sealed Link both
 * produce. A handshake either resolves to an authenticated Link or rejects with a HandshakeError
 * carrying the close code; it never throws into the process.
 *
 * Before authentication a socket is bounded: mesh-server.ts admits it (admission.ts) or refuses it
 * with HTTP 503, and counts what it sends; here every handshake frame over
 * MAX_HANDSHAKE_FRAME_BYTES closes it (1009) before parsing, and the whole handshake has
 * HANDSHAKE_TIMEOUT_MS. After authentication every frame is sealed (link.ts, seal.ts); the node
 * above sees plaintext messages.
 */
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { type Keyring, newNonce, transcriptHash } from './auth.js';
import { closeSocket, Link, type Session, type WireCounters } from './link.js';
import { MAX_PREAUTH_BYTES, normaliseIp, takePreAuth } from './mesh-server.js';
import {
  announcedRange,
  CLOSE,
  decode,
  encode,
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
import { deriveSessionKeys, SealedChannel } from './seal.js';

// The link layer's names, for the node and the tests that import them from here.
export { type Direction, Link, newWireCounters, type Session, type WireCounters } from './link.js';
export {
  createMeshServer,
  MAX_PREAUTH_BYTES,
  MeshServer,
  type MeshServerOptions,
  normaliseIp,
} from './mesh-server.js';

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
  /** Protocol versions spoken; default SUPPORTED_VERSIONS (tests play an older or newer peer). */
  versions?: VersionRange;
  /** Where links count what they ignored; default a fresh object per link. */
  counters?: WireCounters;
  /** The dialer's nonce; default a fresh random one (tests replay a chosen one). */
  nonce?: string;
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
    const admitted = takePreAuth(ws);
    const finish = (err: HandshakeError | undefined, link?: Link) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stopReading();
      ws.off('close', onClose);
      if (admitted) {
        admitted.stopCounting();
        admitted.ticket.settle(err === undefined);
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
    nonce: opts.nonce ?? newNonce(),
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

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
