import { describe, expect, it, onTestFinished } from 'vitest';
import { createActor } from 'xstate';
import { currentSubsystem, runAs, watchSubsystemCrashes } from '../../src/actors/blame.js';
import { defineRun, subsystemMachine } from '../../src/actors/subsystem.js';
import { deferred } from '../helpers/process.js';

/** The monitor event as Node emits it (process.emit's types do not list it). */
const emitMonitor = (error: Error, origin: string) =>
  (process.emit as (event: string, ...args: unknown[]) => boolean)('uncaughtExceptionMonitor', error, origin);

const POLICY = { restartBaseMs: 10, restartMaxMs: 20, stablePeriodMs: 60_000, maxConsecutiveFailures: 10 };

describe('blame', () => {
  it("carries the subsystem's name into the timers and promises its run schedules", async () => {
    const seen = deferred<Array<string | undefined>>();
    const logic = defineRun<unknown>(({ ready }) => {
      const names: Array<string | undefined> = [currentSubsystem()];
      const timer = setTimeout(() => {
        names.push(currentSubsystem());
        void Promise.resolve().then(() => {
          names.push(currentSubsystem());
          seen.resolve(names);
        });
      }, 1);
      ready();
      return () => clearTimeout(timer);
    });
    const actor = createActor(subsystemMachine.provide({ actors: { run: logic } }), {
      input: { name: 'trader', operates: true, autoStart: true, killSwitchActive: false, policy: POLICY },
    });
    actor.start();
    onTestFinished(() => {
      actor.stop();
    });
    expect(await seen.promise).toEqual(['trader', 'trader', 'trader']);
    expect(currentSubsystem()).toBeUndefined();
  });

  it('reports an uncaught exception thrown from a subsystem, and none thrown from elsewhere', () => {
    const recorded: Array<[string, unknown]> = [];
    const unwatch = watchSubsystemCrashes((name, error) => recorded.push([name, error]));
    onTestFinished(unwatch);
    const bug = new Error('bug');
    // The monitor event as Node emits it, synchronously in the context of the callback that threw.
    runAs('mesh', () => emitMonitor(bug, 'uncaughtException'));
    emitMonitor(new Error('not a subsystem'), 'uncaughtException');
    expect(recorded).toEqual([['mesh', bug]]);

    unwatch();
    runAs('mesh', () => emitMonitor(bug, 'uncaughtException'));
    expect(recorded).toHaveLength(1);
  });
});
