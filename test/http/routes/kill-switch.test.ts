import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { openDb } from '../../../src/store/db.js';
import { KillSwitchStore } from '../../../src/store/kill-switch.js';
import { buildTestApp } from '../../helpers/app.js';
import { KILL_SWITCH_NEVER_SET } from '../../helpers/contract.js';
import { RunProbe } from '../../helpers/run-probe.js';

describe('GET /kill-switch', () => {
  it('shows the inactive switch with an empty history', async () => {
    const t = await buildTestApp();
    const res = await t.app.inject({ url: '/kill-switch' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...KILL_SWITCH_NEVER_SET, history: [] });
  });
});

describe('POST /kill-switch', () => {
  it('activates the switch, persists it, halts operating subsystems and shows it everywhere', async () => {
    const trader = new RunProbe();
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'trader', enabled: true, operates: true, run: trader.logic }],
    });
    await vi.waitFor(() => expect(t.subsystem('trader').state).toBe('running'));

    const res = await t.authed({
      method: 'POST',
      url: '/kill-switch',
      payload: { activate: true, reason: 'exchange outage' },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    const peerId = t.deps.identity.peerId;
    expect(body).toMatchObject({ active: true, reason: 'exchange outage', origin: peerId, epoch: 1 });
    expect(Date.parse(body.since)).toBeGreaterThan(Date.now() - 60_000);
    expect(body.history).toEqual([
      { active: true, reason: 'exchange outage', at: body.since, origin: peerId, epoch: 1 },
    ]);

    // Persisted: another connection to the same SQLite file sees it.
    const other = openDb(t.dataDir);
    onTestFinished(() => {
      other.close();
    });
    expect(new KillSwitchStore(other).get()).toMatchObject({ active: true, reason: 'exchange outage' });

    const { history, ...state } = body;
    const status = (await t.app.inject({ url: '/status' })).json();
    expect(status.killSwitch).toEqual(state);
    expect(status.killSwitch).not.toHaveProperty('history');
    expect((await t.app.inject({ url: '/kill-switch' })).json()).toEqual(body);

    await vi.waitFor(() => expect(t.subsystem('trader').state).toBe('halted'));
    expect(trader.live()).toBe(0);
    expect(t.subsystem('health').state).toBe('running');
    expect((await t.app.inject({ url: '/health' })).statusCode).toBe(200);
  });

  it('deactivates it again, resuming operations, with both changes in the history', async () => {
    const trader = new RunProbe();
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'trader', enabled: true, operates: true, run: trader.logic }],
    });
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: true, reason: 'on' } });
    await vi.waitFor(() => expect(t.subsystem('trader').state).toBe('halted'));
    const res = await t.authed({
      method: 'POST',
      url: '/kill-switch',
      payload: { activate: false, reason: 'off' },
    });
    expect(res.json()).toMatchObject({ active: false, reason: 'off', epoch: 2 });
    expect(res.json().history.map((h: { reason: string }) => h.reason)).toEqual(['off', 'on']);
    await vi.waitFor(() => expect(t.subsystem('trader').state).toBe('running'));
    expect(trader.starts).toBe(2);
  });

  it.each([
    ['a missing reason', { activate: true }, 'reason'],
    ['an empty reason', { activate: true, reason: '' }, 'reason'],
    ['activate not a boolean', { activate: 'yes', reason: 'r' }, 'activate'],
    ['a missing activate', { reason: 'r' }, 'activate'],
    ['an extra property', { activate: true, reason: 'r', force: true }, 'force'],
  ])('refuses %s with 400 naming the field, and changes nothing', async (_what, payload, field) => {
    const t = await buildTestApp();
    const res = await t.authed({ method: 'POST', url: '/kill-switch', payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('QB_ERR_VALIDATION');
    expect(res.json().error.message).toContain(field);
    expect(t.deps.killSwitch.get().epoch).toBe(0);
    expect(t.deps.killSwitch.history()).toEqual([]);
  });
});
