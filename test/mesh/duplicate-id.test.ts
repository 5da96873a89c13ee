// Two live processes with one PEER_ID (issue 11, defect 8): detected, refused with their own close
// code and reported on both sides, instead of replacing each other every 100-250 ms for ever.
import { describe, expect, it, vi } from 'vitest';
import { buildFleet } from '../../src/http/fleet.js';
import { BootHistory } from '../../src/mesh/boot-history.js';
import { CLOSE } from '../../src/mesh/protocol.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { makePeer } from './harness.js';

const waitLong = { timeout: 10_000, interval: 50 };

describe('BootHistory', () => {
  it('remembers replaced boots per peer id, bounded', () => {
    const h = new BootHistory();
    h.retire('a', 'boot-1');
    expect(h.isRetired('a', 'boot-1')).toBe(true);
    expect(h.isRetired('a', 'boot-2')).toBe(false);
    expect(h.isRetired('b', 'boot-1')).toBe(false);
    for (let i = 2; i < 20; i++) h.retire('a', `boot-${i}`);
    expect(h.isRetired('a', 'boot-1')).toBe(false);
    expect(h.isRetired('a', 'boot-19')).toBe(true);
  });
});

describe('a PEER_ID used by two live processes', () => {
  it('is refused with its own close code, shown on /mesh, and stops flapping', async () => {
    const b = await makePeer('b');
    const a1 = await makePeer('a', { bootId: 'a-boot-1' });
    const a2 = await makePeer('a', { bootId: 'a-boot-2' });
    a1.peers = [`127.0.0.1:${b.port}`];
    a2.peers = [`127.0.0.1:${b.port}`];
    await b.node.start();
    await a1.node.start();
    await vi.waitFor(() => expect(b.node.linkCount).toBe(1));
    await a2.node.start();
    await vi.waitFor(() => {
      const view = b.node.peers().find((p) => p.peerId === 'a');
      expect(view?.duplicateId?.bootIds.sort()).toEqual(['a-boot-1', 'a-boot-2']);
      expect(view?.duplicateId?.refusals).toBeGreaterThanOrEqual(1);
    }, waitLong);
    // The refused process knows why (a field on the peer in its /mesh) and waits before trying again.
    await vi.waitFor(() => {
      const refusedSide = [a1, a2].find((a) =>
        a.node.peers().some((p) => p.peerId === 'b' && p.refused?.code === CLOSE.DUPLICATE_PEER_ID),
      );
      expect(refusedSide).toBeDefined();
      expect(refusedSide?.node.counters.duplicatePeerIds).toBeGreaterThanOrEqual(1);
    }, waitLong);
    // Stable from now on: b links no new process for 'a' (each link-up sends the kill switch once).
    const linkUps = b.node.counters.messagesOut.killswitch;
    const holder = b.node.peers().find((p) => p.peerId === 'a')?.status?.bootId;
    await new Promise((r) => setTimeout(r, 2000));
    expect(b.node.counters.messagesOut.killswitch).toBe(linkUps);
    expect(b.node.peers().find((p) => p.peerId === 'a')).toMatchObject({ state: 'connected' });
    expect(b.node.peers().find((p) => p.peerId === 'a')?.status?.bootId).toBe(holder);
  });
});

describe('the dashboard card', () => {
  it('carries the PEER_ID conflict from /mesh to the fleet card the dashboard badges', () => {
    const fleet = buildFleet(
      {
        peerId: 'b',
        address: '127.0.0.1:9000',
        version: '1',
        uptime: 1,
        subsystems: [],
        killSwitch: KILL_SWITCH_NEVER_SET,
        summary: null,
        now: 0,
      },
      [
        {
          peerId: 'a',
          state: 'connected',
          address: '127.0.0.1:9001',
          lastSeen: null,
          rttMs: null,
          reconnectAttempts: 0,
          status: null,
          duplicateId: { bootIds: ['a-boot-2', 'a-boot-1'], refusals: 3, lastAt: new Date(0).toISOString() },
        },
      ],
    );
    expect(fleet.peers.find((p) => p.peerId === 'a')?.duplicateId).toEqual({
      bootIds: ['a-boot-2', 'a-boot-1'],
      refusals: 3,
    });
    expect(fleet.peers.find((p) => p.peerId === 'b')?.duplicateId).toBeNull();
  });
});
