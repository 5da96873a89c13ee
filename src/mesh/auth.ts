/**
 * Mutual HMAC-SHA256 challenge/response over the handshake transcript. The transcript hash covers
 * every field of hello and of challenge (its proof aside) in a canonical encoding, so nothing either
 * side acts on (cluster, ids, boot ids, nonces, version range, kill switch, listen port) can be
 * altered on the way; a proof also binds its role (acceptor/dialer), so one side's proof is never
 * valid as the other's. Fresh nonces on both sides make a proof useless on another connection.
 *
 * Rotation: the keyring verifies with every secret. The acceptor proves with its first secret; the
 * dialer answers with the secret that verified the acceptor's proof, and the session keys (seal.ts)
 * derive from that one secret on both sides. So a fleet rotates by adding the new secret second
 * everywhere, then moving it first peer by peer, then dropping the old one, never partitioning.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export type Role = 'acceptor' | 'dialer';

export function newNonce(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * JSON with object keys sorted at every level: one byte string per value, whichever order its
 * fields were written or parsed in. Hand-written (a dozen lines) because the handshake messages are
 * already validated plain JSON: strings, integers, booleans, arrays and objects.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** SHA-256 over the canonical hello and the canonical challenge without its proof. */
export function transcriptHash(hello: object, challenge: object): Buffer {
  const { proof: _proof, ...unsigned } = challenge as { proof?: unknown };
  const h = createHash('sha256').update('qb-mesh transcript v2\n');
  for (const part of [canonicalJson(hello), canonicalJson(unsigned)]) {
    // Length-prefixed, so no two different pairs of messages hash alike.
    h.update(`${Buffer.byteLength(part)}:`).update(part);
  }
  return h.digest();
}

export class Keyring {
  private readonly secrets: readonly Buffer[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('a keyring needs at least one secret');
    this.secrets = secrets.map((s) => Buffer.from(s, 'utf8'));
  }

  /** The proof this side sends: with the first secret unless told which (the dialer's answer). */
  prove(role: Role, transcript: Buffer, secretIndex = 0): string {
    return hmac(this.secret(secretIndex), role, transcript);
  }

  /**
   * Which secret of the keyring made `proof` for `role`, or undefined when none did. Every secret
   * is tried even after a match, so timing does not reveal which one matched.
   */
  verify(role: Role, transcript: Buffer, proof: string): number | undefined {
    const presented = Buffer.from(proof, 'hex');
    if (presented.length !== 32) return undefined;
    let match: number | undefined;
    this.secrets.forEach((secret, i) => {
      const expected = Buffer.from(hmac(secret, role, transcript), 'hex');
      if (timingSafeEqual(expected, presented) && match === undefined) match = i;
    });
    return match;
  }

  /** The secret at `index`: the input keying material of the session keys. */
  secret(index: number): Buffer {
    const secret = this.secrets[index];
    if (!secret) throw new RangeError(`no secret #${index}`);
    return secret;
  }
}

function hmac(secret: Buffer, role: Role, transcript: Buffer): string {
  return createHmac('sha256', secret).update(`qb-mesh-v2|${role}|`).update(transcript).digest('hex');
}
