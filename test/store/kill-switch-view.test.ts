// One kill-switch projection (issue 11, item 20): the wire, /status, /kill-switch, the fleet cards
// and the live feed all show killSwitchView of the stored state, exactly, and nothing else.
import { describe, expect, it, vi } from 'vitest';
import { buildFleet } from '../../src/http/fleet.js';
import type { KillSwitchState } from '../../src/store/kill-switch.js';
import { killSwitchView, MAX_REASON_LENGTH } from '../../src/store/kill-switch.js';
import { buildTestApp } from '../helpers/app.js';

const stored: KillSwitchState = {
  active: true,
  reason: 'halt',
  since: '2030-01-01T00:00:00.000Z',
  origin: 'peer-a',
  epoch: 7,
};
/** A stored state carrying a field no consumer may show (an internal one a later change might add). */
const withInternal = { ...stored, internalNote: 'not for the wire' } as KillSwitchState;
const KEYS = ['active', 'epoch', 'origin', 'reason', 'since'];

describe('killSwitchView', () => {
  it('has exactly the five fields and a bounded reason', () => {
    expect(Object.keys(killSwitchView(withInternal)).sort()).toEqual(KEYS);
    expect(killSwitchView({ ...stored, reason: 'x'.repeat(900) }).reason).toHaveLength(MAX_REASON_LENGTH);
  });

  it('is what the fleet cards show, for this peer and for the others', () => {
    const fleet = buildFleet(
      {
        peerId: 'a',
        address: '127.0.0.1:9000',
        version: '1',
        uptime: 1,
        subsystems: [],
        killSwitch: withInternal,
        summary: null,
        now: 0,
      },
      [
        {
          peerId: 'b',
          state: 'connected',
          address: '127.0.0.1:9001',
          lastSeen: null,
          rttMs: 1,
          reconnectAttempts: 0,
          status: {
            peerId: 'b',
            bootId: 'b-boot',
            version: '1',
            uptime: 1,
            apiPort: 9001,
            killSwitch: stored,
            subsystems: [],
            queues: {},
          },
        },
      ],
    );
    for (const card of fleet.peers) expect(card.killSwitch).toEqual(killSwitchView(stored));
  });

  it('is what GET /status and GET /kill-switch answer', async () => {
    const t = await buildTestApp();
    vi.spyOn(t.deps.killSwitch, 'get').mockReturnValue(withInternal);
    const status = (await t.authed({ method: 'GET', url: '/status' })).json();
    expect(status.killSwitch).toEqual(killSwitchView(stored));
    const ks = (await t.authed({ method: 'GET', url: '/kill-switch' })).json();
    expect(Object.keys(ks).sort()).toEqual([...KEYS, 'history'].sort());
  });
});
