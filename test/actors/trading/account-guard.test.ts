import { describe, expect, it } from 'vitest';
import { accountFingerprint, judgeClaims } from '../../../src/actors/trading/account-guard.js';

describe('one trader per account (mesh claims)', () => {
  const acct = accountFingerprint('live', 'binance', 'KEY-1');

  it('fingerprints the account without revealing the key', () => {
    expect(acct).toMatch(/^live:binance:[0-9a-f]{16}$/);
    expect(acct).not.toContain('KEY-1');
    expect(accountFingerprint('live', 'binance', 'KEY-2')).not.toBe(acct);
    expect(accountFingerprint('paper', 'sim', 'default')).toBe(accountFingerprint('paper', 'sim', 'default'));
  });

  it('lets the peer that has wanted the account longest trade it; the other stands down', () => {
    const early = { peerId: 'b', account: acct, since: 1_000 };
    const late = { peerId: 'a', account: acct, since: 2_000 };
    expect(judgeClaims(early, [late])).toMatchObject({ mayTrade: true, holder: null });
    expect(judgeClaims(late, [early])).toMatchObject({ mayTrade: false, holder: early });
  });

  it('breaks a tie on the smaller peer id, the same way on both sides', () => {
    const a = { peerId: 'a', account: acct, since: 1_000 };
    const b = { peerId: 'b', account: acct, since: 1_000 };
    expect(judgeClaims(a, [b]).mayTrade).toBe(true);
    expect(judgeClaims(b, [a]).mayTrade).toBe(false);
  });

  it('ignores other accounts, and takes over once the holder is no longer linked', () => {
    const self = { peerId: 'z', account: acct, since: 5_000 };
    expect(judgeClaims(self, [{ peerId: 'y', account: 'paper:sim:x', since: 1 }]).mayTrade).toBe(true);
    expect(judgeClaims(self, []).mayTrade).toBe(true);
  });
});
