// The mesh on a hostile network (issue 11): bad input from one peer or one announcement never
// flaps the links of honest peers. Real sockets on 127.0.0.1, MeshNodes in this process.
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import type { Discovery } from '../../src/mesh/discovery/types.js';
import { MAX_DIALS_IN_FLIGHT } from '../../src/mesh/node.js';
import { MemoryKillSwitch, makePeer, stateOf } from './harness.js';

const waitLong = { timeout: 10_000, interval: 50 };

/** A discovery that names `count` addresses where nothing listens, each claiming its own id. */
function claimingDiscovery(claims: Array<{ address: string; peerId: string }>): Discovery {
  return {
    source: 'mdns',
    async start(ctx) {
      for (const c of claims) ctx.onSighting({ ...c, source: 'mdns' });
    },
    async stop() {},
  };
}

describe('a hostile or buggy peer', () => {
  it('keeps the link of a peer whose summary carries an invalid link id and 600 links', async () => {
    const a = await makePeer('a');
    const b = await makePeer('b', {
      summary: (base) => ({
        ...base,
        links: [
          { peerId: 'not a valid id!', state: 'connecting' },
          ...Array.from({ length: 600 }, (_, i) => ({ peerId: `ghost-${i}`, state: 'down' as const })),
        ],
      }),
    });
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    // The whole summary arrives and is repaired; several syncs (every 500 ms) and heartbeats later,
    // nothing closed the link.
    await vi.waitFor(
      () => expect(a.node.counters.messagesIn.status ?? 0).toBeGreaterThanOrEqual(1),
      waitLong,
    );
    const beats = () => (a.node.counters.messagesIn.pong ?? 0) + (a.node.counters.messagesIn.ping ?? 0);
    await vi.waitFor(() => expect(beats()).toBeGreaterThanOrEqual(10), waitLong);
    expect(stateOf(a, 'b')).toBe('connected');
    expect(a.node.counters.reconnects).toBe(1);
    expect(a.node.counters.messagesIn.killswitch).toBe(1);
    expect(a.node.counters.repairedFields.links).toBeGreaterThanOrEqual(1);
    const status = a.node.peers().find((p) => p.peerId === 'b')?.status;
    expect(status?.links).toHaveLength(512);
    expect(status?.links?.every((l) => l.peerId !== 'not a valid id!')).toBe(true);
  });

  it('sends only linked peers as its links, whatever discovery claims', async () => {
    const claims = [
      { address: '127.0.0.1:1', peerId: 'not a valid id!' },
      ...Array.from({ length: 600 }, (_, i) => ({
        address: `127.0.0.2:${1000 + i}`,
        peerId: `claimed-${i}`,
      })),
    ];
    // 601 refused dials keep this process busy: slower heartbeats, so load is not taken for silence.
    const timers = { heartbeatIntervalMs: 1000, syncIntervalMs: 500, reconnectIntervalMs: 1000 };
    const a = await makePeer('a', { alsoDiscover: claimingDiscovery(claims), node: { timers } });
    const b = await makePeer('b', { node: { timers } });
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    // 601 addresses, but never more than MAX_DIALS_IN_FLIGHT outbound handshakes at once.
    expect(a.node.handshakesInFlight).toBeLessThanOrEqual(MAX_DIALS_IN_FLIGHT);
    await vi.waitFor(() => expect(a.node.counters.reconnects).toBeGreaterThan(600), waitLong);
    // b holds a's links as a sent them (whole summary, then deltas): b alone.
    await vi.waitFor(
      () =>
        expect(b.node.peers().find((p) => p.peerId === 'a')?.status?.links).toEqual([
          { peerId: 'b', state: 'connected' },
        ]),
      waitLong,
    );
    expect(a.node.handshakesInFlight).toBeLessThanOrEqual(MAX_DIALS_IN_FLIGHT + 1);
    expect(a.node.linkStates()).toEqual([{ peerId: 'b', state: 'connected' }]);
    expect(a.node.counters.badClaimedIds).toBe(1);
    expect(a.node.peers().some((p) => p.peerId === 'not a valid id!')).toBe(false);
    // b never had a reason to close: one link ever (each link-up sends the kill switch once).
    expect(stateOf(b, 'a')).toBe('connected');
    expect(b.node.counters.messagesIn.killswitch).toBe(1);
    expect(b.node.counters.repairedFields).toEqual({});
  });

  it('a failure while linking (a full disk) closes that link, never the process', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    onTestFinished(() => {
      process.off('unhandledRejection', onUnhandled);
    });
    const killSwitch = new MemoryKillSwitch();
    let diskFull = true;
    const adopt = killSwitch.adopt.bind(killSwitch);
    killSwitch.adopt = (remote) => {
      if (diskFull) throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      return adopt(remote);
    };
    const a = await makePeer('a', { killSwitch });
    const b = await makePeer('b');
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    // The link fails at link-up, is closed, and is dialed again (with backoff) by either side: b
    // learned a's address from the first link, and whichever side's timer fires first redials.
    await vi.waitFor(() => {
      expect(a.node.counters.reconnects + b.node.counters.reconnects).toBeGreaterThanOrEqual(2);
      expect(a.node.counters.linkFailures).toBeGreaterThanOrEqual(2);
    }, waitLong);
    expect(unhandled).toEqual([]);
    expect(a.node.isRunning).toBe(true);
    expect(stateOf(a, 'b')).not.toBe('connected');
    diskFull = false;
    await vi.waitFor(() => expect(stateOf(a, 'b')).toBe('connected'), waitLong);
    await vi.waitFor(() => expect(stateOf(b, 'a')).toBe('connected'), waitLong);
    expect(unhandled).toEqual([]);
  });

  it('ignores a peer pushing the kill-switch epoch far ahead, and counts it', async () => {
    const pushy = new MemoryKillSwitch();
    pushy.state = {
      active: true,
      reason: 'stuck',
      since: new Date().toISOString(),
      origin: 'b',
      epoch: 5000,
    };
    const a = await makePeer('a');
    const b = await makePeer('b', { killSwitch: pushy });
    a.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a.node.start();
    await vi.waitFor(() => expect(a.node.counters.implausibleKillSwitch).toBeGreaterThanOrEqual(1), waitLong);
    expect(a.killSwitch.get()).toMatchObject({ active: false, epoch: 0 });
    // The link itself stays: only the state is refused.
    expect(stateOf(a, 'b')).toBe('connected');
  });
});
