import { beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createActor } from 'xstate';
import { HealthMonitor, type HealthSample, healthRun } from '../../src/actors/health.js';
import { HEALTH_SAMPLE_TTL_MS } from '../../src/actors/health-monitor.js';
import { stateName, subsystemMachine } from '../../src/actors/subsystem.js';
import { silentLogger } from '../helpers/logger.js';

describe('HealthMonitor', () => {
  it('reads CPU, memory, event-loop delay, uptime and the connection counts it is given', () => {
    const monitor = new HealthMonitor({
      countConnections: () => ({ http: 3, mesh: 2 }),
      now: () => 1_700_000_000_000,
    });
    onTestFinished(() => monitor.close());
    const s = monitor.read();
    expect(s).toMatchObject({
      status: 'ok',
      connections: { http: 3, mesh: 2 },
      at: new Date(1_700_000_000_000).toISOString(),
    });
    expect(s.uptime).toBeGreaterThan(0);
    expect(s.memory.rssBytes).toBeGreaterThan(0);
    expect(s.cpu.percent).toBeGreaterThanOrEqual(0);
    expect(monitor.latest).toBeUndefined();
    const closed = monitor.closeWindow();
    expect(monitor.latest).toEqual(closed);
  });
});

describe('healthRun under fake time', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
  });

  function run(closeWindow: () => HealthSample) {
    const monitor = { closeWindow } as unknown as HealthMonitor;
    const logger = silentLogger();
    const actor = createActor(subsystemMachine.provide({ actors: { run: healthRun } }), {
      input: {
        name: 'health',
        operates: false,
        autoStart: true,
        killSwitchActive: false,
        policy: {
          restartBaseMs: 100,
          restartMaxMs: 1000,
          stablePeriodMs: 60_000,
          maxConsecutiveFailures: 10,
        },
        runInput: { monitor, intervalMs: 1_000, logger },
        random: () => 0,
      },
    });
    actor.start();
    onTestFinished(() => {
      actor.stop();
    });
    return { actor, logger, state: () => stateName(actor.getSnapshot().value) };
  }

  const sample = (status: HealthSample['status']) => ({ status }) as HealthSample;

  it('samples once at start and then every interval, and stops sampling when stopped', () => {
    const closeWindow = vi.fn(() => sample('ok'));
    const h = run(closeWindow);
    expect(h.state()).toBe('running');
    expect(closeWindow).toHaveBeenCalledTimes(1);
    vi.advanceTimersByTime(3_000);
    expect(closeWindow).toHaveBeenCalledTimes(4);
    h.actor.stop();
    vi.advanceTimersByTime(10_000);
    expect(closeWindow).toHaveBeenCalledTimes(4);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('fails the subsystem when sampling throws, and samples again after the restart', () => {
    let broken = false;
    const closeWindow = vi.fn(() => {
      if (broken) throw new Error('cannot read the process');
      return sample('ok');
    });
    const h = run(closeWindow);
    broken = true;
    vi.advanceTimersByTime(1_000);
    expect(h.state()).toBe('backoff');
    expect(h.actor.getSnapshot().context.lastError?.message).toBe('cannot read the process');
    broken = false;
    vi.advanceTimersByTime(50);
    expect(h.state()).toBe('running');
    const calls = closeWindow.mock.calls.length;
    vi.advanceTimersByTime(1_000);
    // One interval timer only: the failed run's timer is gone.
    expect(closeWindow).toHaveBeenCalledTimes(calls + 1);
  });

  it('warns when the process is degraded', () => {
    const h = run(() => sample('degraded'));
    const warn = vi.spyOn(h.logger, 'warn');
    vi.advanceTimersByTime(1_000);
    expect(warn).toHaveBeenCalledWith(
      expect.objectContaining({ health: { status: 'degraded' } }),
      'process is degraded',
    );
  });
});

describe('HealthMonitor.current (what GET /health answers)', () => {
  it('reuses one sample for HEALTH_SAMPLE_TTL_MS: the process is read once, not per probe', () => {
    let now = 1_700_000_000_000;
    const monitor = new HealthMonitor({ now: () => now });
    onTestFinished(() => monitor.close());
    const memoryUsage = vi.spyOn(process, 'memoryUsage');
    onTestFinished(() => memoryUsage.mockRestore());

    const first = monitor.current();
    for (let i = 0; i < 100; i++) expect(monitor.current()).toBe(first);
    expect(memoryUsage).toHaveBeenCalledTimes(1);

    now += HEALTH_SAMPLE_TTL_MS - 1;
    expect(monitor.current()).toBe(first);
    now += 1;
    const second = monitor.current();
    expect(second).not.toBe(first);
    expect(memoryUsage).toHaveBeenCalledTimes(2);
    // A clock set back does not pin the old sample.
    now -= 60_000;
    expect(monitor.current()).not.toBe(second);
  });

  it('reports the event-loop delay net of the resolution: about 0 when idle', async () => {
    const monitor = new HealthMonitor();
    onTestFinished(() => monitor.close());
    // A fresh window until a quiet one (a loaded machine can delay any process now and then);
    // before the fix every window read about the resolution (100 ms).
    await vi.waitFor(
      async () => {
        monitor.closeWindow();
        await vi.waitFor(() => expect(monitor.eventLoopDelay().count).toBeGreaterThanOrEqual(10), {
          timeout: 5_000,
        });
        expect(monitor.read().eventLoopDelayMs).toBeLessThan(20);
      },
      { timeout: 30_000, interval: 10 },
    );
  });

  it('counts connections with a source given later (the boot gate exists before the mesh)', () => {
    const monitor = new HealthMonitor();
    onTestFinished(() => monitor.close());
    expect(monitor.read().connections).toEqual({ http: 0, mesh: 0 });
    monitor.countConnectionsWith(() => ({ http: 2, mesh: 1 }));
    expect(monitor.current().connections).toEqual({ http: 2, mesh: 1 });
  });
});
