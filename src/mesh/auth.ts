/**
 * Mutual HMAC-SHA256 challenge/response. A proof binds the role (acceptor/dialer, so one side's
 * proof is never valid as the other's), the cluster, both peer ids, both boot ids and both fresh
 * nonces: it cannot be replayed on another connection. The keyring signs with its first secret and
 * verifies with all of them, so a secret can be rotated peer by peer without a partition.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface HandshakeBinding {
  cluster: string;
  dialerId: string;
  dialerBoot: string;
  dialerNonce: string;
  acceptorId: string;
  acceptorBoot: string;
  acceptorNonce: string;
}

export type Role = 'acceptor' | 'dialer';

export function newNonce(): string {
  return randomBytes(24).toString('base64url');
}

function transcript(role: Role, b: HandshakeBinding): string {
  // Fields are length-prefixed so no two different bindings serialise alike.
  const fields = [
    'qb-mesh-v1',
    role,
    b.cluster,
    b.dialerId,
    b.dialerBoot,
    b.dialerNonce,
    b.acceptorId,
    b.acceptorBoot,
    b.acceptorNonce,
  ];
  return fields.map((f) => `${f.length}:${f}`).join('|');
}

export class Keyring {
  private readonly secrets: readonly Buffer[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('a keyring needs at least one secret');
    this.secrets = secrets.map((s) => Buffer.from(s, 'utf8'));
  }

  /** The proof this side sends, made with the first secret. */
  prove(role: Role, binding: HandshakeBinding): string {
    return hmac(this.secrets[0] as Buffer, transcript(role, binding));
  }

  /** Whether `proof` was made by `role` with any secret of the keyring. Constant-time per secret. */
  verify(role: Role, binding: HandshakeBinding, proof: string): boolean {
    const presented = Buffer.from(proof, 'hex');
    if (presented.length !== 32) return false;
    const text = transcript(role, binding);
    let ok = false;
    // Check every secret even after a match, so timing does not reveal which one matched.
    for (const secret of this.secrets) {
      if (timingSafeEqual(Buffer.from(hmac(secret, text), 'hex'), presented)) ok = true;
    }
    return ok;
  }
}

function hmac(secret: Buffer, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}
