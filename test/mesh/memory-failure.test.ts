// Failure detection on the in-memory network and virtual time (issue 11, item 19), with the
// production heartbeat interval: a peer that goes silent (SIGSTOP, a cut cable) is `suspect`
// within 1.5 s and `down` within 3 s, and one whose event loop is blocked for 1.2 s is never
// accused, whatever the phase of its heartbeats when it stops.
import { describe, expect, it } from 'vitest';
import { CLOSE } from '../../src/mesh/protocol.js';
import { captureLogger } from '../helpers/logger.js';
import { MemoryMesh, type MemoryPeer, pauseAndTimeVerdicts, stateIn } from './memory-harness.js';

/** Phases of the 200 ms heartbeat at which a peer stops: 0, 13, 26 ... 195 ms. */
const PHASES = Array.from({ length: 16 }, (_, i) => i * 13);

async function linkedTrio(ids: [string, string, string]) {
  const m = new MemoryMesh();
  const peers = m.full(ids) as [MemoryPeer, MemoryPeer, MemoryPeer];
  await m.startAll(peers);
  await m.linked(peers);
  // Past link-up's status exchange: only heartbeats flow now.
  await m.time.advance(6_000);
  return { m, peers };
}

describe('a peer that goes silent', () => {
  // 'm' is the greatest id (it pings its links) in the first trio, the least (it only answers) in
  // the second.
  for (const ids of [
    ['a', 'b', 'm'],
    ['m', 'x', 'y'],
  ] as Array<[string, string, string]>) {
    it(`is suspect within 1.5 s and down within 3 s, and relinked after SIGCONT (${ids.join(',')})`, async () => {
      for (const phase of PHASES) {
        const { m, peers } = await linkedTrio(ids);
        const victim = peers.find((p) => p.id === 'm') as MemoryPeer;
        const observers = peers.filter((p) => p !== victim);
        await m.time.advance(phase);
        const seen = await pauseAndTimeVerdicts(m, victim, observers);
        for (const [observer, at] of seen) {
          const where = `${observer} at phase ${phase}: ${JSON.stringify(at)}`;
          // Never before a peer merely busy for 1.2 s could have been silent this long.
          expect(at.suspect, where).toBeGreaterThanOrEqual(1_200);
          expect(at.suspect, where).toBeLessThanOrEqual(1_500);
          expect(at.down, where).toBeLessThanOrEqual(3_000);
        }
        // The observers still see each other.
        expect(stateIn(observers[0] as MemoryPeer, (observers[1] as MemoryPeer).id)).toBe('connected');
        victim.host.resume();
        const back = await m.time.until(
          () =>
            observers.every(
              (o) => stateIn(o, victim.id) === 'connected' && stateIn(victim, o.id) === 'connected',
            ),
          5_000,
        );
        expect(back).toBeLessThan(1_000);
      }
    });
  }

  it('on both sides of a partition, and relinks when it heals', async () => {
    const { m, peers } = await linkedTrio(['a', 'b', 'c']);
    const [a, b] = peers;
    m.net.partition(a.host, b.host);
    const cutAt = m.time.now;
    await m.time.until(() => stateIn(a, 'b') === 'down' && stateIn(b, 'a') === 'down', 5_000);
    expect(m.time.now - cutAt).toBeLessThanOrEqual(3_000);
    expect(stateIn(a, 'c')).toBe('connected');
    expect(stateIn(b, 'c')).toBe('connected');
    m.net.heal(a.host, b.host);
    await m.time.until(() => stateIn(a, 'b') === 'connected' && stateIn(b, 'a') === 'connected', 35_000);
  });
});

describe('a peer whose event loop is blocked for 1.2 s', () => {
  for (const ids of [
    ['a', 'b', 'm'],
    ['m', 'x', 'y'],
  ] as Array<[string, string, string]>) {
    it(`is never accused, nor does it accuse the others (${ids.join(',')})`, async () => {
      for (const phase of [...PHASES, 199]) {
        const { m, peers } = await linkedTrio(ids);
        const busy = peers.find((p) => p.id === 'm') as MemoryPeer;
        const attempts = peers.map((p) => p.node.totalReconnectAttempts);
        await m.time.advance(phase);
        const accused = new Set<string>();
        const watch = () => {
          for (const p of peers)
            for (const q of peers)
              if (p !== q && stateIn(p, q.id) !== 'connected')
                accused.add(`${p.id} saw ${q.id} ${stateIn(p, q.id)}`);
        };
        busy.host.pause();
        await m.time.advance(1_200, watch);
        busy.host.resume();
        await m.time.advance(5_000, watch);
        expect([...accused], `phase ${phase}`).toEqual([]);
        expect(peers.map((p) => p.node.totalReconnectAttempts)).toEqual(attempts);
      }
    });
  }
});

describe('idle heartbeat traffic', () => {
  it('is one ping and one pong per link every 200 ms', async () => {
    const { m, peers } = await linkedTrio(['a', 'b', 'c']);
    const frames = () =>
      peers.reduce(
        (sum, p) => sum + Object.values(p.node.counters.messagesOut).reduce((s, n) => s + n, 0),
        0,
      );
    const before = frames();
    await m.time.advance(10_000);
    // 3 links, 2 frames each per 200 ms, for 10 s: 300 frames, and nothing else while idle.
    expect(frames() - before).toBeGreaterThanOrEqual(295);
    expect(frames() - before).toBeLessThanOrEqual(305);
  });
});

describe('a middlebox that loses frames', () => {
  it('breaks the sealed sequence: the link closes (4414) and relinks', async () => {
    const m = new MemoryMesh();
    const { logger, lines } = captureLogger();
    const [a, b, c] = m.full(['a', 'b', 'c'], { logger }) as [MemoryPeer, MemoryPeer, MemoryPeer];
    await m.startAll([a, b, c]);
    await m.linked([a, b, c]);
    await m.time.advance(6_000);
    // Lose what a sends b for 300 ms: the next frame that arrives does not open.
    m.net.drop(a.host, b.host);
    await m.time.advance(300);
    m.net.drop(a.host, b.host, false);
    const unsealed = () =>
      lines.some((l) => l.msg === 'peer down' && l.peer === 'a' && l.code === CLOSE.UNSEALED);
    await m.time.until(unsealed, 2_000);
    await m.time.until(() => stateIn(a, 'b') === 'connected' && stateIn(b, 'a') === 'connected', 5_000);
    expect(stateIn(a, 'c')).toBe('connected');
  });
});
