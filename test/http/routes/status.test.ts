import { describe, expect, it, vi } from 'vitest';
import { buildTestApp } from '../../helpers/app.js';
import { KILL_SWITCH_NEVER_SET, STATUS_FIELDS } from '../../helpers/contract.js';
import { RunProbe } from '../../helpers/run-probe.js';

describe('GET /status', () => {
  it('has every field of the contract', async () => {
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'off', enabled: false, operates: true, run: new RunProbe().logic }],
    });
    const res = await t.app.inject({ url: '/status' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    for (const field of STATUS_FIELDS) expect(body, field).toHaveProperty(field);
    expect(body.peerId).toBe(t.deps.identity.peerId);
    expect(body.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.uptime).toBeGreaterThan(0);
    expect(body.continuousMode).toBe(false);
    expect(body.killSwitch).toEqual(KILL_SWITCH_NEVER_SET);
    expect(body.mesh.peers).toEqual([]);
    expect(body.reconnectAttempts).toBe(0);
    // What runs, from the registrations (test/prompt.test.ts has the rest).
    expect(body.prompt).toMatch(/Work: health checks every 1000 ms[.;]/);
    expect(body.prompt).toContain('Off: mesh (MESH_SECRET is not set: this peer runs alone); off.');
    expect(Object.keys(body.subsystems)).toEqual(['health', 'mesh', 'ai', 'freelance', 'trading', 'off']);
    // The features fill their own fields through the seam.
    expect(body.ai).toMatchObject({ provider: { configured: false }, breaker: 'closed' });
    expect(body.freelance).toMatchObject({ autoExecute: false, feeds: [] });
    expect(body.trading).toMatchObject({ mode: 'paper', exchange: 'sim', symbols: ['BTC/USDT'] });
    // Without MESH_SECRET the mesh is listed but disabled, and the peer says it runs alone.
    expect(body.subsystems.mesh).toMatchObject({ enabled: false, state: 'disabled' });
    expect(body.mesh).toMatchObject({ enabled: false, reason: expect.stringContaining('MESH_SECRET') });
    expect(body.subsystems.health).toMatchObject({
      name: 'health',
      enabled: true,
      operates: false,
      desired: 'running',
      restarts: 0,
      consecutiveFailures: 0,
      lastError: null,
      nextRestartAt: null,
    });
    expect(['starting', 'running']).toContain(body.subsystems.health.state);
    expect(body.subsystems.off).toMatchObject({ enabled: false, state: 'disabled' });
  });

  it('shows a restart of a failed subsystem with its count and last error', async () => {
    const probe = new RunProbe();
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'worker', enabled: true, operates: true, run: probe.logic }],
    });
    probe.failCurrent(new Error('lost the exchange'));
    await vi.waitFor(async () => {
      const body = (await t.app.inject({ url: '/status' })).json();
      expect(body.subsystems.worker).toMatchObject({
        state: 'running',
        restarts: 1,
        lastError: { code: 'QB_ERR_INTERNAL', message: 'lost the exchange', at: expect.any(String) },
      });
    });
  });
});
