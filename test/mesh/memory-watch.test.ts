// Watchers (watch-ring.ts) on the in-memory network and virtual time (issue 11, item 18): the idle
// heartbeat traffic of a peer does not grow with the fleet, and a silent peer is still seen
// `suspect` within 1.5 s and `down` within 3 s by every peer, watchers or not, while a peer busy
// for 1.2 s is never accused.
import { describe, expect, it } from 'vitest';
import type { Link } from '../../src/mesh/link.js';
import { watchRing } from '../../src/mesh/watch-ring.js';
import { captureLogger } from '../helpers/logger.js';
import {
  FAST_HEARTBEAT_MS,
  MemoryMesh,
  type MemoryPeer,
  pauseAndTimeVerdicts,
  stateIn,
} from './memory-harness.js';

const ids = (n: number) => Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);

async function fleet(n: number, opts: Parameters<MemoryMesh['full']>[1] = {}) {
  const m = new MemoryMesh();
  const peers = m.full(ids(n), opts);
  await m.startAll(peers);
  await m.linked(peers, 30_000);
  // Past link-up's status exchange: only heartbeats flow now.
  await m.time.advance(6_000);
  return { m, peers };
}

const framesOut = (p: MemoryPeer) => Object.values(p.node.counters.messagesOut).reduce((s, n) => s + n, 0);

describe('the watch ring', () => {
  it('gives every peer of a full mesh two watchers and two targets', () => {
    const all = ids(7);
    const watchedBy = new Map<string, string[]>();
    for (const self of all) {
      const { targets, watchers } = watchRing(
        self,
        all.filter((id) => id !== self),
      );
      expect(targets.size).toBe(2);
      expect(watchers.size).toBe(2);
      for (const t of targets) watchedBy.set(t, [...(watchedBy.get(t) ?? []), self]);
      // What a peer believes about its watchers is what they compute.
      for (const w of watchers)
        expect(
          watchRing(
            w,
            all.filter((id) => id !== w),
          ).targets.has(self),
        ).toBe(true);
    }
    for (const id of all) expect(watchedBy.get(id)?.length, id).toBe(2);
  });

  it('watches everyone when the fleet is that small', () => {
    expect([...watchRing('b', ['a', 'c']).targets].sort()).toEqual(['a', 'c']);
    expect([...watchRing('a', ['b']).targets]).toEqual(['b']);
    expect(watchRing('a', []).targets.size).toBe(0);
  });
});

describe('idle heartbeat traffic per peer', () => {
  it('is the same at 6 and at 12 peers: two pings and two pongs per interval', async () => {
    const perPeer: number[] = [];
    for (const n of [6, 12]) {
      const { m, peers } = await fleet(n);
      const before = peers.map(framesOut);
      await m.time.advance(10_000);
      const sent = peers.map((p, i) => framesOut(p) - (before[i] as number));
      // 50 intervals of 200 ms; each peer pings its 2 targets and answers its 2 watchers.
      for (const s of sent) {
        expect(s).toBeGreaterThanOrEqual(190);
        expect(s).toBeLessThanOrEqual(210);
      }
      perPeer.push(sent.reduce((a, b) => a + b, 0) / n);
    }
    expect(Math.abs((perPeer[0] as number) - (perPeer[1] as number))).toBeLessThan(10);
  });
});

describe('a silent peer in a fleet of 7', () => {
  it('is suspect within 1.5 s and down within 3 s on every peer, watcher or not', async () => {
    for (const phase of [0, 37, 74, 111, 148, 185]) {
      const { logger, lines } = captureLogger();
      const { m, peers } = await fleet(7, { logger });
      const victim = peers[3] as MemoryPeer;
      const observers = peers.filter((p) => p !== victim);
      await m.time.advance(phase);
      const seen = await pauseAndTimeVerdicts(m, victim, observers);
      for (const [observer, at] of seen) {
        const where = `${observer} at phase ${phase}: ${JSON.stringify(at)}`;
        expect(at.suspect, where).toBeGreaterThanOrEqual(1_200);
        expect(at.suspect, where).toBeLessThanOrEqual(1_500);
        expect(at.down, where).toBeLessThanOrEqual(3_000);
      }
      // Most observers learnt it from a watcher's report, not from heartbeats of their own.
      const reported = lines.filter(
        (l) => l.msg === 'peer suspect (reported by its watcher)' && l.peer === victim.id,
      );
      expect(reported.length).toBeGreaterThanOrEqual(observers.length - 2);
      // Nobody else was accused, and the victim comes back.
      for (const o of observers)
        for (const q of observers)
          if (o !== q) expect(stateIn(o, q.id), `${o.id} sees ${q.id}`).toBe('connected');
      victim.host.resume();
      await m.time.until(() => observers.every((o) => stateIn(o, victim.id) === 'connected'), 5_000);
    }
  });

  it('that was only busy for 1.2 s is never accused, nor reported', async () => {
    for (const phase of [0, 50, 100, 150, FAST_HEARTBEAT_MS - 1]) {
      const { logger, lines } = captureLogger();
      const { m, peers } = await fleet(7, { logger });
      const busy = peers[3] as MemoryPeer;
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
      expect(lines.filter((l) => String(l.msg).startsWith('peer suspect'))).toEqual([]);
    }
  });

  it('keeps a peer it heard from just now connected when a watcher reports it', async () => {
    const { logger, lines } = captureLogger();
    const { m, peers } = await fleet(5, { logger });
    const [a, b] = peers as [MemoryPeer, MemoryPeer];
    // b's links with everyone but a stay up: a alone loses b (a one-sided cut).
    m.net.partition(a.host, b.host);
    await m.time.until(() => stateIn(a, b.id) === 'down' || stateIn(b, a.id) === 'down', 5_000);
    await m.time.advance(2_000);
    // Whoever else a's report reached had heard b within the suspicion time: b stays connected there.
    for (const o of peers.slice(2)) expect(stateIn(o, b.id), o.id).toBe('connected');
    expect(lines.filter((l) => l.msg === 'peer suspect (reported by its watcher)')).toEqual([]);
  });

  it('cannot bring down a live peer with a false report: it is pinged and answers', async () => {
    const { logger, lines } = captureLogger();
    // p04's neighbours on the ring (p02, p03, p05, p06) hear it all the time; p01 and p07 do not.
    const { m, peers } = await fleet(8, { logger });
    const liar = peers[0] as MemoryPeer;
    const victim = peers[4] as MemoryPeer;
    // Long enough that nobody who does not watch the victim has heard it within a suspicion's time.
    await m.time.advance(3_000);
    const from = lines.length;
    const report = Buffer.from(
      JSON.stringify({ type: 'suspect', peerId: victim.id, bootId: `${victim.id}-boot` }),
    );
    const liarLinks = (liar.node as unknown as { links: Map<string, Link> }).links;
    for (const other of peers) {
      if (other === liar || other === victim) continue;
      liarLinks.get(other.id)?.sendBytes(report);
    }
    await m.time.advance(5_000);
    // Some peers took the report and asked the victim; it answered, and nobody dropped it.
    expect(lines.some((l) => l.msg === 'peer suspect (reported by its watcher)')).toBe(true);
    for (const o of peers) if (o !== victim) expect(stateIn(o, victim.id), o.id).toBe('connected');
    expect(lines.slice(from).filter((l) => l.msg === 'peer down')).toEqual([]);
  });

  it('cut off from everyone, sees them all down, watched or not', async () => {
    const { m, peers } = await fleet(7);
    const lonely = peers[3] as MemoryPeer;
    const others = peers.filter((p) => p !== lonely);
    for (const o of others) m.net.partition(lonely.host, o.host);
    const cutAt = m.time.now;
    // Its two targets fall silent first; it then asks the four it does not watch, which are down
    // a suspicion and a grace later: 1.49 + 1.49 + 1.3 s at most.
    await m.time.until(() => others.every((o) => stateIn(lonely, o.id) === 'down'), 10_000);
    expect(m.time.now - cutAt).toBeLessThanOrEqual(4_500);
    // And they all see it down, within the usual 3 s.
    await m.time.until(() => others.every((o) => stateIn(o, lonely.id) === 'down'), 1_000);
  });
});
