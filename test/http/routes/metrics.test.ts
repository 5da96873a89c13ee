import { describe, expect, it, vi } from 'vitest';
import { buildTestApp, type TestApp } from '../../helpers/app.js';
import { RunProbe } from '../../helpers/run-probe.js';

const scrape = async (t: TestApp) => {
  const res = await t.app.inject({ url: '/metrics' });
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain/);
  return res.body;
};

/** The value of one sample, whatever the order of its labels. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const has = Object.entries(labels).every(([k, v]) => (m[2] ?? '').includes(`${k}="${v}"`));
    if (has) return Number(m[3]);
  }
  return undefined;
}

describe('GET /metrics', () => {
  it('exposes process metrics, subsystem states, restarts and the kill switch', async () => {
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'off', enabled: false, operates: true, run: new RunProbe().logic }],
    });
    await vi.waitFor(() => expect(t.subsystem('health').state).toBe('running'));
    const text = await scrape(t);
    expect(text).toContain('# TYPE qb_subsystem_state gauge');
    expect(text).toContain('# TYPE qb_subsystem_restarts_total counter');
    expect(text).toMatch(/^qb_process_cpu_user_seconds_total/m);
    expect(sample(text, 'qb_subsystem_state', { subsystem: 'health', state: 'running' })).toBe(1);
    expect(sample(text, 'qb_subsystem_state', { subsystem: 'health', state: 'failed' })).toBe(0);
    expect(sample(text, 'qb_subsystem_state', { subsystem: 'off', state: 'disabled' })).toBe(1);
    expect(sample(text, 'qb_subsystem_restarts_total', { subsystem: 'health' })).toBe(0);
    expect(
      sample(text, 'qb_subsystem_state', { peer_id: t.deps.identity.peerId, subsystem: 'health' }),
    ).toBeDefined();
    expect(text).toMatch(/^qb_kill_switch_active\{[^}]*\} 0$/m);
  });

  it('counts restarts and follows state changes between scrapes', async () => {
    const probe = new RunProbe();
    const t = await buildTestApp({
      extraRegistrations: [{ name: 'worker', enabled: true, operates: true, run: probe.logic }],
    });
    probe.failCurrent();
    await vi.waitFor(() => expect(t.subsystem('worker')).toMatchObject({ state: 'running', restarts: 1 }));
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: true, reason: 'r' } });
    await vi.waitFor(() => expect(t.subsystem('worker').state).toBe('halted'));
    const text = await scrape(t);
    expect(sample(text, 'qb_subsystem_restarts_total', { subsystem: 'worker' })).toBe(1);
    expect(sample(text, 'qb_subsystem_state', { subsystem: 'worker', state: 'halted' })).toBe(1);
    expect(sample(text, 'qb_subsystem_state', { subsystem: 'worker', state: 'running' })).toBe(0);
    expect(text).toMatch(/^qb_kill_switch_active\{[^}]*\} 1$/m);
  });

  it('reports the event-loop lag net of the sampling resolution: about 0 for an idle peer', async () => {
    const t = await buildTestApp();
    // prom-client's own figures read about 1 s here (its 1 s resolution). A quiet window is awaited:
    // a loaded machine can delay any process now and then.
    await vi.waitFor(
      async () => {
        t.deps.health.closeWindow();
        await vi.waitFor(() => expect(t.deps.health.eventLoopDelay().count).toBeGreaterThanOrEqual(10), {
          timeout: 5_000,
        });
        const text = await scrape(t);
        for (const figure of ['min', 'mean', 'p50', 'p90', 'p99', 'max']) {
          const line = new RegExp(`^qb_nodejs_eventloop_lag_${figure}_seconds\\{[^}]*\\} (\\S+)$`, 'm').exec(
            text,
          );
          expect(line, figure).not.toBeNull();
          expect(Number(line?.[1]), figure).toBeLessThan(0.05);
        }
      },
      { timeout: 30_000, interval: 10 },
    );
    // Each name once: prom-client's own gauges were replaced, not doubled.
    expect((await scrape(t)).match(/^# TYPE qb_nodejs_eventloop_lag_p99_seconds /gm)).toHaveLength(1);
  });
});
