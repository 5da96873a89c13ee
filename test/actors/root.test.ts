import { beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { fromPromise } from 'xstate';
import { backoffDelay } from '../../src/actors/backoff.js';
import { PeerActors, type SubsystemRegistration, type SupervisionPort } from '../../src/actors/root.js';
import type { SupervisorConfig } from '../../src/config.js';
import { lifecycleContract } from '../helpers/lifecycle-contract.js';
import { captureLogger, LEVEL, silentLogger } from '../helpers/logger.js';
import { PROBE_TICK_MS, RunProbe } from '../helpers/run-probe.js';

const POLICY: SupervisorConfig = {
  restartBaseMs: 200,
  restartMaxMs: 30_000,
  stablePeriodMs: 60_000,
  maxConsecutiveFailures: 10,
};
const random = () => 0.5;
const delay = (failures: number) =>
  backoffDelay(failures, { baseMs: POLICY.restartBaseMs, maxMs: POLICY.restartMaxMs }, random);
const HOUR_MS = 3_600_000;

interface Fixture {
  actors: PeerActors;
  /** Probes of the enabled subsystems, by name. */
  probes: Record<'trader' | 'watcher', RunProbe>;
  logger: ReturnType<typeof silentLogger>;
  status: (name: string) => ReturnType<PeerActors['status']>[number];
}

/**
 * Three subsystems: `trader` operates (the kill switch halts it), `watcher` does not, `disabled`
 * is turned off by configuration.
 */
function fixture(
  options: {
    autoStart?: boolean;
    killSwitchActive?: boolean;
    logger?: ReturnType<typeof silentLogger>;
    supervision?: SupervisionPort;
  } = {},
): Fixture {
  const probes = { trader: new RunProbe(), watcher: new RunProbe() };
  const registrations: SubsystemRegistration[] = [
    { name: 'trader', enabled: true, operates: true, run: probes.trader.logic },
    { name: 'watcher', enabled: true, operates: false, run: probes.watcher.logic },
    { name: 'disabled', enabled: false, operates: true, run: new RunProbe().logic },
  ];
  const logger = options.logger ?? silentLogger();
  const actors = new PeerActors({
    registrations,
    ...(options.supervision ? { supervision: options.supervision } : {}),
    autoStart: options.autoStart ?? true,
    killSwitchActive: options.killSwitchActive ?? false,
    policy: POLICY,
    logger,
    random,
  });
  const status = (name: string) => {
    const s = actors.status().find((x) => x.name === name);
    if (!s) throw new Error(`no status for ${name}`);
    return s;
  };
  return { actors, probes, logger, status };
}

/** PeerActors.stop polls on a timer: under fake time the clock has to move for it. */
async function stopUnderFakeTime(actors: PeerActors): Promise<void> {
  const stopped = actors.stop();
  await vi.advanceTimersByTimeAsync(1_000);
  await stopped;
}

function started(options: Parameters<typeof fixture>[0] = {}): Fixture {
  const f = fixture(options);
  f.actors.start();
  onTestFinished(() => stopUnderFakeTime(f.actors));
  return f;
}

/** Lets the promise-based drain of a stopping subsystem finish, without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

describe('PeerActors under fake time', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    // Registered first, so it runs last: after the test's own cleanups, which still need fake time.
    onTestFinished(() => {
      vi.useRealTimers();
    });
  });

  it('runs one lifecycle per enabled registration and lists disabled ones as disabled', () => {
    const f = started();
    expect(f.actors.status().map((s) => [s.name, s.state])).toEqual([
      ['trader', 'running'],
      ['watcher', 'running'],
      ['disabled', 'disabled'],
    ]);
    expect(f.status('trader')).toMatchObject({
      enabled: true,
      operates: true,
      desired: 'running',
      restarts: 0,
      consecutiveFailures: 0,
      lastError: null,
      since: new Date(Date.now()).toISOString(),
      nextRestartAt: null,
    });
    expect(f.status('disabled')).toMatchObject({ enabled: false, desired: 'stopped', since: null });
    expect(f.probes.trader.starts).toBe(1);
    expect(f.actors.has('disabled')).toBe(true);
    expect(f.actors.isEnabled('disabled')).toBe(false);
    expect(f.actors.has('nope')).toBe(false);
  });

  it('routes operator commands to the named subsystem only', async () => {
    const f = started();
    f.actors.command('trader', 'stop');
    await flush();
    expect(f.status('trader')).toMatchObject({ state: 'stopped', desired: 'stopped' });
    expect(f.status('watcher').state).toBe('running');
    expect(f.probes.trader.live()).toBe(0);

    f.actors.command('trader', 'start');
    expect(f.status('trader').state).toBe('running');
    f.actors.command('watcher', 'restart');
    expect(f.probes.watcher.starts).toBe(2);
    expect(f.probes.watcher.live()).toBe(1);
  });

  it('restarts a failing subsystem with growing delays, holds it failed at 10, and restart clears it', () => {
    const f = started();
    f.probes.trader.mode = 'fail';
    f.probes.trader.failCurrent();
    for (let failures = 1; failures < POLICY.maxConsecutiveFailures; failures++) {
      const s = f.status('trader');
      expect(s.state).toBe('backoff');
      expect(s.consecutiveFailures).toBe(failures);
      expect(s.nextRestartAt).toBe(new Date(Date.now() + delay(failures)).toISOString());
      vi.advanceTimersByTime(delay(failures) - 1);
      expect(f.probes.trader.starts).toBe(failures);
      vi.advanceTimersByTime(1);
      expect(f.probes.trader.starts).toBe(failures + 1);
    }
    expect(f.status('trader')).toMatchObject({
      state: 'failed',
      restarts: 9,
      consecutiveFailures: 10,
      nextRestartAt: null,
      lastError: { code: 'QB_ERR_INTERNAL', message: 'run failed on start 10' },
    });
    vi.advanceTimersByTime(HOUR_MS);
    expect(f.status('trader').state).toBe('failed');
    expect(f.probes.trader.starts).toBe(10);
    expect(f.status('watcher').state).toBe('running');

    f.probes.trader.mode = 'ready';
    f.actors.command('trader', 'restart');
    expect(f.status('trader')).toMatchObject({ state: 'running', consecutiveFailures: 0, restarts: 9 });
  });

  it('restarts a subsystem made to throw by injectFault and counts the restart', () => {
    const f = started();
    vi.advanceTimersByTime(3 * PROBE_TICK_MS);
    f.actors.injectFault('watcher');
    expect(f.status('watcher')).toMatchObject({
      state: 'backoff',
      lastError: { code: 'QB_ERR_INJECTED_FAULT' },
    });
    expect(f.probes.watcher.live()).toBe(0);
    vi.advanceTimersByTime(delay(1));
    expect(f.status('watcher')).toMatchObject({ state: 'running', restarts: 1, consecutiveFailures: 1 });
    expect(f.probes.watcher.live()).toBe(1);
    vi.advanceTimersByTime(POLICY.stablePeriodMs);
    expect(f.status('watcher').consecutiveFailures).toBe(0);
  });

  it('halts only operating subsystems under the kill switch and resumes them', async () => {
    const f = started();
    f.actors.setKillSwitch(true);
    await flush();
    expect(f.status('trader').state).toBe('halted');
    expect(f.status('watcher').state).toBe('running');
    expect(f.probes.trader.live()).toBe(0);
    expect(f.probes.watcher.starts).toBe(1);

    f.actors.setKillSwitch(false);
    expect(f.status('trader').state).toBe('running');
    expect(f.probes.trader.starts).toBe(2);
    expect(f.probes.watcher.starts).toBe(1);
  });

  it('starts operating subsystems halted when the kill switch is already active', () => {
    const f = started({ killSwitchActive: true });
    expect(f.status('trader').state).toBe('halted');
    expect(f.status('watcher').state).toBe('running');
    expect(f.probes.trader.starts).toBe(0);
  });

  it('with autoStart=false leaves every subsystem stopped until started', () => {
    const f = started({ autoStart: false });
    vi.advanceTimersByTime(HOUR_MS);
    expect(f.actors.status().map((s) => s.state)).toEqual(['stopped', 'stopped', 'disabled']);
    expect(f.probes.trader.starts + f.probes.watcher.starts).toBe(0);
    f.actors.command('watcher', 'start');
    expect(f.status('watcher').state).toBe('running');
    expect(f.status('trader').state).toBe('stopped');
  });

  it('tells listeners about changes, survives a throwing listener, and is silent after stop', async () => {
    const f = fixture();
    const errorLog = vi.spyOn(f.logger, 'error');
    let changes = 0;
    f.actors.onChange(() => {
      throw new Error('listener bug');
    });
    const unsubscribe = f.actors.onChange(() => changes++);
    f.actors.start();
    expect(changes).toBeGreaterThan(0);
    expect(errorLog).toHaveBeenCalled();

    const before = changes;
    f.probes.trader.mode = 'fail';
    f.probes.trader.failCurrent();
    expect(changes).toBeGreaterThan(before);

    await stopUnderFakeTime(f.actors);
    expect(f.probes.trader.live() + f.probes.watcher.live()).toBe(0);
    const atStop = changes;
    vi.advanceTimersByTime(HOUR_MS);
    expect(changes).toBe(atStop);
    expect(f.probes.trader.starts).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
    unsubscribe();
  });

  it('stops every subsystem, from any state, and leaves no timer behind', async () => {
    const f = fixture();
    f.actors.start();
    f.probes.trader.mode = 'fail';
    f.probes.trader.failCurrent();
    expect(f.status('trader').state).toBe('backoff');
    await stopUnderFakeTime(f.actors);
    expect(f.probes.trader.live() + f.probes.watcher.live()).toBe(0);
    expect(f.probes.watcher.cleanups).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('PeerActors: logs and lifecycle crashes', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    onTestFinished(() => {
      vi.useRealTimers();
    });
  });

  it('logs a subsystem failure at error level with its name, and its restart', () => {
    const { logger, lines } = captureLogger();
    const f = started({ logger });
    f.actors.injectFault('watcher');
    const failure = lines.find((l) => l.msg.startsWith('subsystem failed'));
    expect(failure).toMatchObject({
      level: LEVEL.error,
      subsystem: 'watcher',
      consecutiveFailures: 1,
      err: { message: 'fault injected on request' },
    });
    vi.advanceTimersByTime(delay(1));
    expect(lines.find((l) => l.msg === 'restarting subsystem after its backoff')).toMatchObject({
      subsystem: 'watcher',
    });
  });

  it('respawns a lifecycle machine that crashes at once with growing delays, not in a hot loop', async () => {
    const { logger, lines } = captureLogger();
    // The journal cannot write for trader (a full disk) for its first three lifecycles.
    let spawns = 0;
    let brokenWrites = 3;
    const supervision: SupervisionPort = {
      load: (name) => {
        if (name === 'trader') spawns++;
        return undefined;
      },
      save: (name) => {
        if (name === 'trader' && brokenWrites > 0) {
          brokenWrites--;
          throw new Error('SQLITE_FULL: database or disk is full');
        }
      },
    };
    const f = started({ logger, supervision });
    await flush();
    expect(spawns).toBe(1);
    for (let crash = 1; crash <= 3; crash++) {
      expect(f.status('trader')).toMatchObject({
        state: 'backoff',
        consecutiveFailures: crash,
        lastError: { message: 'SQLITE_FULL: database or disk is full' },
        nextRestartAt: new Date(Date.now() + delay(crash)).toISOString(),
      });
      await vi.advanceTimersByTimeAsync(delay(crash) - 1);
      expect(spawns, `no respawn before ${delay(crash)} ms`).toBe(crash);
      await vi.advanceTimersByTimeAsync(1);
      expect(spawns).toBe(crash + 1);
    }
    expect(f.status('trader').state).toBe('running');
    expect(f.status('watcher').state).toBe('running');
    // The run actors of the crashed machines were cleaned up: one live, not four.
    expect(f.probes.trader.live()).toBe(1);
    const crashes = lines.filter((l) => l.msg.startsWith('lifecycle machine crashed'));
    expect(crashes.map((l) => [l.level, l.subsystem, l.respawnInMs])).toEqual([
      [LEVEL.error, 'trader', delay(1)],
      [LEVEL.error, 'trader', delay(2)],
      [LEVEL.error, 'trader', delay(3)],
    ]);
  });

  it('takes operator commands and the kill switch while a crashed machine waits, without crashing the root', async () => {
    const { logger, lines } = captureLogger();
    let brokenWrites = 1;
    const supervision: SupervisionPort = {
      load: () => undefined,
      save: (name) => {
        if (name === 'trader' && brokenWrites > 0) {
          brokenWrites--;
          throw new Error('disk hiccup');
        }
      },
    };
    const f = started({ logger, supervision });
    await flush();
    expect(f.status('trader').state).toBe('backoff');
    f.actors.injectFault('trader');
    f.actors.setKillSwitch(true);
    f.actors.setKillSwitch(false);
    f.actors.command('trader', 'restart');
    expect(f.status('trader').state).toBe('running');
    expect(f.probes.trader.live()).toBe(1);
    // The cancelled respawn never fires.
    vi.advanceTimersByTime(HOUR_MS);
    expect(f.probes.trader.live()).toBe(1);
    expect(lines.filter((l) => l.msg === 'root actor failed')).toEqual([]);
  });

  it('does not respawn a crashed lifecycle machine once stopping', async () => {
    let spawns = 0;
    const supervision: SupervisionPort = {
      load: (name) => {
        if (name === 'trader') spawns++;
        return undefined;
      },
      save: (name) => {
        if (name === 'trader') throw new Error('disk gone');
      },
    };
    const f = fixture({ supervision });
    f.actors.start();
    await flush();
    await stopUnderFakeTime(f.actors);
    vi.advanceTimersByTime(HOUR_MS);
    expect(spawns).toBe(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('PeerActors stop', () => {
  it('before start sends nothing to an actor that never ran, and a later start runs nothing', async () => {
    const warn = vi.spyOn(console, 'warn');
    onTestFinished(() => warn.mockRestore());
    const f = fixture();
    await f.actors.stop();
    await f.actors.stop();
    f.actors.start();
    expect(f.probes.trader.starts + f.probes.watcher.starts).toBe(0);
    expect(warn).not.toHaveBeenCalled();
  });

  it('resolves every concurrent call only once all subsystems have drained', async () => {
    let drains = 0;
    let finishDrain: () => void = () => {};
    const probe = new RunProbe();
    const actors = new PeerActors({
      registrations: [
        {
          name: 'slow',
          enabled: true,
          operates: true,
          run: probe.logic,
          drain: fromPromise<void, unknown>(() => {
            drains++;
            return new Promise<void>((resolve) => (finishDrain = resolve));
          }),
        },
      ],
      autoStart: true,
      killSwitchActive: false,
      policy: POLICY,
      logger: silentLogger(),
    });
    actors.start();
    onTestFinished(() => actors.stop());
    let resolved = 0;
    const stops = [actors.stop(), actors.stop()].map((p) => p.then(() => resolved++));
    await vi.waitFor(() => expect(actors.status()[0]?.state).toBe('stopping'));
    await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(0);
    finishDrain();
    await Promise.all(stops);
    expect(resolved).toBe(2);
    expect(drains).toBe(1);
    expect(probe.live()).toBe(0);
  });
});

lifecycleContract('PeerActors', () => {
  const f = fixture();
  return {
    start: () => f.actors.start(),
    stop: () => f.actors.stop(),
    running: () => f.probes.trader.live() + f.probes.watcher.live(),
    expectedRunning: 2,
  };
});
