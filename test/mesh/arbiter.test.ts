// The link arbiter (issue 11, defect 4): one peer at two addresses must end with exactly one link,
// whatever order each side sees the two handshakes complete in.
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { routeUpgrades } from '../../src/http/upgrade.js';
import { arbitrate, type LinkFacts } from '../../src/mesh/arbiter.js';
import { CLOSE, MESH_PATH } from '../../src/mesh/protocol.js';
import { listen, makePeer, stateOf } from './harness.js';

/**
 * Plays two connections between dialer `a` and acceptor `b` through both sides' arbiters, each side
 * seeing them complete in its own order; a close by either side ends the connection for both.
 * Returns the connections left open and the one each side uses.
 */
function play(orderAtA: string[], orderAtB: string[]) {
  const closed = new Set<string>();
  const side = (selfId: string, peerId: string, direction: 'in' | 'out', order: string[]) => {
    let current: string | undefined;
    let spare: string | undefined;
    for (const conn of order) {
      const facts: LinkFacts = { peerId, bootId: `${peerId}-boot`, direction };
      if (!current) {
        current = conn;
        continue;
      }
      const v = arbitrate(selfId, facts, facts);
      if (v.action === 'refuse') closed.add(conn);
      else if (v.action === 'replace') {
        closed.add(current);
        current = conn;
      } else spare = conn;
    }
    return () => {
      // What the node does on a close: a spare takes over from a closed link.
      if (current && closed.has(current) && spare && !closed.has(spare)) current = spare;
      return current && !closed.has(current) ? current : undefined;
    };
  };
  const usedByA = side('a', 'b', 'out', orderAtA);
  const usedByB = side('b', 'a', 'in', orderAtB);
  const open = ['L1', 'L2'].filter((c) => !closed.has(c));
  return { open, a: usedByA(), b: usedByB() };
}

describe('arbitrate', () => {
  it('two dials of one side to one peer: exactly one link survives in every ordering, the same on both sides', () => {
    for (const [atA, atB] of [
      [
        ['L1', 'L2'],
        ['L1', 'L2'],
      ],
      [
        ['L1', 'L2'],
        ['L2', 'L1'],
      ],
      [
        ['L2', 'L1'],
        ['L1', 'L2'],
      ],
      [
        ['L2', 'L1'],
        ['L2', 'L1'],
      ],
    ] as const) {
      const result = play([...atA], [...atB]);
      expect(result.open, `A saw ${atA}, B saw ${atB}`).toHaveLength(1);
      expect(result.a).toBe(result.open[0]);
      expect(result.b).toBe(result.open[0]);
    }
  });

  it('crossing dials keep the link dialed by the greater peer id, on both sides', () => {
    const out: LinkFacts = { peerId: 'b', bootId: 'b1', direction: 'out' };
    const inn: LinkFacts = { peerId: 'b', bootId: 'b1', direction: 'in' };
    // At a (a < b): keep the link b dialed (inbound at a).
    expect(arbitrate('a', out, inn)).toMatchObject({ action: 'replace', code: CLOSE.DUPLICATE });
    expect(arbitrate('a', inn, out)).toMatchObject({ action: 'refuse', code: CLOSE.DUPLICATE });
    // At b: keep its own outbound link.
    const outA: LinkFacts = { peerId: 'a', bootId: 'a1', direction: 'out' };
    const inA: LinkFacts = { peerId: 'a', bootId: 'a1', direction: 'in' };
    expect(arbitrate('b', inA, outA)).toMatchObject({ action: 'replace' });
    expect(arbitrate('b', outA, inA)).toMatchObject({ action: 'refuse' });
  });

  it('a newer boot replaces the old link', () => {
    expect(
      arbitrate(
        'a',
        { peerId: 'b', bootId: 'b1', direction: 'in' },
        { peerId: 'b', bootId: 'b2', direction: 'in' },
      ),
    ).toMatchObject({ action: 'replace', code: CLOSE.REPLACED });
  });
});

describe('one peer at two addresses, over loopback', () => {
  it('ends with exactly one link on each side', async () => {
    const b = await makePeer('b');
    // b also answers on a second port: the same peer at two addresses.
    const { server, port } = await listen();
    routeUpgrades(server, { [MESH_PATH]: (req, socket, head) => b.node.handleUpgrade(req, socket, head) });
    onTestFinished(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });
    for (let round = 0; round < 3; round++) {
      const a = await makePeer(`a${round}`);
      a.peers = [`127.0.0.1:${b.port}`, `127.0.0.1:${port}`];
      if (round === 0) await b.node.start();
      await a.node.start();
      // Both dials have finished and whatever the arbiters closed is closed.
      await vi.waitFor(() => {
        expect(a.node.handshakesInFlight).toBe(0);
        expect(a.node.totalReconnectAttempts).toBeGreaterThanOrEqual(2);
        expect(stateOf(a, 'b')).toBe('connected');
        expect(stateOf(b, a.id)).toBe('connected');
      });
      await vi.waitFor(() => {
        expect(a.node.linkCount).toBe(1);
        expect(a.node.linkStates()).toEqual([{ peerId: 'b', state: 'connected' }]);
      });
      // Still linked a moment later (heartbeats flow on the kept link).
      // One side pings, the other answers: count heartbeat frames of either kind.
      const beats = () => (a.node.counters.messagesIn.pong ?? 0) + (a.node.counters.messagesIn.ping ?? 0);
      const before = beats();
      await vi.waitFor(() => expect(beats()).toBeGreaterThan(before + 2));
      expect(stateOf(a, 'b')).toBe('connected');
      await a.node.stop();
    }
  });
});
