/**
 * A mesh link after its handshake: an authenticated connection to one peer whose every frame is
 * sealed (seal.ts) and whose messages reach the node as plaintext. What a newer peer adds (unknown
 * message types, enum values, subsystem data over budget) is counted and ignored, never fatal. It
 * runs over any FrameSocket (transport-api.ts): a WebSocket, or an in-memory pipe in tests.
 */
import type { Established } from './handshake.js';
import {
  CLOSE,
  decodeTolerant,
  encode,
  fitExtra,
  type KillSwitchWireState,
  MAX_MESSAGE_BYTES,
  type Message,
  ProtocolError,
} from './protocol.js';
import { SEAL_OVERHEAD, type SealedChannel } from './seal.js';
import type { FrameSocket } from './transport-api.js';

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

  readonly peerId: string;
  readonly bootId: string;
  readonly direction: Direction;
  /** host:port where the peer listens (dialed address, or its address + announced port). */
  readonly address: string;
  readonly remoteKillSwitch: KillSwitchWireState;
  private readonly session: Session;

  constructor(
    readonly socket: FrameSocket,
    established: Established,
  ) {
    this.peerId = established.peerId;
    this.bootId = established.bootId;
    this.direction = established.direction;
    this.address = established.address;
    this.remoteKillSwitch = established.remoteKillSwitch;
    const session = established.session;
    const counters = established.counters;
    this.session = session;
    socket.onFrame((frame, isBinary) => {
      if (this.closed) return;
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
    socket.onClose((code, reason) => this.finish(code, reason));
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
    if (this.closed || !this.socket.isOpen) return false;
    if (plain.length + SEAL_OVERHEAD > MAX_MESSAGE_BYTES) return false;
    this.bytesOut += plain.length + SEAL_OVERHEAD;
    this.socket.send({ data: this.session.out.seal(plain), binary: true });
    return true;
  }

  /** Closes with a code; falls back to terminate() if the other side never answers the close. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.socket.close(code, reason);
    this.finish(code, reason);
  }

  /** Drops the TCP connection at once (a peer that stopped answering). */
  terminate(code: number, reason: string): void {
    if (this.closed) return;
    this.socket.terminate();
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
  if (msg.type === 'status-delta' && msg.set?.extra) {
    const { extra, dropped } = fitExtra(msg.set.extra);
    return dropped === 0 ? msg : { ...msg, set: { ...msg.set, extra } };
  }
  if (msg.type !== 'status' || !msg.summary.extra) return msg;
  const { extra, dropped } = fitExtra(msg.summary.extra);
  return dropped === 0 ? msg : { ...msg, summary: { ...msg.summary, extra } };
}
