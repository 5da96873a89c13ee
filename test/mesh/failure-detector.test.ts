// The failure detector on fake (monotonic) time: no sockets, no timers.
import { describe, expect, it } from 'vitest';
import {
  BUSY_TOLERANCE_MS,
  detectorPolicy,
  FailureDetector,
  type Heard,
} from '../../src/mesh/failure-detector.js';

const peer = (peerId: string, lastSeen = 0): Heard => ({ peerId, lastSeen, state: 'connected' });

describe('FailureDetector', () => {
  it('derives its deadlines from the heartbeat interval and the busy tolerance', () => {
    expect(detectorPolicy(200)).toMatchObject({ suspectAfterMs: 1_490, downAfterMs: 2_790 });
    // A slower heartbeat (an operator's MESH_HEARTBEAT_INTERVAL) stretches both.
    expect(detectorPolicy(1_000)).toMatchObject({ suspectAfterMs: 2_290, downAfterMs: 3_590 });
    // A peer silent for one interval and then busy for the tolerance stays under suspicion's bar.
    for (const interval of [100, 200, 250, 1_000])
      expect(detectorPolicy(interval).suspectAfterMs).toBeGreaterThan(interval + BUSY_TOLERANCE_MS);
  });

  it('calls a silent peer suspect, then down, at its deadlines; spares one it hears', () => {
    const fd = new FailureDetector(detectorPolicy(200), 0);
    const silent = peer('silent');
    const chatty = peer('chatty');
    const history: string[] = [];
    let now = 0;
    // Asked at every heartbeat (200 ms) and at each deadline it names, as the node does.
    let check: number | undefined = 0;
    while (now <= 4_000) {
      chatty.lastSeen = now - (now % 200);
      const r = fd.tick(now, [silent, chatty]);
      for (const s of r.suspect) {
        history.push(`${now} suspect ${s.peerId}`);
        silent.state = 'suspect';
      }
      for (const d of r.down) {
        history.push(`${now} down ${d.peerId}`);
        silent.state = 'down';
      }
      check = r.nextCheckAt;
      now = Math.min(now - (now % 200) + 200, check ?? Number.POSITIVE_INFINITY);
    }
    expect(history).toEqual(['1491 suspect silent', '2791 down silent']);
  });

  it('names the next deadline of the peers it watches', () => {
    const fd = new FailureDetector(detectorPolicy(200), 0);
    expect(fd.tick(100, [peer('a', 50), peer('b', 90)]).nextCheckAt).toBe(50 + 1_490 + 1);
    const suspect: Heard = { peerId: 's', lastSeen: 0, state: 'suspect' };
    expect(fd.tick(300, [suspect]).nextCheckAt).toBe(2_791);
    expect(fd.tick(400, []).nextCheckAt).toBeUndefined();
  });

  it('stretches every deadline by its own lag instead of accusing peers it could not hear', () => {
    const fd = new FailureDetector(detectorPolicy(200), 0);
    const p = peer('p', 150);
    expect(fd.tick(200, [p])).toMatchObject({ lagMs: 0, suspect: [], down: [] });
    // Our event loop was blocked for 3 s: the next call comes 3 s late.
    const late = fd.tick(3_400, [p]);
    expect(late.lagMs).toBe(3_000);
    expect(late.suspect).toEqual([]);
    expect(late.down).toEqual([]);
    expect(p.lastSeen).toBe(3_150);
    // A small delay (under a quarter of the interval) is not lag.
    expect(fd.tick(3_640, [p]).lagMs).toBe(0);
  });

  it('ignores peers already down', () => {
    const fd = new FailureDetector(detectorPolicy(200), 0);
    const gone: Heard = { peerId: 'gone', lastSeen: 0, state: 'down' };
    expect(fd.tick(10_000, [gone])).toMatchObject({ suspect: [], down: [], nextCheckAt: undefined });
    expect(gone.lastSeen).toBe(0);
  });
});
