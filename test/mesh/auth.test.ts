import { describe, expect, it } from 'vitest';
import { canonicalJson, Keyring, newNonce, transcriptHash } from '../../src/mesh/auth.js';

const killSwitch = { active: false, reason: '', since: '', origin: '', epoch: 0 };
const hello = {
  type: 'hello',
  v: 2,
  vMin: 2,
  cluster: 'quantum-bot',
  peerId: 'a',
  bootId: 'boot-a',
  nonce: newNonce(),
  listenPort: 9000,
  killSwitch,
};
const challenge = {
  type: 'challenge',
  v: 2,
  vMin: 2,
  cluster: 'quantum-bot',
  peerId: 'b',
  bootId: 'boot-b',
  nonce: newNonce(),
  killSwitch,
  proof: 'f'.repeat(64),
};
const transcript = transcriptHash(hello, challenge);
const SECRET = 'correct horse battery staple';

describe('transcript', () => {
  it('binds every field of hello and challenge, nested ones too (the kill switch)', () => {
    const variants: object[][] = [];
    for (const [key, value] of Object.entries(hello)) {
      variants.push([
        { ...hello, [key]: typeof value === 'number' ? value + 1 : `${String(value)}x` },
        challenge,
      ]);
    }
    for (const [key, value] of Object.entries(challenge)) {
      if (key === 'proof') continue;
      variants.push([
        hello,
        { ...challenge, [key]: typeof value === 'number' ? value + 1 : `${String(value)}x` },
      ]);
    }
    variants.push([{ ...hello, killSwitch: { ...killSwitch, active: true } }, challenge]);
    variants.push([hello, { ...challenge, killSwitch: { ...killSwitch, epoch: 9 } }]);
    // A field a newer peer appends is bound as well.
    variants.push([{ ...hello, region: 'eu' }, challenge]);
    // Swapping the two messages is not the same transcript.
    variants.push([challenge, hello]);
    const hashes = new Set(
      variants.map(([h, c]) => transcriptHash(h as object, c as object).toString('hex')),
    );
    expect(hashes.size).toBe(variants.length);
    expect(hashes.has(transcript.toString('hex'))).toBe(false);
  });

  it('does not depend on key order or on the proof', () => {
    const reordered = Object.fromEntries(Object.entries(hello).reverse());
    expect(transcriptHash(reordered, { ...challenge, proof: '0'.repeat(64) })).toEqual(transcript);
    expect(canonicalJson({ b: [1, { d: 1, c: 2 }], a: 'x' })).toBe('{"a":"x","b":[1,{"c":2,"d":1}]}');
  });
});

describe('Keyring', () => {
  it('verifies a proof made with the same secret and role, naming the secret', () => {
    const ring = new Keyring([SECRET]);
    expect(ring.verify('dialer', transcript, ring.prove('dialer', transcript))).toBe(0);
  });

  it('refuses a proof of another secret (a bad signature)', () => {
    const proof = new Keyring(['another secret of enough length']).prove('dialer', transcript);
    expect(new Keyring([SECRET]).verify('dialer', transcript, proof)).toBeUndefined();
  });

  it("never accepts one role's proof as the other's", () => {
    const ring = new Keyring([SECRET]);
    expect(ring.verify('dialer', transcript, ring.prove('acceptor', transcript))).toBeUndefined();
  });

  it('a proof does not verify for another transcript', () => {
    const ring = new Keyring([SECRET]);
    const other = transcriptHash({ ...hello, listenPort: 1 }, challenge);
    expect(ring.verify('dialer', other, ring.prove('dialer', transcript))).toBeUndefined();
  });

  it('signs with the first secret, verifies with all, and says which one verified (rotation)', () => {
    const old = new Keyring(['the old secret, long enough']);
    const rotating = new Keyring(['the new secret, long enough', 'the old secret, long enough']);
    const upgraded = new Keyring(['the new secret, long enough']);
    expect(rotating.verify('acceptor', transcript, old.prove('acceptor', transcript))).toBe(1);
    expect(upgraded.verify('acceptor', transcript, rotating.prove('acceptor', transcript))).toBe(0);
    expect(old.verify('acceptor', transcript, rotating.prove('acceptor', transcript))).toBeUndefined();
    // The dialer answers with the secret that verified, so the old-only acceptor accepts it.
    expect(old.verify('dialer', transcript, rotating.prove('dialer', transcript, 1))).toBe(0);
    expect(rotating.secret(1)).toEqual(old.secret(0));
  });

  it('rejects malformed proofs without throwing', () => {
    const ring = new Keyring([SECRET]);
    expect(ring.verify('dialer', transcript, '')).toBeUndefined();
    expect(ring.verify('dialer', transcript, 'zz')).toBeUndefined();
    expect(ring.verify('dialer', transcript, 'ab'.repeat(40))).toBeUndefined();
  });
});
