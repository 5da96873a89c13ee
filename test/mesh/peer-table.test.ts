import { describe, expect, it } from 'vitest';
import { DEFAULT_DIAL_POLICY, dialDelay, PeerTable } from '../../src/mesh/peer-table.js';

describe('dialDelay', () => {
  it('starts between 100 and 250 ms, doubles, and caps at 30 s', () => {
    expect(dialDelay(1, DEFAULT_DIAL_POLICY, () => 0)).toBe(100);
    expect(dialDelay(1, DEFAULT_DIAL_POLICY, () => 0.999999)).toBe(250);
    expect(dialDelay(2, DEFAULT_DIAL_POLICY, () => 0.999999)).toBe(500);
    expect(dialDelay(5, DEFAULT_DIAL_POLICY, () => 0.999999)).toBe(4000);
    expect(dialDelay(50, DEFAULT_DIAL_POLICY, () => 0.999999)).toBe(30_000);
    for (let i = 0; i < 100; i++) {
      const d = dialDelay(3, DEFAULT_DIAL_POLICY, Math.random);
      expect(d).toBeGreaterThanOrEqual(100);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});

describe('PeerTable', () => {
  const max = () => 0.999999;

  it('dials a sighted address at once, then backs off exponentially on failure', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = table.sighted('127.0.0.1:9001', 'static', 0);
    expect(table.due(0)).toEqual([t]);
    table.dialStarted(t);
    expect(table.due(0)).toEqual([]);
    table.dialFailed(t, 0, 'ECONNREFUSED');
    expect(t.nextDialAt).toBe(250);
    expect(table.due(249)).toEqual([]);
    expect(table.due(250)).toEqual([t]);
    table.dialStarted(t);
    table.dialFailed(t, 250, 'ECONNREFUSED');
    expect(t.nextDialAt).toBe(750);
    expect(table.totalReconnectAttempts).toBe(2);
  });

  it('waits at least 30 s after a refusal and remembers why', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = table.sighted('127.0.0.1:9001', 'static', 0);
    table.dialStarted(t);
    table.dialFailed(t, 1000, 'authentication failed', { code: 4401, reason: 'authentication failed' });
    expect(t.nextDialAt).toBe(31_000);
    expect(t.refused).toMatchObject({ code: 4401, at: 1000 });
    // A repeated mDNS answer does not speed up the dialing of a peer that refuses us.
    table.sighted('127.0.0.1:9001', 'mdns', 2000);
    expect(t.nextDialAt).toBe(31_000);
  });

  it('resets the backoff on a fresh mDNS or DNS sighting', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = table.sighted('10.0.0.2:9000', 'dns', 0);
    for (let i = 0; i < 6; i++) {
      table.dialStarted(t);
      table.dialFailed(t, 0, 'timeout');
    }
    expect(t.nextDialAt).toBeGreaterThan(5000);
    table.sighted('10.0.0.2:9000', 'dns', 100);
    expect(t.attempts).toBe(0);
    expect(t.nextDialAt).toBe(100);
  });

  it('never dials itself again, and does not dial a peer already linked', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const self = table.sighted('127.0.0.1:9000', 'static', 0);
    table.dialStarted(self);
    table.dialedSelf(self);
    expect(table.due(10_000)).toEqual([]);

    const t = table.sighted('127.0.0.1:9001', 'static', 0);
    table.dialStarted(t);
    table.linked('peer-b', 'boot-1', '127.0.0.1:9001', 10, t);
    const alias = table.sighted('[::1]:9001', 'mdns', 20, 'peer-b');
    expect(table.due(20)).not.toContain(t);
    expect(table.due(20)).not.toContain(alias);
  });

  it('makes a lost peer due again quickly and counts its reconnect attempts', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = table.sighted('127.0.0.1:9001', 'static', 0);
    table.dialStarted(t);
    table.linked('peer-b', 'boot-1', '127.0.0.1:9001', 0, t);
    table.unlinked('peer-b', 1000);
    expect(table.peers.get('peer-b')?.state).toBe('down');
    expect(t.nextDialAt).toBe(1250);
    expect(table.due(1250)).toEqual([t]);
    table.dialStarted(t);
    table.dialFailed(t, 1250, 'ECONNREFUSED');
    table.dialStarted(t);
    expect(table.peers.get('peer-b')?.reconnectAttempts).toBe(2);
    table.linked('peer-b', 'boot-2', '127.0.0.1:9001', 2000, t);
    const p = table.peers.get('peer-b');
    expect(p).toMatchObject({ state: 'connected', bootId: 'boot-2', reconnectAttempts: 0, status: null });
  });

  it('names the earliest dial deadline, ignoring linked, busy, refused-filtered and self targets', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    expect(table.nextDeadline()).toBeUndefined();
    const a = table.sighted('127.0.0.1:9001', 'static', 1000);
    const b = table.sighted('127.0.0.1:9002', 'static', 500);
    expect(table.nextDeadline()).toBe(500);
    table.dialStarted(b);
    expect(table.nextDeadline()).toBe(1000);
    table.linked('peer-b', 'boot', '127.0.0.1:9002', 600, b);
    table.dialStarted(a);
    table.dialFailed(a, 1000, 'ECONNREFUSED');
    expect(table.nextDeadline()).toBe(1250);
    expect(table.nextDeadline((t) => t !== a)).toBeUndefined();
    table.unlinked('peer-b', 2000);
    expect(table.nextDeadline()).toBe(1250);
  });
});
