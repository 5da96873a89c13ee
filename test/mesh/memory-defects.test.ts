// The defects of issue 11 (items 2-8) on the in-memory network and virtual time: the production
// MeshNode, handshake and sealed links, with pipes and time under the test's control, so each
// history is exact and the same every run. The real-socket tests of the same defects stay.
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Keyring } from '../../src/mesh/auth.js';
import type { Discovery } from '../../src/mesh/discovery/types.js';
import { HandshakeError } from '../../src/mesh/handshake.js';
import { CLOSE } from '../../src/mesh/protocol.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { MemoryKillSwitch, SECRET } from './harness.js';
import { MemoryMesh, type MemoryPeer, stateIn } from './memory-harness.js';

const selfInfo = (peerId: string) => ({
  peerId,
  bootId: `${peerId}-boot`,
  cluster: 'quantum-bot',
  listenPort: 1,
});

describe('a dial in flight (issue 11, item 2, and the dialer aborts)', () => {
  it('an aborted dial settles at once, whatever the other side does', async () => {
    const m = new MemoryMesh();
    const a = m.net.host('a');
    const b = m.net.host('b');
    // A partition loses the SYN: without the abort this dial would hang for its 5 s timeout.
    m.net.partition(a, b);
    const pending = a.transport.dial(b.address, {
      self: selfInfo('a'),
      keyring: new Keyring([SECRET]),
      killSwitch: () => KILL_SWITCH_NEVER_SET,
    });
    await m.time.advance(100);
    pending.abort();
    const err = await pending.link.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).closeCode).toBe(CLOSE.GOING_AWAY);
    expect(m.time.now).toBe(100);
    // Its timeout timer went with it.
    await m.time.advance(1);
    expect(m.time.pendingOn(a)).toBe(0);
  });

  it('re-dials after a restart an address whose dial was in flight at stop', async () => {
    const m = new MemoryMesh();
    const a = m.peer('a');
    const b = m.peer('b');
    a.peers = [b.host.address];
    m.net.partition(a.host, b.host);
    await b.node.start();
    await a.node.start();
    await m.time.advance(100);
    expect(a.node.handshakesInFlight).toBe(1);
    await a.node.stop();
    expect(a.node.handshakesInFlight).toBe(0);
    m.net.heal(a.host, b.host);
    await a.node.start();
    await m.linked([a, b], 2_000);
  });
});

describe('stop during start (issue 11, item 3)', () => {
  it('leaves no timer, listener or announcement, and starts cleanly afterwards', async () => {
    const m = new MemoryMesh();
    let active = 0;
    const killSwitch = new MemoryKillSwitch();
    let a: MemoryPeer | undefined;
    // A provider whose withdrawal (the mDNS goodbye) takes 50 ms.
    const slow: Discovery = {
      source: 'mdns',
      async start() {
        active++;
      },
      async stop() {
        await new Promise((r) => a?.host.scheduler.setTimeout(() => r(undefined), 50));
        active = Math.max(0, active - 1);
      },
    };
    a = m.peer('a', { alsoDiscover: slow, killSwitch });
    await a.node.start();
    expect(active).toBe(1);
    const firstStop = a.node.stop();
    const restart = a.node.start();
    const secondStop = a.node.stop();
    await m.time.advance(200);
    await Promise.all([firstStop, restart, secondStop]);
    await m.time.advance(10_000);
    expect(a.node.isRunning).toBe(false);
    expect(killSwitch.listeners.size).toBe(0);
    expect(active).toBe(0);
    expect(m.time.pendingOn(a.host)).toBe(0);
    await a.node.start();
    expect(killSwitch.listeners.size).toBe(1);
    expect(a.host.transport.listening).toBe(true);
  });

  it('a node stopped right after a link change still announces link changes at once after a restart', async () => {
    const m = new MemoryMesh();
    const [a, b] = m.full(['a', 'b']) as [MemoryPeer, MemoryPeer];
    await m.startAll([a, b]);
    await m.linked([a, b]);
    await m.time.advance(1_000);
    // b leaves; a stops while its announcement of that (due in 100 ms) is pending.
    await b.node.stop();
    await m.time.until(() => stateIn(a, 'b') === 'down', 50);
    await a.node.stop();
    await m.startAll([a, b]);
    await m.linked([a, b]);
    await m.time.advance(1_000);
    // c joins a; b learns it from a's summary soon, not at the next 5 s sync.
    const c = m.peer('c');
    c.peers = [a.host.address];
    await c.node.start();
    const linksOfA = () => b.node.peers().find((p) => p.peerId === 'a')?.status?.links ?? [];
    await m.time.until(() => stateIn(a, 'c') === 'connected', 2_000);
    const took = await m.time.until(() => linksOfA().some((l) => l.peerId === 'c'), 10_000);
    expect(took).toBeLessThanOrEqual(500);
  });
});

describe('one peer at two addresses (issue 11, item 4)', () => {
  // The handshakes over the two routes complete in the same order on both sides, or (a slower way
  // to the acceptor on one route, a slower way back on the other) in opposite orders.
  const cases = [
    { viaIp: 0, viaName: 0 },
    { viaIp: 4, viaName: 6 },
    { viaIp: 10, viaName: 15 },
    { viaIp: 6, viaName: 4 },
  ];
  for (const { viaIp, viaName } of cases) {
    it(`ends with one link on each side, never seen down by either (routes +${viaIp} / +${viaName} ms)`, async () => {
      const m = new MemoryMesh();
      const a = m.peer('a');
      const b = m.peer('b');
      // b answers at a hostname and at its IP: the same peer at two addresses.
      m.net.alias('b.example:9000', b.host);
      m.net.route(b.host.address, { toAcceptor: viaIp });
      m.net.route('b.example:9000', { toDialer: viaName });
      a.peers = ['b.example:9000', b.host.address];
      await m.startAll([a, b]);
      await m.linked([a, b]);
      // Once linked: the acceptor always holds one link, and the dialer never sees b other than
      // connected. (It may hold no link for a few ms: the link the acceptor refused closes the
      // instant it comes up, its ready and the close travelling together, before the other
      // handshake completes.)
      let acceptorFewest = Number.POSITIVE_INFINITY;
      const dialerSaw = new Set<string>();
      await m.time.advance(30_000, () => {
        acceptorFewest = Math.min(acceptorFewest, b.node.linkCount);
        dialerSaw.add(stateIn(a, 'b') ?? 'absent');
      });
      expect(acceptorFewest).toBe(1);
      expect([...dialerSaw]).toEqual(['connected']);
      expect(a.node.linkCount).toBe(1);
      expect(b.node.linkCount).toBe(1);
      expect(a.node.totalReconnectAttempts).toBe(2);
      expect(
        a.node
          .peers()
          .filter((p) => p.state === 'connected')
          .map((p) => p.peerId),
      ).toEqual(['b']);
    });
  }
});

describe('backoff (issue 11, item 5)', () => {
  it('is not reset by repeated sightings of an address that keeps refusing', async () => {
    const m = new MemoryMesh();
    const refusing = m.net.host('x');
    refusing.refusing = true;
    let a: MemoryPeer | undefined;
    // DNS answers the same address every 5 s, for ever.
    const dns: Discovery = {
      source: 'dns',
      async start(ctx) {
        const tick = () => {
          ctx.onSighting({ address: refusing.address, source: 'dns' });
          a?.host.scheduler.setTimeout(tick, 5_000);
        };
        tick();
      },
      async stop() {},
    };
    a = m.peer('a', { alsoDiscover: dns });
    await a.node.start();
    const dialsAt: number[] = [];
    let seen = 0;
    await m.time.advance(180_000, () => {
      const count = a?.host.transport.dialCount ?? 0;
      if (count > seen) dialsAt.push(m.time.now);
      seen = count;
    });
    const gaps = dialsAt.slice(1).map((t, i) => t - (dialsAt[i] as number));
    // Doubling to the 30 s cap: the gaps grow well past the 5 s between sightings.
    expect(Math.max(...gaps)).toBeGreaterThan(10_000);
    expect(dialsAt.length).toBeLessThan(30);
  });
});

describe('a wall-clock step (issue 11, item 6)', () => {
  it('changes neither failure detection nor reconnects', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const m = new MemoryMesh();
    const [a, b] = m.full(['a', 'b']) as [MemoryPeer, MemoryPeer];
    await m.startAll([a, b]);
    await m.linked([a, b]);
    // NTP (or an operator) steps the wall clock back by an hour.
    vi.setSystemTime(Date.now() - 3_600_000);
    b.host.pause();
    const down = await m.time.until(() => stateIn(a, 'b') === 'down', 10_000);
    expect(down).toBeLessThanOrEqual(3_000);
    // And forward by a day: the backoff is measured on the monotonic clock as well.
    vi.setSystemTime(Date.now() + 86_400_000);
    b.host.resume();
    expect(await m.time.until(() => stateIn(a, 'b') === 'connected', 5_000)).toBeLessThan(5_000);
  });
});

describe('a failure on one link (issue 11, item 7)', () => {
  it('closes that link only; the node and its other links keep running', async () => {
    const m = new MemoryMesh();
    const killSwitch = new MemoryKillSwitch();
    const adopt = killSwitch.adopt.bind(killSwitch);
    // A full disk, say, the first time a state from b is written: b's message is the first to say
    // so (c's summaries carry it too, later).
    let failures = 0;
    killSwitch.adopt = (remote) => {
      if (remote.origin === 'b' && failures++ === 0)
        throw Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
      return adopt(remote);
    };
    const a = m.peer('a', { killSwitch });
    const [b, c] = [m.peer('b'), m.peer('c')];
    a.peers = [b.host.address, c.host.address];
    b.peers = [c.host.address];
    await m.startAll([a, b, c]);
    await m.linked([a, b, c]);
    let cDropped = false;
    b.killSwitch.set(true, 'halt', 'b');
    await m.time.advance(5_000, () => {
      if (stateIn(a, 'c') !== 'connected') cDropped = true;
    });
    expect(a.node.counters.linkFailures).toBe(1);
    expect(cDropped).toBe(false);
    expect(a.node.isRunning).toBe(true);
    // a adopted the state from c's summary, and relinked b.
    expect(a.killSwitch.get()).toMatchObject({ active: true, origin: 'b' });
    expect(stateIn(a, 'b')).toBe('connected');
  });
});

describe('two live processes with one PEER_ID (issue 11, item 8)', () => {
  it('are refused with their own close code, reported on both sides, and stop flapping', async () => {
    const m = new MemoryMesh();
    const b = m.peer('b');
    const a1 = m.peer('a', { bootId: 'a-boot-1', host: m.net.host('a1') });
    const a2 = m.peer('a', { bootId: 'a-boot-2', host: m.net.host('a2') });
    a1.peers = [b.host.address];
    a2.peers = [b.host.address];
    await m.startAll([b, a1]);
    await m.time.until(() => b.node.linkCount === 1, 2_000);
    await a2.node.start();
    const viewOfA = () => b.node.peers().find((p) => p.peerId === 'a');
    await m.time.until(() => (viewOfA()?.duplicateId?.refusals ?? 0) >= 1, 10_000);
    expect(viewOfA()?.duplicateId?.bootIds.sort()).toEqual(['a-boot-1', 'a-boot-2']);
    const refusedSide = () =>
      [a1, a2].find((a) =>
        a.node.peers().some((p) => p.peerId === 'b' && p.refused?.code === CLOSE.DUPLICATE_PEER_ID),
      );
    await m.time.until(() => refusedSide() !== undefined, 10_000);
    expect(refusedSide()?.node.counters.duplicatePeerIds).toBeGreaterThanOrEqual(1);
    // Stable from now on: b links no new process for 'a' (each link-up sends the kill switch once).
    const linkUps = b.node.counters.messagesOut.killswitch;
    const holder = viewOfA()?.status?.bootId;
    await m.time.advance(60_000);
    expect(b.node.counters.messagesOut.killswitch).toBe(linkUps);
    expect(viewOfA()).toMatchObject({ state: 'connected' });
    expect(viewOfA()?.status?.bootId).toBe(holder);
  });
});
