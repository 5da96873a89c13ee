import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveSessionKeys, open, SEAL_OVERHEAD, SealedChannel, seal } from '../../src/mesh/seal.js';

const transcript = randomBytes(32);
const keys = deriveSessionKeys(Buffer.from('a shared secret of enough length'), transcript);
const key = keys.dialerToAcceptor;
const text = (s: string) => Buffer.from(s);

describe('seal/open', () => {
  it('opens what it sealed, and the frame does not show the plaintext', () => {
    const frame = seal(key, 0, text('{"type":"killswitch","secret":"plans"}'));
    expect(frame.length).toBe(38 + SEAL_OVERHEAD);
    expect(frame.includes(text('killswitch'))).toBe(false);
    expect(open(key, 0, frame)?.toString()).toBe('{"type":"killswitch","secret":"plans"}');
  });

  it('refuses a tampered frame: any flipped bit, a truncated or an extended frame', () => {
    const frame = seal(key, 3, text('{"type":"ping","id":1,"t":2}'));
    for (let i = 0; i < frame.length; i++) {
      const bad = Buffer.from(frame);
      bad[i] = (bad[i] as number) ^ 0x01;
      expect(open(key, 3, bad)).toBeUndefined();
    }
    expect(open(key, 3, frame.subarray(0, frame.length - 1))).toBeUndefined();
    expect(open(key, 3, Buffer.concat([frame, Buffer.from([0])]))).toBeUndefined();
    expect(open(key, 3, Buffer.alloc(0))).toBeUndefined();
    expect(open(key, 3, text('{"type":"ping","id":1,"t":2}'))).toBeUndefined();
  });

  it('refuses a replayed frame: a channel opens each sequence number once', () => {
    const tx = new SealedChannel(key);
    const rx = new SealedChannel(key);
    const first = tx.seal(text('one'));
    expect(rx.open(first)?.toString()).toBe('one');
    expect(rx.open(first)).toBeUndefined();
  });

  it('refuses reordered frames and a dropped frame', () => {
    const tx = new SealedChannel(key);
    const rx = new SealedChannel(key);
    const [a, b, c] = [tx.seal(text('a')), tx.seal(text('b')), tx.seal(text('c'))];
    expect(rx.open(b)).toBeUndefined();
    expect(rx.open(a)?.toString()).toBe('a');
    expect(rx.open(c)).toBeUndefined();
    expect(rx.open(b)?.toString()).toBe('b');
  });

  it('keys differ per direction and per handshake: a frame is not reflected or carried over', () => {
    const frame = seal(keys.dialerToAcceptor, 0, text('x'));
    expect(open(keys.acceptorToDialer, 0, frame)).toBeUndefined();
    const next = deriveSessionKeys(Buffer.from('a shared secret of enough length'), randomBytes(32));
    expect(open(next.dialerToAcceptor, 0, frame)).toBeUndefined();
  });

  it('key rotation: keys derive from the secret that verified, another secret cannot open', () => {
    const oldKeys = deriveSessionKeys(Buffer.from('the old secret, long enough'), transcript);
    const newKeys = deriveSessionKeys(Buffer.from('the new secret, long enough'), transcript);
    const again = deriveSessionKeys(Buffer.from('the old secret, long enough'), transcript);
    const frame = seal(oldKeys.dialerToAcceptor, 0, text('x'));
    expect(open(again.dialerToAcceptor, 0, frame)?.toString()).toBe('x');
    expect(open(newKeys.dialerToAcceptor, 0, frame)).toBeUndefined();
  });

  it('refuses sequence numbers outside the nonce space instead of reusing a nonce', () => {
    expect(() => seal(key, -1, text('x'))).toThrow(RangeError);
    expect(() => seal(key, 2 ** 48, text('x'))).toThrow(RangeError);
    expect(open(key, 2 ** 48, seal(key, 0, text('x')))).toBeUndefined();
  });
});
