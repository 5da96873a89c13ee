import { describe, expect, it } from 'vitest';
import {
  DEFAULT_DIAL_POLICY,
  dialDelay,
  MAX_PEERS,
  MAX_TARGETS,
  PeerTable,
  SIGHTING_GAP_MS,
  STABLE_LINK_MS,
  type Target,
} from '../../src/mesh/peer-table.js';

function must(t: Target | undefined): Target {
  if (!t) throw new Error('expected a target');
  return t;
}

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

  it('resets the backoff only on news: a new source, or an address back after a gap', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = must(table.sighted('10.0.0.2:9000', 'dns', 0));
    for (let i = 0; i < 6; i++) {
      table.dialStarted(t);
      table.dialFailed(t, 0, 'timeout');
    }
    expect(t.nextDialAt).toBeGreaterThan(5000);
    // The same DNS answer again, 5 s later: not news.
    table.sighted('10.0.0.2:9000', 'dns', 5000);
    expect(t.attempts).toBe(6);
    expect(t.nextDialAt).toBeGreaterThan(5000);
    // mDNS names it for the first time: news.
    table.sighted('10.0.0.2:9000', 'mdns', 5100);
    expect(t.attempts).toBe(0);
    expect(t.nextDialAt).toBe(5100);
    // Gone from discovery for longer than SIGHTING_GAP_MS, then back: news.
    table.dialStarted(t);
    table.dialFailed(t, 5100, 'timeout');
    table.sighted('10.0.0.2:9000', 'dns', 5100 + SIGHTING_GAP_MS + 1);
    expect(t.attempts).toBe(0);
  });

  it('reaches the 30 s cap for an address that keeps answering discovery and refusing connections', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = must(table.sighted('10.0.0.2:9000', 'dns', 0));
    let now = 0;
    let delay = 0;
    // DNS re-resolves every 5 s; every due dial fails at once.
    for (let step = 0; step < 200; step++) {
      now += 5000;
      table.sighted('10.0.0.2:9000', 'dns', now);
      if (t.nextDialAt <= now) {
        table.dialStarted(t);
        table.dialFailed(t, now, 'ECONNREFUSED');
        delay = t.nextDialAt - now;
      }
    }
    expect(delay).toBe(DEFAULT_DIAL_POLICY.capMs);
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
    table.unlinked('peer-b', 60_000);
    expect(table.peers.get('peer-b')?.state).toBe('down');
    expect(t.nextDialAt).toBe(60_250);
    expect(table.due(60_250)).toEqual([t]);
    table.dialStarted(t);
    table.dialFailed(t, 60_250, 'ECONNREFUSED');
    table.dialStarted(t);
    expect(table.peers.get('peer-b')?.reconnectAttempts).toBe(2);
    table.linked('peer-b', 'boot-2', '127.0.0.1:9001', 62_000, t);
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

  it('backs off a link that keeps ending soon after it came up, instead of relinking at once', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const t = table.sighted('127.0.0.1:9001', 'static', 0);
    let now = 0;
    const delays: number[] = [];
    for (let i = 0; i < 8; i++) {
      table.dialStarted(t);
      table.linked('peer-b', 'boot-1', '127.0.0.1:9001', now, t);
      now += 50;
      table.unlinked('peer-b', now);
      delays.push(t.nextDialAt - now);
      now = t.nextDialAt;
    }
    expect(delays.slice(0, 5)).toEqual([500, 1000, 2000, 4000, 8000]);
    expect(delays.at(-1)).toBe(30_000);
    // A link that then stays up for long is stable again: the next loss is re-dialed quickly.
    table.dialStarted(t);
    table.linked('peer-b', 'boot-1', '127.0.0.1:9001', now, t);
    table.unlinked('peer-b', now + STABLE_LINK_MS + 1);
    expect(t.nextDialAt - (now + STABLE_LINK_MS + 1)).toBe(250);
  });

  it('caps the targets discovery can add, keeping static ones and linked ones', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    const fixed = table.sighted('10.9.9.9:9000', 'static', 0);
    const linked = must(table.sighted('10.9.9.8:9000', 'mdns', 0, 'peer-b'));
    table.dialStarted(linked);
    table.linked('peer-b', 'boot', '10.9.9.8:9000', 0, linked);
    for (let i = 0; i < MAX_TARGETS * 2; i++)
      table.sighted(`10.1.${i >> 8}.${i & 255}:9000`, 'mdns', i + 1, `c-${i}`);
    expect(table.targets.size).toBe(MAX_TARGETS);
    expect(table.targets.get(fixed.address)).toBe(fixed);
    expect(table.targets.get(linked.address)).toBe(linked);
    // The newest sightings are kept, the longest-unseen made room.
    expect(table.targets.has(`10.1.${(MAX_TARGETS * 2 - 1) >> 8}.${(MAX_TARGETS * 2 - 1) & 255}:9000`)).toBe(
      true,
    );
    expect(table.targets.has('10.1.0.0:9000')).toBe(false);
  });

  it('forgets the peers down the longest past MAX_PEERS', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, max);
    for (let i = 0; i < MAX_PEERS + 10; i++) {
      table.linked(`p-${i}`, 'boot', `10.2.${i >> 8}.${i & 255}:9000`, i);
      table.unlinked(`p-${i}`, i + 1);
    }
    table.linked('live', 'boot', '10.3.0.1:9000', 10_000);
    expect(table.peers.size).toBe(MAX_PEERS);
    expect(table.peers.has('live')).toBe(true);
    expect(table.peers.has('p-0')).toBe(false);
    expect(table.peers.has(`p-${MAX_PEERS + 9}`)).toBe(true);
  });
});

describe('PeerTable: one dial per peer id', () => {
  it('dials one address of a known peer at a time', () => {
    const table = new PeerTable(DEFAULT_DIAL_POLICY, () => 0.999999);
    const v4 = table.sighted('10.0.0.2:9000', 'static', 0, 'peer-b');
    const v6 = table.sighted('[fd00::2]:9000', 'static', 0, 'peer-b');
    const other = table.sighted('10.0.0.3:9000', 'static', 0);
    expect(table.due(0)).toEqual([v4, other]);
    table.dialStarted(v4);
    expect(table.due(0)).toEqual([other]);
    expect(table.nextDeadline((t) => t !== other)).toBeUndefined();
    table.dialFailed(v4, 0, 'ECONNREFUSED');
    expect(table.due(0)).toEqual([v6, other]);
  });
});
