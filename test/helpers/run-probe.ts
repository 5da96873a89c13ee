/**
 * A scriptable `run` actor for lifecycle tests: it counts its starts and cleanups, keeps an interval
 * timer alive while it lives (so a cleanup that never runs shows up as a leaked timer and as ticks
 * that go on), and behaves on each start as the test says.
 */
import { defineRun } from '../../src/actors/subsystem.js';

/**
 * What one start of the run actor does:
 * - `ready`: reports READY and keeps running;
 * - `fail`: reports a failure at once (FAIL sent back);
 * - `throw`: throws synchronously from its start function;
 * - `hang`: never reports READY (the start timeout applies).
 */
export type StartBehaviour = 'ready' | 'fail' | 'throw' | 'hang';

/** Interval of the probe's own timer while it lives, ms. */
export const PROBE_TICK_MS = 10;

export class RunProbe {
  /** Behaviour of the starts after the scripted ones. */
  mode: StartBehaviour = 'ready';
  /** Behaviours of the next starts, consumed one per start. */
  readonly script: StartBehaviour[] = [];
  starts = 0;
  cleanups = 0;
  /** Ticks of the live run actors' timers. */
  ticks = 0;
  private liveTimers = 0;
  private current: { ready: () => void; fail: (error: unknown) => void } | undefined;

  readonly logic = defineRun<unknown>(({ ready, fail }) => {
    this.starts++;
    const behaviour = this.script.shift() ?? this.mode;
    if (behaviour === 'throw') throw new Error(`run threw on start ${this.starts}`);
    const timer = setInterval(() => this.ticks++, PROBE_TICK_MS);
    this.liveTimers++;
    this.current = { ready, fail };
    if (behaviour === 'ready') ready();
    if (behaviour === 'fail') fail(new Error(`run failed on start ${this.starts}`));
    return () => {
      this.cleanups++;
      this.liveTimers--;
      clearInterval(timer);
    };
  });

  /** Run actors that hold a timer and have not been cleaned up. */
  live(): number {
    return this.liveTimers;
  }

  /** Makes the newest run actor report a failure, as a subsystem whose callback failed would. */
  failCurrent(error: unknown = new Error('reported failure')): void {
    if (!this.current) throw new Error('the probe has not started');
    this.current.fail(error);
  }
}
