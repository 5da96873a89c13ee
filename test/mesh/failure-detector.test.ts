// The failure detector on fake (monotonic) time: no sockets, no timers.
import { describe, expect, it } from 'vitest';
import { FailureDetector, type Heard } from '../../src/mesh/failure-detector.js';

const peer = (peerId: string, lastSeen = 0): Heard => ({ peerId, lastSeen, state: 'connected' });

describe('FailureDetector', () => {
  it('calls a silent peer suspect after 2.5 intervals and down after 4, and spares one it hears', () => {
    const fd = new FailureDetector(1000, 0);
    const silent = peer('silent');
    const chatty = peer('chatty');
    const history: string[] = [];
    for (let now = 1000; now <= 5000; now += 1000) {
      chatty.lastSeen = now - 100;
      const r = fd.tick(now, [silent, chatty]);
      for (const s of r.suspect) {
        history.push(`${now} suspect ${s.peerId}`);
        silent.state = 'suspect';
      }
      for (const d of r.down) history.push(`${now} down ${d.peerId}`);
    }
    expect(history).toEqual(['3000 suspect silent', '5000 down silent']);
  });

  it('stretches every deadline by its own lag instead of accusing peers it could not hear', () => {
    const fd = new FailureDetector(1000, 0);
    const p = peer('p', 900);
    expect(fd.tick(1000, [p])).toEqual({ lagMs: 0, suspect: [], down: [] });
    // Our event loop was blocked for 3 s: the next tick comes 3 s late.
    const late = fd.tick(5000, [p]);
    expect(late.lagMs).toBe(3000);
    expect(late.suspect).toEqual([]);
    expect(p.lastSeen).toBe(3900);
    // A small delay (under half an interval) is not lag.
    expect(fd.tick(6400, [p]).lagMs).toBe(0);
  });

  it('ignores peers already down', () => {
    const fd = new FailureDetector(1000, 0);
    const gone: Heard = { peerId: 'gone', lastSeen: 0, state: 'down' };
    expect(fd.tick(10_000, [gone])).toMatchObject({ suspect: [], down: [] });
    expect(gone.lastSeen).toBe(0);
  });
});
