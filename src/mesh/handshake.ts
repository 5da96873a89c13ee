/**
 * The mesh handshake as two pure state machines, one per side: each takes the next frame the other
 * side sent and answers with the frame to send back, the established session, or a HandshakeError
 * (thrown) carrying the close code. No sockets and no timers: transport.ts runs them over WebSocket
 * and memory-transport.ts over in-memory pipes, so both speak byte for byte the same handshake.
 *
 *   dialer                         acceptor
 *   hello (text)          ->
 *                         <-       challenge (text, acceptor's proof)
 *   auth (text, proof)    ->
 *                         <-       ready (the first sealed frame)
 */
import { type Keyring, newNonce, transcriptHash } from './auth.js';
import { newWireCounters, type Session, type WireCounters } from './link.js';
import {
  announcedRange,
  CLOSE,
  decode,
  encode,
  type KillSwitchWireState,
  MAX_HANDSHAKE_FRAME_BYTES,
  type Message,
  type MessageOf,
  message,
  negotiateVersion,
  ProtocolError,
  SUPPORTED_VERSIONS,
  type VersionRange,
} from './protocol.js';
import { deriveSessionKeys, SealedChannel } from './seal.js';

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

/** One frame as a transport carries it: text (the plaintext handshake) or binary (sealed). */
export interface Frame {
  data: Buffer | string;
  binary: boolean;
}

/** What a completed handshake knows about the other side, and the sealed session with it. */
export interface Established {
  peerId: string;
  bootId: string;
  direction: 'in' | 'out';
  /** host:port where the peer listens (dialed address, or its address + announced port). */
  address: string;
  remoteKillSwitch: KillSwitchWireState;
  session: Session;
  counters: WireCounters;
}

/** The answer to one frame: what to send back, and the session once the handshake is complete. */
export interface Step {
  reply?: Frame;
  established?: Established;
}

/** A handshake side: fed every frame received until it returns `established` (or throws). */
export interface HandshakeMachine {
  receive(data: Buffer, binary: boolean): Step;
}

/** A frame over MAX_HANDSHAKE_FRAME_BYTES fails the handshake with 1009 before it is parsed. */
function checkSize(data: Buffer): void {
  if (data.length > MAX_HANDSHAKE_FRAME_BYTES) {
    throw new HandshakeError(CLOSE.TOO_LARGE, `handshake frame of ${data.length} bytes`);
  }
}

/** A plaintext handshake message; binary frames are not part of the handshake. */
function textMessage(data: Buffer, isBinary: boolean): Message {
  if (isBinary) throw new HandshakeError(CLOSE.BAD_MESSAGE, 'binary frame in handshake');
  return decode(data);
}

/** Any failure of a step as the HandshakeError that closes the socket. */
export function asHandshakeError(err: unknown): HandshakeError {
  if (err instanceof HandshakeError) return err;
  if (err instanceof ProtocolError) return new HandshakeError(err.closeCode, err.message);
  return new HandshakeError(CLOSE.BAD_MESSAGE, (err as Error).message);
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

export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The acceptor's half: hello -> challenge, auth -> ready (sealed). `remoteIp` is the socket's. */
export class AcceptorHandshake implements HandshakeMachine {
  private readonly nonce = newNonce();
  private readonly versions: VersionRange;
  private hello: MessageOf<'hello'> | undefined;
  private transcript: Buffer | undefined;
  private version = 0;

  constructor(
    private readonly opts: HandshakeOptions,
    private readonly remoteIp: string,
  ) {
    this.versions = opts.versions ?? SUPPORTED_VERSIONS;
  }

  receive(data: Buffer, isBinary: boolean): Step {
    checkSize(data);
    const msg = textMessage(data, isBinary);
    const { opts, versions } = this;
    if (!this.hello) {
      if (msg.type !== 'hello')
        throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected hello, got ${msg.type}`);
      this.version = checkPeer(msg, opts.self, versions);
      this.hello = msg;
      const challenge = message('challenge', {
        v: versions.max,
        vMin: versions.min,
        cluster: opts.self.cluster,
        peerId: opts.self.peerId,
        bootId: opts.self.bootId,
        nonce: this.nonce,
        killSwitch: opts.killSwitch(),
        proof: '',
      });
      // The proof covers the challenge (its proof aside) as the dialer will parse it.
      this.transcript = transcriptHash(msg, asReceived(challenge));
      const proof = opts.keyring.prove('acceptor', this.transcript);
      return { reply: { data: encode({ ...challenge, proof }), binary: false } };
    }
    const hello = this.hello;
    if (msg.type !== 'auth') throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected auth, got ${msg.type}`);
    const transcript = this.transcript as Buffer;
    const secret = opts.keyring.verify('dialer', transcript, msg.proof);
    if (secret === undefined) {
      throw new HandshakeError(CLOSE.AUTH_FAILED, 'authentication failed', hello.peerId);
    }
    const keys = deriveSessionKeys(opts.keyring.secret(secret), transcript);
    const session: Session = {
      version: this.version,
      out: new SealedChannel(keys.acceptorToDialer),
      in: new SealedChannel(keys.dialerToAcceptor),
    };
    // The first sealed frame: the dialer learns that both sides derived the same keys.
    const ready = session.out.seal(Buffer.from(encode(message('ready', {}))));
    return {
      reply: { data: ready, binary: true },
      established: {
        peerId: hello.peerId,
        bootId: hello.bootId,
        direction: 'in',
        address: joinHostPort(this.remoteIp, hello.listenPort),
        remoteKillSwitch: hello.killSwitch,
        session,
        counters: opts.counters ?? newWireCounters(),
      },
    };
  }
}

/** The dialer's half: `hello` first, then challenge -> auth, ready -> established. */
export class DialerHandshake implements HandshakeMachine {
  private readonly versions: VersionRange;
  private readonly helloMessage: MessageOf<'hello'>;
  private challenge: MessageOf<'challenge'> | undefined;
  private session: Session | undefined;

  constructor(
    private readonly opts: HandshakeOptions,
    /** The address dialed (host:port). */
    private readonly address: string,
  ) {
    this.versions = opts.versions ?? SUPPORTED_VERSIONS;
    this.helloMessage = message('hello', {
      v: this.versions.max,
      vMin: this.versions.min,
      cluster: opts.self.cluster,
      peerId: opts.self.peerId,
      bootId: opts.self.bootId,
      nonce: opts.nonce ?? newNonce(),
      listenPort: opts.self.listenPort,
      killSwitch: opts.killSwitch(),
    });
  }

  /** The first frame, sent as soon as the connection is open. */
  get hello(): Frame {
    return { data: encode(this.helloMessage), binary: false };
  }

  receive(data: Buffer, isBinary: boolean): Step {
    checkSize(data);
    const { opts } = this;
    if (!this.challenge) {
      const msg = textMessage(data, isBinary);
      if (msg.type !== 'challenge')
        throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected challenge, got ${msg.type}`);
      const version = checkPeer(msg, opts.self, this.versions);
      const transcript = transcriptHash(asReceived(this.helloMessage), msg);
      const secret = opts.keyring.verify('acceptor', transcript, msg.proof);
      if (secret === undefined) {
        throw new HandshakeError(CLOSE.AUTH_FAILED, 'authentication failed', msg.peerId);
      }
      this.challenge = msg;
      // Answer with the secret that verified: both sides then derive keys from the same one.
      const keys = deriveSessionKeys(opts.keyring.secret(secret), transcript);
      this.session = {
        version,
        out: new SealedChannel(keys.dialerToAcceptor),
        in: new SealedChannel(keys.acceptorToDialer),
      };
      const auth = message('auth', { proof: opts.keyring.prove('dialer', transcript, secret) });
      return { reply: { data: encode(auth), binary: false } };
    }
    const c = this.challenge;
    const session = this.session as Session;
    const plain = isBinary ? session.in.open(data) : undefined;
    if (!plain) throw new HandshakeError(CLOSE.UNSEALED, 'ready did not open', c.peerId);
    const msg = decode(plain);
    if (msg.type !== 'ready') throw new HandshakeError(CLOSE.BAD_MESSAGE, `expected ready, got ${msg.type}`);
    return {
      established: {
        peerId: c.peerId,
        bootId: c.bootId,
        direction: 'out',
        address: this.address,
        remoteKillSwitch: c.killSwitch,
        session,
        counters: opts.counters ?? newWireCounters(),
      },
    };
  }
}
