import { describe, expect, it } from 'vitest';
import { type HandshakeBinding, Keyring, newNonce } from '../../src/mesh/auth.js';

const binding: HandshakeBinding = {
  cluster: 'quantum-bot',
  dialerId: 'a',
  dialerBoot: 'boot-a',
  dialerNonce: newNonce(),
  acceptorId: 'b',
  acceptorBoot: 'boot-b',
  acceptorNonce: newNonce(),
};
const SECRET = 'correct horse battery staple';

describe('Keyring', () => {
  it('verifies a proof made with the same secret and role', () => {
    const ring = new Keyring([SECRET]);
    expect(ring.verify('dialer', binding, ring.prove('dialer', binding))).toBe(true);
  });

  it('refuses a proof of another secret (a bad signature)', () => {
    const proof = new Keyring(['another secret of enough length']).prove('dialer', binding);
    expect(new Keyring([SECRET]).verify('dialer', binding, proof)).toBe(false);
  });

  it("never accepts one role's proof as the other's", () => {
    const ring = new Keyring([SECRET]);
    expect(ring.verify('dialer', binding, ring.prove('acceptor', binding))).toBe(false);
  });

  it('binds every field: a proof does not verify for another cluster, peer, boot or nonce', () => {
    const ring = new Keyring([SECRET]);
    const proof = ring.prove('dialer', binding);
    for (const key of Object.keys(binding) as (keyof HandshakeBinding)[]) {
      expect(ring.verify('dialer', { ...binding, [key]: `${binding[key]}x` }, proof)).toBe(false);
    }
  });

  it('signs with the first secret and verifies with all (rotation)', () => {
    const old = new Keyring(['the old secret, long enough']);
    const rotating = new Keyring(['the new secret, long enough', 'the old secret, long enough']);
    const upgraded = new Keyring(['the new secret, long enough']);
    expect(rotating.verify('acceptor', binding, old.prove('acceptor', binding))).toBe(true);
    expect(upgraded.verify('acceptor', binding, rotating.prove('acceptor', binding))).toBe(true);
    expect(old.verify('acceptor', binding, rotating.prove('acceptor', binding))).toBe(false);
  });

  it('rejects malformed proofs without throwing', () => {
    const ring = new Keyring([SECRET]);
    expect(ring.verify('dialer', binding, '')).toBe(false);
    expect(ring.verify('dialer', binding, 'zz')).toBe(false);
    expect(ring.verify('dialer', binding, 'ab'.repeat(40))).toBe(false);
  });
});
