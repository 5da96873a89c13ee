// MeshNodes in one process, each on its own real HTTP server on 127.0.0.1 (port 0), linked by
// static discovery: the handshake, refusals, the one-link-per-pair rule and the kill-switch flood
// over real sockets, without starting processes.
import { describe, expect, it, vi } from 'vitest';
import type { Discovery } from '../../src/mesh/discovery/types.js';
import { CLOSE } from '../../src/mesh/protocol.js';
import { makePeer, SECRET, stateOf } from './harness.js';

describe('MeshNode over loopback', () => {
  it('links two peers, exchanges status and measures RTT', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    await vi.waitFor(() => {
      expect(stateOf(a, 'b')).toBe('connected');
      expect(stateOf(b, 'a')).toBe('connected');
    });
    await vi.waitFor(() => {
      const view = a.node.peers().find((p) => p.peerId === 'b');
      expect(view?.status?.peerId).toBe('b');
      expect(view?.rttMs).not.toBeNull();
    });
    expect(a.node.linkCount).toBe(1);
    expect(b.node.linkCount).toBe(1);
  });

  it('keeps exactly one link when both peers dial each other at once', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    b.peers = [`127.0.0.1:${a.port}`];
    await Promise.all([a.node.start(), b.node.start()]);
    await vi.waitFor(() => {
      expect(stateOf(a, 'b')).toBe('connected');
      expect(stateOf(b, 'a')).toBe('connected');
    });
    // Once both dials have finished (each side has seen both connections), one link survived.
    await vi.waitFor(() => {
      for (const n of [a.node, b.node]) {
        expect(n.totalReconnectAttempts).toBeGreaterThanOrEqual(1);
        expect(n.handshakesInFlight).toBe(0);
      }
    });
    expect(a.node.linkCount).toBe(1);
    expect(b.node.linkCount).toBe(1);
    expect(stateOf(a, 'b')).toBe('connected');
  });

  it('refuses a peer with the wrong secret, shows why, and does not retry fast', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b', { secrets: ['a different secret, long enough'] });
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    await vi.waitFor(() => {
      const view = a.node.peers().find((p) => p.address === `127.0.0.1:${b.port}`);
      expect(view?.refused?.code).toBe(CLOSE.AUTH_FAILED);
      expect(view?.state).toBe('down');
    });
    const attempts = a.node.totalReconnectAttempts;
    await new Promise((r) => setTimeout(r, 1500));
    expect(a.node.totalReconnectAttempts).toBe(attempts);
    expect(b.node.counters.handshakeFailures.auth_failed).toBeGreaterThanOrEqual(1);
    expect(a.node.linkCount).toBe(0);
  });

  it('links peers mid-rotation: one signs with the new secret, the other still signs with the old', async () => {
    // Rotation: 1) every peer adds the new secret after the old; 2) each moves it first; 3) drop the old.
    const a = await makePeer('a', { secrets: ['the new secret, long enough', SECRET] });
    const b = await makePeer('b', { secrets: [SECRET, 'the new secret, long enough'] });
    a.peers = [`127.0.0.1:${b.port}`];
    b.peers = [`127.0.0.1:${a.port}`];
    await Promise.all([a.node.start(), b.node.start()]);
    await vi.waitFor(() => expect(stateOf(b, 'a')).toBe('connected'));
  });

  it('refuses another cluster with its own close code', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b', { cluster: 'other' });
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    await vi.waitFor(() => {
      const view = a.node.peers().find((p) => p.address === `127.0.0.1:${b.port}`);
      expect(view?.refused?.code).toBe(CLOSE.WRONG_CLUSTER);
    });
  });

  it('never links to itself', async () => {
    const a = await makePeer('a');
    a.peers = [`127.0.0.1:${a.port}`];
    await a.node.start();
    // The dial to its own address ends as `self`, after which the address is not listed at all.
    await vi.waitFor(() => {
      expect(a.node.totalReconnectAttempts).toBeGreaterThanOrEqual(1);
      expect(a.node.handshakesInFlight).toBe(0);
      expect(a.node.peers()).toEqual([]);
    });
    expect(a.node.linkCount).toBe(0);
  });

  it('floods a kill-switch change to every peer, and a late joiner adopts it', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b');
    const c = await makePeer('c');
    a.peers = [`127.0.0.1:${b.port}`];
    c.peers = [`127.0.0.1:${a.port}`];
    await a.node.start();
    await b.node.start();
    await vi.waitFor(() => expect(stateOf(a, 'b')).toBe('connected'));
    b.killSwitch.set(true, 'halt everything', 'b');
    await vi.waitFor(() => expect(a.killSwitch.get()).toMatchObject({ active: true, origin: 'b', epoch: 1 }));
    await c.node.start();
    await vi.waitFor(() =>
      expect(c.killSwitch.get()).toMatchObject({ active: true, reason: 'halt everything' }),
    );
    // The newest change wins wherever it is made.
    c.killSwitch.set(false, 'all clear', 'c');
    await vi.waitFor(() => {
      expect(a.killSwitch.get()).toMatchObject({ active: false, epoch: 2 });
      expect(b.killSwitch.get()).toMatchObject({ active: false, epoch: 2 });
    });
  });

  it('sees a stopped peer down at once and relinks it when it returns', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    await vi.waitFor(() => expect(stateOf(a, 'b')).toBe('connected'));
    await b.node.stop();
    await vi.waitFor(() => expect(stateOf(a, 'b')).toBe('down'));
    await b.node.start();
    await vi.waitFor(() => expect(stateOf(a, 'b')).toBe('connected'), { timeout: 10_000 });
  });

  it('keeps running on its other discoveries when one cannot start', async () => {
    const broken: Discovery = {
      source: 'mdns',
      start: async () => {
        throw Object.assign(new Error('bind EADDRINUSE 0.0.0.0:5353'), { code: 'EADDRINUSE' });
      },
      stop: async () => {},
    };
    const a = await makePeer('a', { alsoDiscover: broken });
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    expect(a.node.isRunning).toBe(true);
    await vi.waitFor(() => expect(stateOf(a, 'b')).toBe('connected'));
  });

  it('can be started and stopped repeatedly; stop before start is safe', async () => {
    const a = await makePeer('a');
    await a.node.stop();
    await a.node.start();
    await a.node.start();
    await a.node.stop();
    await a.node.stop();
    await a.node.start();
    expect(a.node.isRunning).toBe(true);
  });
});

describe('status deltas between MeshNodes', () => {
  /** The link a node holds to a peer (private): tests play a peer that skips a seq through it. */
  const linkOf = (node: unknown, peerId: string) =>
    (node as { links: Map<string, import('../../src/mesh/link.js').Link> }).links.get(peerId);

  it('sends what changed, nothing while idle, and rebuilds the whole summary', async () => {
    let queued = 0;
    const a = await makePeer('a', { summary: (s) => ({ ...s, queues: { work: queued } }) });
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    const held = () => b.node.peers().find((p) => p.peerId === 'a')?.status;
    await vi.waitFor(() => expect(held()?.links).toEqual([{ peerId: 'b', state: 'connected' }]));
    // Idle: several sync intervals (500 ms) pass, and a sends b no summary and no delta.
    const statusOut = () =>
      (a.node.counters.messagesOut.status ?? 0) + (a.node.counters.messagesOut['status-delta'] ?? 0);
    const before = statusOut();
    const beats = () => (b.node.counters.messagesIn.ping ?? 0) + (b.node.counters.messagesIn.pong ?? 0);
    const beatsBefore = beats();
    await vi.waitFor(() => expect(beats()).toBeGreaterThanOrEqual(beatsBefore + 8), { timeout: 10_000 });
    expect(statusOut()).toBe(before);
    // A change travels as a delta, and b holds the whole summary.
    queued = 7;
    await vi.waitFor(() => expect(held()?.queues).toEqual({ work: 7 }));
    expect(a.node.counters.messagesOut['status-delta']).toBeGreaterThanOrEqual(1);
    expect(held()).toMatchObject({
      peerId: 'a',
      bootId: 'a-boot',
      links: [{ peerId: 'b', state: 'connected' }],
    });
    expect(b.node.counters.statusGaps).toBe(0);
  });

  it('asks for the whole summary after a gap and ignores the delta that skipped', async () => {
    const a = await makePeer('a', { summary: (s) => ({ ...s, version: 'real' }) });
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    const held = () => b.node.peers().find((p) => p.peerId === 'a')?.status;
    await vi.waitFor(() => expect(held()?.version).toBe('real'));
    const link = linkOf(a.node, 'b');
    if (!link) throw new Error('a has no link to b');
    const wholeBefore = a.node.counters.messagesOut.status ?? 0;
    // A delta far past the next seq: b must not apply it, and asks for the whole summary.
    const gap = { type: 'status-delta', seq: 1_000, uptime: 1, set: { version: 'skipped' } };
    link.sendBytes(Buffer.from(JSON.stringify(gap)));
    await vi.waitFor(() => {
      expect(b.node.counters.statusGaps).toBe(1);
      expect(a.node.counters.messagesIn['status-request']).toBe(1);
      expect(a.node.counters.messagesOut.status).toBe(wholeBefore + 1);
    });
    expect(held()?.version).toBe('real');
    expect(stateOf(b, 'a')).toBe('connected');
  });
});

describe('kill-switch flood in a full mesh', () => {
  it('a change from its origin is not relayed to peers the origin is linked to', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b');
    const c = await makePeer('c');
    a.peers = [`127.0.0.1:${b.port}`, `127.0.0.1:${c.port}`];
    b.peers = [`127.0.0.1:${c.port}`];
    await Promise.all([a.node.start(), b.node.start(), c.node.start()]);
    const linksOfA = (p: typeof b) => p.node.peers().find((v) => v.peerId === 'a')?.status?.links;
    // b and c hold a summary of a that lists both as linked.
    await vi.waitFor(() => {
      for (const p of [b, c]) expect(linksOfA(p)?.filter((l) => l.state === 'connected')).toHaveLength(2);
    });
    const relayed = () =>
      (b.node.counters.messagesOut.killswitch ?? 0) + (c.node.counters.messagesOut.killswitch ?? 0);
    const before = relayed();
    a.killSwitch.set(true, 'halt', 'a');
    await vi.waitFor(() => {
      expect(b.killSwitch.get()).toMatchObject({ active: true, origin: 'a' });
      expect(c.killSwitch.get()).toMatchObject({ active: true, origin: 'a' });
    });
    // Two frames (a to b, a to c) instead of six.
    expect(relayed()).toBe(before);
  });
});

describe('kill switch carried by summaries', () => {
  it('a peer that missed the flood adopts the newer state from a summary', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    const held = () => b.node.peers().find((p) => p.peerId === 'a')?.status;
    await vi.waitFor(() => expect(held()?.peerId).toBe('a'));
    const link = (
      a.node as unknown as { links: Map<string, import('../../src/mesh/link.js').Link> }
    ).links.get('b');
    if (!link) throw new Error('a has no link to b');
    const state = {
      active: true,
      reason: 'missed flood',
      since: new Date().toISOString(),
      origin: 'x',
      epoch: 1,
    };
    // Only a summary says so (no killswitch message), as when the relay skipped b.
    const summary = { ...held(), killSwitch: state };
    link.sendBytes(Buffer.from(JSON.stringify({ type: 'status', seq: 50, summary })));
    await vi.waitFor(() => expect(b.killSwitch.get()).toMatchObject({ active: true, origin: 'x', epoch: 1 }));
  });
});
