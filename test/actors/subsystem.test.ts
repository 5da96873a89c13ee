import { beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { type AnyActorLogic, createActor, fromPromise } from 'xstate';
import { backoffDelay } from '../../src/actors/backoff.js';
import {
  defineRun,
  type SubsystemInput,
  type SupervisionRecord,
  stateName,
  subsystemMachine,
} from '../../src/actors/subsystem.js';
import type { SupervisorConfig } from '../../src/config.js';
import { QbError } from '../../src/errors.js';
import { captureLogger, LEVEL } from '../helpers/logger.js';
import { PROBE_TICK_MS, RunProbe } from '../helpers/run-probe.js';

const POLICY: SupervisorConfig = {
  restartBaseMs: 100,
  restartMaxMs: 10_000,
  stablePeriodMs: 60_000,
  maxConsecutiveFailures: 10,
};
/** The lowest draw: every delay is half its ceiling, so the schedule is exact. */
const random = () => 0;
const delay = (failures: number) =>
  backoffDelay(failures, { baseMs: POLICY.restartBaseMs, maxMs: POLICY.restartMaxMs }, random);
const HOUR_MS = 3_600_000;

/** Runs the microtasks a promise-based actor (drain) needs, without moving the clock. */
const flush = () => vi.advanceTimersByTimeAsync(0);

function startSubsystem(
  probe: RunProbe,
  input: Partial<SubsystemInput> = {},
  actors: { drain?: AnyActorLogic } = {},
) {
  const logic = subsystemMachine.provide({ actors: { run: probe.logic, ...actors } });
  const actor = createActor(logic, {
    input: {
      name: 'probe',
      operates: true,
      autoStart: true,
      killSwitchActive: false,
      policy: POLICY,
      random,
      hasDrain: actors.drain !== undefined,
      ...input,
    },
  });
  const escaped: unknown[] = [];
  actor.subscribe({ error: (err) => escaped.push(err) });
  actor.start();
  onTestFinished(() => {
    actor.stop();
    // The lifecycle absorbs every failure of its run actor; nothing may reach its parent.
    expect(escaped).toEqual([]);
  });
  return {
    actor,
    state: () => stateName(actor.getSnapshot().value),
    ctx: () => actor.getSnapshot().context,
    send: actor.send.bind(actor),
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  // Registered first, so it runs last: after the test's own cleanups, which still need fake time.
  onTestFinished(() => {
    vi.useRealTimers();
  });
});

describe('subsystem lifecycle: start', () => {
  it('starts the run actor and is running once it reports READY', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe);
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(1);
    expect(s.ctx()).toMatchObject({
      desired: 'running',
      consecutiveFailures: 0,
      restarts: 0,
      lastError: null,
    });
  });

  it('with autoStart=false stays stopped, without running anything, until START', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe, { autoStart: false });
    expect(s.state()).toBe('stopped');
    vi.advanceTimersByTime(HOUR_MS);
    expect(s.state()).toBe('stopped');
    expect(probe.starts).toBe(0);

    s.send({ type: 'START' });
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(1);
  });

  it('counts a run actor that never reports READY as failed after the start timeout', () => {
    const probe = new RunProbe();
    probe.script.push('hang');
    const s = startSubsystem(probe, { startTimeoutMs: 5_000 });
    vi.advanceTimersByTime(4_999);
    expect(s.state()).toBe('starting');
    vi.advanceTimersByTime(1);
    expect(s.state()).toBe('backoff');
    expect(s.ctx().lastError?.code).toBe('QB_ERR_SUBSYSTEM_START_TIMEOUT');
    expect(probe.live()).toBe(0);
    vi.advanceTimersByTime(delay(1));
    expect(s.state()).toBe('running');
  });
});

describe('subsystem lifecycle: supervision', () => {
  it('restarts a failing run actor after exponentially growing delays', () => {
    const probe = new RunProbe();
    probe.mode = 'fail';
    const s = startSubsystem(probe);
    const observed: number[] = [];
    for (let failures = 1; failures < POLICY.maxConsecutiveFailures; failures++) {
      expect(s.state()).toBe('backoff');
      expect(s.ctx().consecutiveFailures).toBe(failures);
      const wait = s.ctx().nextDelayMs;
      observed.push(wait);
      expect(s.ctx().nextRestartAt).toBe(Date.now() + wait);
      vi.advanceTimersByTime(wait - 1);
      expect(probe.starts, `no restart before ${wait} ms`).toBe(failures);
      vi.advanceTimersByTime(1);
      expect(probe.starts, `restart at ${wait} ms`).toBe(failures + 1);
    }
    // base 100 doubling, capped at 10 000, with the lowest jitter draw (half the ceiling).
    expect(observed).toEqual([50, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    expect(s.ctx().restarts).toBe(9);
  });

  it('holds the subsystem failed at the 10th consecutive failure, with no restart, until RESTART', () => {
    const probe = new RunProbe();
    probe.mode = 'fail';
    const s = startSubsystem(probe);
    vi.advanceTimersByTime(HOUR_MS);
    expect(s.state()).toBe('failed');
    expect(probe.starts).toBe(10);
    expect(s.ctx()).toMatchObject({ consecutiveFailures: 10, restarts: 9, nextRestartAt: null });
    expect(s.ctx().lastError?.message).toBe('run failed on start 10');

    vi.advanceTimersByTime(24 * HOUR_MS);
    expect(s.state()).toBe('failed');
    expect(probe.starts).toBe(10);
    expect(vi.getTimerCount()).toBe(0);

    probe.mode = 'ready';
    s.send({ type: 'RESTART' });
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(11);
    expect(s.ctx().consecutiveFailures).toBe(0);

    // The count starts over: the next failure waits the first delay again.
    probe.failCurrent();
    expect(s.state()).toBe('backoff');
    expect(s.ctx().consecutiveFailures).toBe(1);
    expect(s.ctx().nextDelayMs).toBe(delay(1));
  });

  it('leaves failed for START too, and for STOP to stopped', () => {
    const probe = new RunProbe();
    probe.mode = 'fail';
    const s = startSubsystem(probe);
    vi.advanceTimersByTime(HOUR_MS);
    expect(s.state()).toBe('failed');
    s.send({ type: 'STOP' });
    expect(s.state()).toBe('stopped');
    probe.mode = 'ready';
    s.send({ type: 'START' });
    expect(s.state()).toBe('running');
    expect(s.ctx().consecutiveFailures).toBe(0);
  });

  it('forgives earlier failures after running for the stable period, not before', () => {
    const probe = new RunProbe();
    probe.script.push('fail', 'fail', 'fail');
    const s = startSubsystem(probe);
    vi.advanceTimersByTime(delay(1) + delay(2) + delay(3));
    expect(s.state()).toBe('running');
    expect(s.ctx().consecutiveFailures).toBe(3);

    vi.advanceTimersByTime(POLICY.stablePeriodMs - 1);
    expect(s.ctx().consecutiveFailures).toBe(3);
    vi.advanceTimersByTime(1);
    expect(s.ctx().consecutiveFailures).toBe(0);

    probe.failCurrent();
    expect(s.ctx().consecutiveFailures).toBe(1);
    expect(s.ctx().nextDelayMs).toBe(delay(1));
    expect(s.ctx().restarts).toBe(3);
  });

  it('keeps counting failures when a run fails before the stable period', () => {
    const probe = new RunProbe();
    probe.script.push('fail');
    const s = startSubsystem(probe);
    vi.advanceTimersByTime(delay(1));
    expect(s.state()).toBe('running');
    vi.advanceTimersByTime(POLICY.stablePeriodMs - 1);
    probe.failCurrent();
    expect(s.ctx().consecutiveFailures).toBe(2);
    expect(s.ctx().nextDelayMs).toBe(delay(2));
  });

  it.each([
    ['a synchronous throw in run', 'throw', 'QB_ERR_INTERNAL', 'run threw on start 1'],
    ['a FAIL sent back', 'fail', 'QB_ERR_INTERNAL', 'run failed on start 1'],
    ['a thrown INJECT_FAULT', 'inject', 'QB_ERR_INJECTED_FAULT', 'fault injected on request'],
  ] as const)('counts %s as a failure and restarts after the backoff', (_what, how, code, message) => {
    const probe = new RunProbe();
    if (how !== 'inject') probe.script.push(how);
    const s = startSubsystem(probe);
    if (how === 'inject') {
      expect(s.state()).toBe('running');
      s.send({ type: 'INJECT_FAULT' });
    }
    expect(s.state()).toBe('backoff');
    expect(s.ctx().consecutiveFailures).toBe(1);
    expect(s.ctx().lastError).toMatchObject({ code, message });
    vi.advanceTimersByTime(delay(1));
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(2);
    expect(s.ctx().restarts).toBe(1);
  });

  it('keeps the code of a reported QbError', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe);
    probe.failCurrent(new QbError('QB_ERR_DATA_DIR', 'disk gone'));
    expect(s.ctx().lastError).toMatchObject({ code: 'QB_ERR_DATA_DIR', message: 'disk gone' });
  });

  it('restarts a running subsystem on RESTART without counting it as a failure', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe);
    s.send({ type: 'RESTART' });
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(2);
    expect(probe.live()).toBe(1);
    expect(s.ctx()).toMatchObject({ consecutiveFailures: 0, restarts: 0 });
  });
});

describe('subsystem lifecycle: cleanup', () => {
  it('cleans up a run actor that reports a failure', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe);
    probe.failCurrent();
    expect(s.state()).toBe('backoff');
    expect(probe.cleanups).toBe(1);
    expect(probe.live()).toBe(0);
  });

  it('cleans up a run actor that throws on INJECT_FAULT: its timer stops', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe);
    vi.advanceTimersByTime(5 * PROBE_TICK_MS);
    expect(probe.ticks).toBe(5);

    s.send({ type: 'INJECT_FAULT' });
    expect(s.state()).toBe('backoff');
    expect(probe.cleanups).toBe(1);
    expect(probe.live()).toBe(0);
    vi.advanceTimersByTime(delay(1) - 1);
    expect(probe.ticks).toBe(5);

    // Restarted: exactly one timer again, not two.
    vi.advanceTimersByTime(1 + 10 * PROBE_TICK_MS);
    expect(probe.live()).toBe(1);
    expect(probe.ticks).toBe(15);
  });

  it('cleans up the run actor on STOP, waits for drain, and leaves no timer behind', async () => {
    const probe = new RunProbe();
    let finishDrain: () => void = () => {};
    const drain = fromPromise<void, unknown>(() => new Promise<void>((resolve) => (finishDrain = resolve)));
    const s = startSubsystem(probe, {}, { drain });
    s.send({ type: 'STOP' });
    expect(probe.live()).toBe(0);
    await flush();
    expect(s.state()).toBe('stopping');

    finishDrain();
    await flush();
    expect(s.state()).toBe('stopped');
    expect(s.ctx().desired).toBe('stopped');
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(HOUR_MS);
    expect(probe.starts).toBe(1);
  });

  it('ends stopped when drain fails or hangs past its timeout', async () => {
    const failing = fromPromise<void, unknown>(async () => {
      throw new Error('close failed');
    });
    const a = startSubsystem(new RunProbe(), {}, { drain: failing });
    a.send({ type: 'STOP' });
    await flush();
    expect(a.state()).toBe('stopped');
    expect(a.ctx().lastError?.message).toBe('close failed');

    const hanging = fromPromise<void, unknown>(() => new Promise<void>(() => {}));
    const b = startSubsystem(new RunProbe(), { drainTimeoutMs: 2_000 }, { drain: hanging });
    b.send({ type: 'STOP' });
    await vi.advanceTimersByTimeAsync(1_999);
    expect(b.state()).toBe('stopping');
    await vi.advanceTimersByTimeAsync(1);
    expect(b.state()).toBe('stopped');
  });

  it('stops from backoff without restarting later', async () => {
    const probe = new RunProbe();
    probe.script.push('fail');
    const s = startSubsystem(probe);
    expect(s.state()).toBe('backoff');
    s.send({ type: 'STOP' });
    await flush();
    expect(s.state()).toBe('stopped');
    expect(s.ctx().nextRestartAt).toBeNull();
    vi.advanceTimersByTime(HOUR_MS);
    expect(probe.starts).toBe(1);
    expect(vi.getTimerCount()).toBe(0);

    s.send({ type: 'START' });
    expect(s.state()).toBe('running');
    expect(s.ctx().consecutiveFailures).toBe(0);
  });
});

describe('subsystem lifecycle: kill switch', () => {
  it('halts an operating subsystem on HALT (its run actor stopped) and runs it again on RESUME', async () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe, { operates: true });
    s.send({ type: 'HALT' });
    await flush();
    expect(s.state()).toBe('halted');
    expect(probe.live()).toBe(0);
    const ticks = probe.ticks;
    vi.advanceTimersByTime(HOUR_MS);
    expect(probe.ticks).toBe(ticks);
    expect(probe.starts).toBe(1);

    s.send({ type: 'RESUME' });
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(2);
    expect(s.ctx()).toMatchObject({ killSwitchActive: false, consecutiveFailures: 0, restarts: 0 });
  });

  it('keeps a non-operating subsystem running under HALT', async () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe, { operates: false });
    s.send({ type: 'HALT' });
    await flush();
    expect(s.state()).toBe('running');
    expect(s.ctx().killSwitchActive).toBe(true);
    expect(probe.starts).toBe(1);
    expect(probe.cleanups).toBe(0);
    s.send({ type: 'RESUME' });
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(1);
  });

  it('starts halted when the kill switch is already active, and runs on RESUME', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe, { killSwitchActive: true });
    expect(s.state()).toBe('halted');
    expect(probe.starts).toBe(0);
    s.send({ type: 'START' });
    expect(s.state()).toBe('halted');
    s.send({ type: 'RESUME' });
    expect(s.state()).toBe('running');
  });

  it('halts an operating subsystem in backoff instead of restarting it', () => {
    const probe = new RunProbe();
    probe.script.push('fail');
    const s = startSubsystem(probe);
    s.send({ type: 'HALT' });
    expect(s.state()).toBe('halted');
    vi.advanceTimersByTime(HOUR_MS);
    expect(probe.starts).toBe(1);
    s.send({ type: 'RESUME' });
    expect(s.state()).toBe('running');
  });

  it('lets a non-operating subsystem in backoff wait out its delay under HALT', () => {
    const probe = new RunProbe();
    probe.script.push('fail');
    const s = startSubsystem(probe, { operates: false });
    s.send({ type: 'HALT' });
    expect(s.state()).toBe('backoff');
    expect(probe.starts).toBe(1);
    vi.advanceTimersByTime(delay(1));
    expect(s.state()).toBe('running');
    expect(s.ctx().restarts).toBe(1);
  });

  it('holds a START given under the kill switch halted, and a later STOP overrides it', () => {
    const probe = new RunProbe();
    const s = startSubsystem(probe, { autoStart: false, killSwitchActive: true });
    expect(s.state()).toBe('stopped');
    s.send({ type: 'START' });
    expect(s.state()).toBe('halted');
    s.send({ type: 'STOP' });
    expect(s.state()).toBe('stopped');
    s.send({ type: 'RESUME' });
    expect(s.state()).toBe('stopped');
    expect(probe.starts).toBe(0);
  });
});

describe('defineRun', () => {
  it('passes the input and calls the cleanup once when stopped', () => {
    const seen: unknown[] = [];
    let cleanups = 0;
    const logic = defineRun<{ n: number }>(({ input, ready }) => {
      seen.push(input);
      ready();
      return () => cleanups++;
    });
    const actor = createActor(subsystemMachine.provide({ actors: { run: logic } }), {
      input: {
        name: 'x',
        operates: false,
        autoStart: true,
        killSwitchActive: false,
        policy: POLICY,
        runInput: { n: 7 },
      },
    });
    actor.start();
    onTestFinished(() => {
      actor.stop();
    });
    expect(seen).toEqual([{ n: 7 }]);
    expect(stateName(actor.getSnapshot().value)).toBe('running');
    actor.stop();
    expect(cleanups).toBe(1);
  });
});

describe('defineRun: guard', () => {
  /** A subsystem whose timer callback throws on its `throwOnTick`-th tick, outside any actor code. */
  function ticking(throwOnTick: number, how: 'throw' | 'reject') {
    let ticks = 0;
    let cleanups = 0;
    const logic = defineRun<unknown>(({ ready, guard }) => {
      ticks = 0;
      const timer = setInterval(
        guard(async () => {
          ticks++;
          if (ticks === throwOnTick) {
            if (how === 'reject') await Promise.reject(new Error(`rejected on tick ${ticks}`));
            else throw new Error(`thrown on tick ${ticks}`);
          }
        }),
        100,
      );
      ready();
      return () => {
        cleanups++;
        clearInterval(timer);
      };
    });
    return { logic, ticks: () => ticks, cleanups: () => cleanups };
  }

  it.each([
    ['throws', 'throw'],
    ['returns a promise that rejects', 'reject'],
  ] as const)(
    'turns a timer callback that %s into a restart of the subsystem, not an uncaught error',
    async (_what, how) => {
      const sub = ticking(3, how);
      const logic = subsystemMachine.provide({ actors: { run: sub.logic } });
      const actor = createActor(logic, {
        input: {
          name: 'ticker',
          operates: false,
          autoStart: true,
          killSwitchActive: false,
          policy: POLICY,
          random,
        },
      });
      const escaped: unknown[] = [];
      actor.subscribe({ error: (err) => escaped.push(err) });
      actor.start();
      onTestFinished(() => {
        actor.stop();
      });
      // Without the guard the throw would escape from the timer (here: from advanceTimersByTime).
      await vi.advanceTimersByTimeAsync(300);
      expect(stateName(actor.getSnapshot().value)).toBe('backoff');
      expect(actor.getSnapshot().context).toMatchObject({
        consecutiveFailures: 1,
        lastError: {
          code: 'QB_ERR_INTERNAL',
          message: `${how === 'throw' ? 'thrown' : 'rejected'} on tick 3`,
        },
      });
      expect(sub.cleanups()).toBe(1);
      await vi.advanceTimersByTimeAsync(delay(1));
      expect(stateName(actor.getSnapshot().value)).toBe('running');
      expect(actor.getSnapshot().context.restarts).toBe(1);
      expect(escaped).toEqual([]);
    },
  );

  it('makes a guarded callback inert once the subsystem is cleaned up', () => {
    let late: (() => void) | undefined;
    let calls = 0;
    const logic = defineRun<unknown>(({ ready, guard }) => {
      late = guard(() => {
        calls++;
        throw new Error('must not run after cleanup');
      });
      ready();
      return () => {};
    });
    const actor = createActor(subsystemMachine.provide({ actors: { run: logic } }), {
      input: { name: 'late', operates: false, autoStart: true, killSwitchActive: false, policy: POLICY },
    });
    actor.start();
    actor.send({ type: 'STOP' });
    expect(stateName(actor.getSnapshot().value)).toBe('stopped');
    late?.();
    expect(calls).toBe(0);
    expect(stateName(actor.getSnapshot().value)).toBe('stopped');
    actor.stop();
  });
});

describe('subsystem lifecycle: logging', () => {
  it('logs every failure at error level, each restart, the failed state and the recovery', () => {
    const { logger, lines } = captureLogger();
    const probe = new RunProbe();
    probe.mode = 'fail';
    const s = startSubsystem(probe, { logger });
    vi.advanceTimersByTime(HOUR_MS);
    expect(s.state()).toBe('failed');

    const failures = lines.filter((l) => l.msg.startsWith('subsystem failed'));
    expect(failures).toHaveLength(POLICY.maxConsecutiveFailures);
    for (const [i, line] of failures.entries()) {
      expect(line).toMatchObject({ level: LEVEL.error, subsystem: 'probe', consecutiveFailures: i + 1 });
      expect(line.err?.message).toBe(`run failed on start ${i + 1}`);
    }
    expect(failures[0]).toMatchObject({ restartInMs: delay(1) });
    expect(failures.at(-1)?.msg).toMatch(/stays failed until an operator restarts it/);
    const restarts = lines.filter((l) => l.msg === 'restarting subsystem after its backoff');
    expect(restarts).toHaveLength(POLICY.maxConsecutiveFailures - 1);
    expect(restarts[0]).toMatchObject({ level: LEVEL.warn, subsystem: 'probe', attempt: 2 });
    const failed = lines.filter((l) => l.msg.startsWith('subsystem is failed'));
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: LEVEL.error, subsystem: 'probe' });

    probe.mode = 'ready';
    s.send({ type: 'RESTART' });
    probe.failCurrent(new Error('once more'));
    vi.advanceTimersByTime(delay(1));
    expect(s.state()).toBe('running');
    expect(lines.at(-1)).toMatchObject({
      level: LEVEL.info,
      msg: 'subsystem recovered: running again',
      subsystem: 'probe',
      consecutiveFailures: 1,
    });
    vi.advanceTimersByTime(POLICY.stablePeriodMs);
    expect(lines.at(-1)).toMatchObject({ level: LEVEL.info, msg: expect.stringMatching(/stable period/) });
  });

  it('logs a failed or stuck drain at error level', async () => {
    const { logger, lines } = captureLogger();
    const failing = fromPromise<void, unknown>(async () => {
      throw new Error('close failed');
    });
    const s = startSubsystem(new RunProbe(), { logger }, { drain: failing });
    s.send({ type: 'STOP' });
    await flush();
    expect(s.state()).toBe('stopped');
    expect(lines.find((l) => l.msg.includes('drain'))).toMatchObject({
      level: LEVEL.error,
      subsystem: 'probe',
      err: { message: 'close failed' },
    });
  });
});

describe('subsystem lifecycle: teardown through drain', () => {
  /** A drain that waits for the test to finish it, and records when it ran. */
  function manualDrain(order: string[]) {
    let finish: () => void = () => {};
    let drains = 0;
    const logic = fromPromise<void, unknown>(() => {
      drains++;
      order.push('drain');
      return new Promise<void>((resolve) => {
        finish = resolve;
      });
    });
    return { logic, finish: () => finish(), drains: () => drains };
  }

  it('drains a failed subsystem before its backoff, and restarts it only after the drain', async () => {
    const order: string[] = [];
    const drain = manualDrain(order);
    const probe = new RunProbe();
    const s = startSubsystem(probe, {}, { drain: drain.logic });
    order.push('start');
    probe.failCurrent(new Error('socket reset'));
    await flush();
    expect(s.state()).toBe('stopping');
    expect(s.ctx()).toMatchObject({ consecutiveFailures: 1, lastError: { message: 'socket reset' } });
    expect(probe.live()).toBe(0);
    expect(drain.drains()).toBe(1);

    // However long the drain takes, no new run starts meanwhile.
    await vi.advanceTimersByTimeAsync(5 * delay(1));
    expect(s.state()).toBe('stopping');
    expect(probe.starts).toBe(1);

    drain.finish();
    await flush();
    expect(s.state()).toBe('backoff');
    expect(s.ctx().nextRestartAt).toBe(Date.now() + delay(1));
    await vi.advanceTimersByTimeAsync(delay(1));
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(2);
    expect(order).toEqual(['start', 'drain']);
  });

  it('drains on RESTART before the new run starts, without counting a failure', async () => {
    const order: string[] = [];
    const drain = manualDrain(order);
    const probe = new RunProbe();
    const s = startSubsystem(probe, {}, { drain: drain.logic });
    s.send({ type: 'RESTART' });
    await flush();
    expect(s.state()).toBe('stopping');
    expect(probe.starts).toBe(1);
    expect(probe.live()).toBe(0);
    drain.finish();
    await flush();
    expect(s.state()).toBe('running');
    expect(probe.starts).toBe(2);
    expect(drain.drains()).toBe(1);
    expect(s.ctx()).toMatchObject({ consecutiveFailures: 0, restarts: 0 });
  });

  it('holds the 10th failure in stopping until drained, then failed', async () => {
    const drain = manualDrain([]);
    const probe = new RunProbe();
    probe.mode = 'fail';
    const s = startSubsystem(probe, {}, { drain: drain.logic });
    for (let failures = 1; failures < POLICY.maxConsecutiveFailures; failures++) {
      drain.finish();
      await vi.advanceTimersByTimeAsync(delay(failures));
    }
    expect(s.state()).toBe('stopping');
    drain.finish();
    await flush();
    expect(s.state()).toBe('failed');
    expect(drain.drains()).toBe(POLICY.maxConsecutiveFailures);
  });

  it('lets an operator STOP during the drain of a failure end in stopped, not in a backoff', async () => {
    const drain = manualDrain([]);
    const probe = new RunProbe();
    const s = startSubsystem(probe, {}, { drain: drain.logic });
    probe.failCurrent();
    await flush();
    s.send({ type: 'STOP' });
    drain.finish();
    await flush();
    expect(s.state()).toBe('stopped');
    vi.advanceTimersByTime(HOUR_MS);
    expect(probe.starts).toBe(1);
  });

  it('under the kill switch, halts an operating subsystem whose failure was draining', async () => {
    const drain = manualDrain([]);
    const probe = new RunProbe();
    const s = startSubsystem(probe, { operates: true }, { drain: drain.logic });
    probe.failCurrent();
    await flush();
    s.send({ type: 'HALT' });
    drain.finish();
    await flush();
    expect(s.state()).toBe('halted');
    vi.advanceTimersByTime(HOUR_MS);
    expect(probe.starts).toBe(1);
  });
});

describe('subsystem lifecycle: journal', () => {
  function journal() {
    const saved: SupervisionRecord[] = [];
    return { saved, port: { save: (_name: string, r: SupervisionRecord) => void saved.push(r) } };
  }

  it('journals the subsystem live before any callback of its run can run, and every failure count', async () => {
    const j = journal();
    let liveWhenCalledBack: boolean | undefined;
    const logic = defineRun<unknown>(({ guard }) => {
      const timer = setTimeout(
        guard(() => {
          liveWhenCalledBack = j.saved.at(-1)?.live;
          throw new Error('first callback fails');
        }),
        0,
      );
      return () => clearTimeout(timer);
    });
    const actor = createActor(subsystemMachine.provide({ actors: { run: logic } }), {
      input: {
        name: 'j',
        operates: false,
        autoStart: true,
        killSwitchActive: false,
        policy: POLICY,
        random,
        journal: j.port,
      },
    });
    actor.start();
    onTestFinished(() => {
      actor.stop();
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(liveWhenCalledBack).toBe(true);
    expect(j.saved.at(-1)).toMatchObject({
      live: false,
      consecutiveFailures: 1,
      lastError: { message: 'first callback fails' },
    });
  });

  it('starts with the failures an earlier process left, and held failed when they reach the limit', () => {
    const { logger, lines } = captureLogger();
    const probe = new RunProbe();
    const restored = {
      live: false,
      consecutiveFailures: POLICY.maxConsecutiveFailures,
      lastError: { code: 'QB_ERR_WORKER_DIED', message: 'died', at: new Date().toISOString() },
      diedWhileLive: true,
    };
    const s = startSubsystem(probe, { restored, logger });
    expect(s.state()).toBe('failed');
    expect(probe.starts).toBe(0);
    expect(s.ctx().lastError?.code).toBe('QB_ERR_WORKER_DIED');
    expect(lines.find((l) => l.msg.includes('previous worker process died'))).toMatchObject({
      level: LEVEL.error,
      subsystem: 'probe',
    });
    s.send({ type: 'RESTART' });
    expect(s.state()).toBe('running');
    expect(s.ctx().consecutiveFailures).toBe(0);

    const fewer = startSubsystem(new RunProbe(), { restored: { ...restored, consecutiveFailures: 4 } });
    expect(fewer.state()).toBe('running');
    fewer.send({ type: 'INJECT_FAULT' });
    expect(fewer.ctx().consecutiveFailures).toBe(5);
    expect(fewer.ctx().nextDelayMs).toBe(delay(5));
  });
});
