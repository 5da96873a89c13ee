/**
 * The session layer of a mesh link (after the handshake): every frame is sealed with AES-256-GCM
 * under a key of its direction, with the frame's sequence number as nonce. Pure functions of
 * (key, sequence number, bytes), no I/O, small enough to audit (compare Serf's security.go; the
 * per-direction keys and implicit counters follow Noise and TLS 1.3).
 *
 * Frame: [SEAL_VERSION (1 byte)] [ciphertext] [GCM tag (16 bytes)]. The nonce is not sent: both
 * sides count frames per direction from 0, so a replayed, dropped-then-resent or reordered frame is
 * opened with the wrong nonce and fails, like a tampered one. The version byte is authenticated too.
 *
 * Keys: HKDF-SHA256 over the shared secret that verified the handshake, salted with the handshake
 * transcript hash (both nonces, both hellos): fresh per link, one per direction, so a frame of one
 * direction can never be reflected back as the other's.
 */
import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';

export const SEAL_VERSION = 1;
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes a sealed frame adds to its plaintext. */
export const SEAL_OVERHEAD = 1 + TAG_BYTES;
/** The counter occupies the low 6 bytes of the nonce; a link never sends 2^48 frames. */
const MAX_SEQ = 2 ** 48 - 1;

export interface SessionKeys {
  /** Seals what the dialer sends and opens what the acceptor receives. */
  dialerToAcceptor: Buffer;
  acceptorToDialer: Buffer;
}

/** Both directions' keys of one link. `transcriptHash` already binds both nonces and both peers. */
export function deriveSessionKeys(secret: Buffer, transcriptHash: Buffer): SessionKeys {
  const key = (info: string) => Buffer.from(hkdfSync('sha256', secret, transcriptHash, info, KEY_BYTES));
  return {
    dialerToAcceptor: key('qb-mesh seal v1 dialer->acceptor'),
    acceptorToDialer: key('qb-mesh seal v1 acceptor->dialer'),
  };
}

function nonce(seq: number): Buffer {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new RangeError(`sequence ${seq}`);
  const n = Buffer.alloc(NONCE_BYTES);
  n.writeUIntBE(seq, NONCE_BYTES - 6, 6);
  return n;
}

const HEADER = Buffer.from([SEAL_VERSION]);

/** Seals frame number `seq` of a direction. */
export function seal(key: Buffer, seq: number, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce(seq), { authTagLength: TAG_BYTES });
  cipher.setAAD(HEADER);
  const body = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([HEADER, body, cipher.getAuthTag()]);
}

/**
 * Opens frame number `seq` of a direction.
 * @returns the plaintext, or undefined when the frame was tampered with, replayed, reordered,
 * sealed under another key or is not a sealed frame at all. Never throws for any input.
 */
export function open(key: Buffer, seq: number, frame: Buffer): Buffer | undefined {
  if (frame.length < SEAL_OVERHEAD || frame[0] !== SEAL_VERSION) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce(seq), { authTagLength: TAG_BYTES });
    decipher.setAAD(HEADER);
    decipher.setAuthTag(frame.subarray(frame.length - TAG_BYTES));
    const body = decipher.update(frame.subarray(1, frame.length - TAG_BYTES));
    decipher.final();
    return body;
  } catch {
    return undefined;
  }
}

/** One direction of a link: the key and the next sequence number. */
export class SealedChannel {
  private seq = 0;
  constructor(private readonly key: Buffer) {}

  seal(plaintext: Buffer): Buffer {
    return seal(this.key, this.seq++, plaintext);
  }

  /** Opens the next frame; the counter advances only on success (a failure ends the link anyway). */
  open(frame: Buffer): Buffer | undefined {
    const body = open(this.key, this.seq, frame);
    if (body) this.seq++;
    return body;
  }
}
