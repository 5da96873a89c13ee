import { describe, expect, it, vi } from 'vitest';
import { buildTestApp } from '../../helpers/app.js';
import { RunProbe } from '../../helpers/run-probe.js';

describe('POST /subsystems/:name/:action', () => {
  it('stops, starts and restarts a subsystem, answering 202 with its status', async () => {
    const probe = new RunProbe();
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'worker', enabled: true, operates: true, run: probe.logic }],
    });
    const stop = await t.authed({ method: 'POST', url: '/subsystems/worker/stop' });
    expect(stop.statusCode).toBe(202);
    expect(stop.json()).toMatchObject({ name: 'worker', desired: 'stopped' });
    await vi.waitFor(() => expect(t.subsystem('worker').state).toBe('stopped'));
    expect(probe.live()).toBe(0);

    expect((await t.authed({ method: 'POST', url: '/subsystems/worker/start' })).statusCode).toBe(202);
    await vi.waitFor(() => expect(t.subsystem('worker').state).toBe('running'));
    expect(probe.starts).toBe(2);

    const restart = await t.authed({ method: 'POST', url: '/subsystems/worker/restart' });
    expect(restart.statusCode).toBe(202);
    expect(probe.starts).toBe(3);
    expect(probe.live()).toBe(1);
    expect(t.subsystem('health').state).toBe('running');
  });

  it('clears a failed subsystem on restart', async () => {
    const probe = new RunProbe();
    probe.mode = 'fail';
    const t = await buildTestApp({
      env: { SUBSYSTEM_RESTART_BASE_MS: '1', SUBSYSTEM_RESTART_MAX_MS: '2' },
      extraRegistrations: [{ name: 'worker', enabled: true, operates: true, run: probe.logic }],
    });
    await vi.waitFor(() => expect(t.subsystem('worker').state).toBe('failed'), { timeout: 5_000 });
    expect(t.subsystem('worker')).toMatchObject({ consecutiveFailures: 10, restarts: 9 });

    probe.mode = 'ready';
    const res = await t.authed({ method: 'POST', url: '/subsystems/worker/restart' });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toMatchObject({ state: 'running', consecutiveFailures: 0 });
  });

  it('answers 404 QB_ERR_UNKNOWN_SUBSYSTEM for a subsystem that does not exist', async () => {
    const t = await buildTestApp();
    const res = await t.authed({ method: 'POST', url: '/subsystems/nope/restart' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({
      error: { code: 'QB_ERR_UNKNOWN_SUBSYSTEM', message: expect.stringContaining('nope') },
    });
  });

  it('answers 409 QB_ERR_SUBSYSTEM_DISABLED for a subsystem turned off by configuration', async () => {
    // BOT_ENABLED=false turns the trading subsystem off: it is listed, never started.
    const t = await buildTestApp({ env: { BOT_ENABLED: 'false' } });
    const res = await t.authed({ method: 'POST', url: '/subsystems/trading/start' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('QB_ERR_SUBSYSTEM_DISABLED');
    expect(t.subsystem('trading').state).toBe('disabled');
  });

  it.each([
    ['an unknown action', '/subsystems/health/explode', 'action'],
    ['a name outside the pattern', '/subsystems/Health!/start', 'name'],
  ])('answers 400 naming the parameter for %s', async (_what, url, field) => {
    const t = await buildTestApp();
    const res = await t.authed({ method: 'POST', url });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('QB_ERR_VALIDATION');
    expect(res.json().error.message).toContain(field);
    expect(t.subsystem('health').desired).toBe('running');
  });
});
