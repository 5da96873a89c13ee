import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildTestApp, type TestApp } from '../../helpers/app.js';
import { HEALTH_FIELDS } from '../../helpers/contract.js';
import { RunProbe } from '../../helpers/run-probe.js';

const ready = (t: TestApp) => t.app.inject({ url: '/ready' });

describe('GET /health', () => {
  it('answers 200 with status, uptime, cpu, memory, event-loop delay and connections', async () => {
    const t = await buildTestApp();
    const res = await t.app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual([...HEALTH_FIELDS].sort());
    expect(body.status).toBe('ok');
    expect(body.uptime).toBeGreaterThan(0);
    expect(body.cpu).toEqual({
      percent: expect.any(Number),
      userMs: expect.any(Number),
      systemMs: expect.any(Number),
    });
    expect(body.memory.rssBytes).toBeGreaterThan(0);
    expect(body.memory.heapUsedBytes).toBeGreaterThan(0);
    expect(body.eventLoopDelayMs).toBeGreaterThanOrEqual(0);
    expect(body.connections).toEqual({ http: 0, mesh: 0 });
  });

  it('answers a burst of probes from one cached sample: process.memoryUsage is not read per request', async () => {
    const t = await buildTestApp();
    await t.app.inject({ url: '/health' });
    const memoryUsage = vi.spyOn(process, 'memoryUsage');
    onTestFinished(() => memoryUsage.mockRestore());
    const bodies = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const res = await t.app.inject({ url: '/health' });
      expect(res.statusCode).toBe(200);
      bodies.add(res.body);
    }
    // At most one refresh if the 1 s cache expired during the burst.
    expect(memoryUsage.mock.calls.length).toBeLessThanOrEqual(1);
    expect(bodies.size).toBeLessThanOrEqual(2);
  });

  it('keeps answering while the health subsystem is stopped (liveness)', async () => {
    const t = await buildTestApp();
    await t.authed({ method: 'POST', url: '/subsystems/health/stop' });
    await vi.waitFor(() => expect(t.subsystem('health').state).toBe('stopped'));
    expect((await t.app.inject({ url: '/health' })).statusCode).toBe(200);
  });
});

describe('GET /ready', () => {
  it('is 200 while every enabled subsystem runs, 503 with the reason while one is stopped', async () => {
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'off', enabled: false, operates: true, run: new RunProbe().logic }],
    });
    await vi.waitFor(async () => {
      const res = await ready(t);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ ready: true, reasons: [], halted: null });
    });

    expect((await t.authed({ method: 'POST', url: '/subsystems/health/stop' })).statusCode).toBe(202);
    await vi.waitFor(async () => {
      const res = await ready(t);
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ ready: false, reasons: ['health is stopped'], halted: null });
    });

    await t.authed({ method: 'POST', url: '/subsystems/health/start' });
    await vi.waitFor(async () => expect((await ready(t)).statusCode).toBe(200));
  });

  it('stays 200 while the kill switch halts subsystems, and says why in `halted`', async () => {
    // A 503 here would take a halted peer out of a Kubernetes headless service's DNS records, which
    // DNS discovery resolves: the fleet would split exactly while the kill switch is on.
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'trader', enabled: true, operates: true, run: new RunProbe().logic }],
    });
    await vi.waitFor(async () => expect((await ready(t)).statusCode).toBe(200));
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: true, reason: 'audit' } });
    await vi.waitFor(() => expect(t.subsystem('trader').state).toBe('halted'));
    const res = await ready(t);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      ready: true,
      reasons: [],
      halted: {
        subsystems: ['ai', 'freelance', 'trading', 'trader'],
        reason: `halted by the kill switch (${t.deps.identity.peerId}: audit)`,
        since: expect.any(String),
        epoch: 1,
      },
    });

    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: false, reason: 'done' } });
    await vi.waitFor(async () => expect((await ready(t)).json().halted).toBeNull());
  });

  it('is 503 with the last error of a failed subsystem, the kill switch aside', async () => {
    const broken = new RunProbe();
    broken.mode = 'fail';
    const t = await buildTestApp({
      env: { SUBSYSTEM_RESTART_BASE_MS: '1', SUBSYSTEM_RESTART_MAX_MS: '2' },
      extraRegistrations: [
        { name: 'trader', enabled: true, operates: true, run: new RunProbe().logic },
        { name: 'broken', enabled: true, operates: false, run: broken.logic },
      ],
    });
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: true, reason: 'test' } });
    await vi.waitFor(
      async () => {
        const res = await ready(t);
        expect(res.statusCode).toBe(503);
        expect(res.json().reasons).toEqual(['broken failed: run failed on start 10']);
        expect(res.json().halted.subsystems).toEqual(['ai', 'freelance', 'trading', 'trader']);
      },
      { timeout: 5_000 },
    );
  });
});
