import { describe, expect, it } from 'vitest';
import { buildFleet, type LocalView } from '../../src/http/fleet.js';
import type { Summary } from '../../src/mesh/protocol.js';
import type { MeshPeerView } from '../../src/mesh/view.js';
import type { KillSwitchState } from '../../src/store/kill-switch.js';

const NOW = Date.parse('2026-01-01T00:00:00Z');
const OFF: KillSwitchState = {
  active: false,
  reason: '',
  since: new Date(0).toISOString(),
  origin: '',
  epoch: 0,
};
const ON: KillSwitchState = {
  active: true,
  reason: 'audit',
  since: new Date(NOW).toISOString(),
  origin: 'a',
  epoch: 1,
};

function local(killSwitch: KillSwitchState): LocalView {
  return {
    peerId: 'a',
    address: '127.0.0.1:9001',
    version: '1',
    uptime: 10,
    subsystems: [],
    killSwitch,
    summary: null,
    now: NOW,
  };
}

function peer(peerId: string, state: MeshPeerView['state'], killSwitch: KillSwitchState): MeshPeerView {
  const status: Summary = {
    peerId,
    bootId: `${peerId}-boot`,
    version: '1',
    uptime: 5,
    apiPort: 9002,
    killSwitch,
    subsystems: [{ name: 'health', state: 'running', restarts: 0 }],
    queues: {},
    links: [],
  };
  return {
    peerId,
    state,
    address: '127.0.0.1:9002',
    lastSeen: new Date(NOW).toISOString(),
    rttMs: 1,
    reconnectAttempts: 0,
    status,
  };
}

const killSwitchOf = (fleet: ReturnType<typeof buildFleet>, id: string) =>
  fleet.peers.find((p) => p.peerId === id)?.killSwitch;

describe('buildFleet: the kill switch on every card', () => {
  it('shows a newer local kill switch on connected peers before their next status says so', () => {
    // The change floods to every linked peer at once; their summaries catch up a sync later.
    const fleet = buildFleet(local(ON), [peer('b', 'connected', OFF), peer('c', 'connected', OFF)]);
    for (const id of ['a', 'b', 'c'])
      expect(killSwitchOf(fleet, id), id).toMatchObject({ active: true, reason: 'audit', epoch: 1 });
  });

  it('keeps the last report of a peer that is not connected (it adopts the change when it links)', () => {
    const fleet = buildFleet(local(ON), [peer('b', 'down', OFF), peer('c', 'suspect', OFF)]);
    expect(killSwitchOf(fleet, 'b')).toMatchObject({ active: false, reason: '', epoch: 0 });
    expect(killSwitchOf(fleet, 'c')).toMatchObject({ active: false, reason: '', epoch: 0 });
  });

  it('keeps what a peer reports when it is the newer state', () => {
    const newer: KillSwitchState = { ...OFF, reason: 'resumed', origin: 'b', epoch: 2 };
    const fleet = buildFleet(local(ON), [peer('b', 'connected', newer)]);
    expect(killSwitchOf(fleet, 'b')).toMatchObject({ active: false, reason: 'resumed', epoch: 2 });
  });
});

describe('buildFleet: links only when asked', () => {
  it('leaves the links out (cards only) when told, for an idle /live feed', () => {
    const b = peer('b', 'connected', OFF);
    const c = peer('c', 'connected', OFF);
    if (b.status) b.status.links = [{ peerId: 'c', state: 'connected' }];
    const full = buildFleet(local(OFF), [b, c]);
    expect(full.links).toEqual([
      { from: 'a', to: 'b', state: 'connected' },
      { from: 'a', to: 'c', state: 'connected' },
      { from: 'b', to: 'c', state: 'connected' },
    ]);
    const cardsOnly = buildFleet(local(OFF), [b, c], { links: false });
    expect(cardsOnly.links).toEqual([]);
    expect(cardsOnly.peers).toEqual(full.peers);
  });
});
