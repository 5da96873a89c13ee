import { describe, expect, it, vi } from 'vitest';
import { buildTestApp } from '../../helpers/app.js';

const ROUTES = ['/faults/subsystems/health/throw', '/faults/worker/crash'];

describe('fault injection routes', () => {
  it.each(ROUTES)('POST %s answers 404 when fault injection is off, even with the token', async (url) => {
    const crashWorker = vi.fn();
    const t = await buildTestApp({ crashWorker });
    for (const res of [
      await t.app.inject({ method: 'POST', url }),
      await t.authed({ method: 'POST', url }),
    ]) {
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('QB_ERR_FAULT_INJECTION_DISABLED');
    }
    expect(crashWorker).not.toHaveBeenCalled();
    expect(t.subsystem('health')).toMatchObject({ restarts: 0, lastError: null });
  });

  it.each(ROUTES)('POST %s needs the token when fault injection is on', async (url) => {
    const crashWorker = vi.fn();
    const t = await buildTestApp({ env: { FAULT_INJECTION: 'true' }, crashWorker });
    const res = await t.app.inject({
      method: 'POST',
      url,
      headers: { authorization: 'Bearer nope-nope-nope-nope' },
    });
    expect(res.statusCode).toBe(401);
    expect(crashWorker).not.toHaveBeenCalled();
    expect(t.subsystem('health').lastError).toBeNull();
  });

  it('makes a subsystem throw; its supervisor restarts it and /status shows the restart', async () => {
    const t = await buildTestApp({ env: { FAULT_INJECTION: 'true' }, crashWorker: vi.fn() });
    await vi.waitFor(() => expect(t.subsystem('health').state).toBe('running'));
    const res = await t.authed({ method: 'POST', url: '/faults/subsystems/health/throw' });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ injected: 'health' });
    await vi.waitFor(async () => {
      const status = (await t.app.inject({ url: '/status' })).json();
      expect(status.subsystems.health).toMatchObject({
        state: 'running',
        restarts: 1,
        lastError: { code: 'QB_ERR_INJECTED_FAULT' },
      });
    });
  });

  it('answers 404 for a subsystem that does not exist', async () => {
    const t = await buildTestApp({ env: { FAULT_INJECTION: 'true' }, crashWorker: vi.fn() });
    const res = await t.authed({ method: 'POST', url: '/faults/subsystems/nope/throw' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('QB_ERR_UNKNOWN_SUBSYSTEM');
  });

  it('crashes the worker after answering 202', async () => {
    const crashWorker = vi.fn();
    const t = await buildTestApp({ env: { FAULT_INJECTION: 'true' }, crashWorker });
    const res = await t.authed({ method: 'POST', url: '/faults/worker/crash' });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ crashing: true });
    await vi.waitFor(() => expect(crashWorker).toHaveBeenCalledTimes(1));
  });
});
