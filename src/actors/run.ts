/**
 * A subsystem's `run` actor, built from a start function that returns its cleanup: what every
 * subsystem gets for free (fault injection, `guard` for its callbacks, its name carried through its
 * async work for blame.ts). The lifecycle machine (subsystem.ts) invokes it while `active`.
 */
import { fromCallback } from 'xstate';
import { QbError } from '../errors.js';
import { runAs } from './blame.js';

/** Events a `run` actor receives from its lifecycle machine. */
export type RunEvent = { type: 'INJECT_FAULT' };

export interface RunArgs<I> {
  input: I;
  /** Report that the subsystem is up. */
  ready(): void;
  /** Report an asynchronous failure (a callback or promise that failed). */
  fail(error: unknown): void;
  /**
   * Wraps a timer, event or promise callback of the subsystem: a throw inside it (or a promise it
   * returns that rejects) becomes this subsystem's failure instead of an uncaught exception that
   * would take the whole worker process down. Once the subsystem is cleaned up the wrapped callback
   * does nothing, so a late timer or event cannot act on a stopped subsystem.
   */
  guard<A extends unknown[]>(callback: (...args: A) => unknown): (...args: A) => void;
}

/**
 * Builds a subsystem's `run` actor from a start function that returns its cleanup. INJECT_FAULT
 * throws inside the actor, exactly like a real bug.
 */
export function defineRun<I>(start: (args: RunArgs<I>) => () => void) {
  return fromCallback<RunEvent, I>(({ input, sendBack, receive, self }) => {
    let live = true;
    let cleanup: (() => void) | undefined;
    const dispose = () => {
      live = false;
      const c = cleanup;
      cleanup = undefined;
      c?.();
    };
    receive((event) => {
      if (event.type === 'INJECT_FAULT') {
        // XState calls a callback actor's cleanup only when it is stopped, never after it threw:
        // clean up first, or the subsystem's timers and sockets outlive it.
        dispose();
        throw new QbError('QB_ERR_INJECTED_FAULT', 'fault injected on request');
      }
    });
    // The subsystem's code runs under its name (blame.ts), so an uncaught exception in a callback
    // it did not guard is still pinned on it. The lifecycle machine is the parent.
    const name = (self._parent?.getSnapshot() as { context?: { name?: unknown } } | undefined)?.context?.name;
    const as = <T>(fn: () => T): T => (typeof name === 'string' ? runAs(name, fn) : fn());
    const fail = (error: unknown) => {
      if (live) sendBack({ type: 'FAIL', error });
    };
    const guard =
      <A extends unknown[]>(callback: (...args: A) => unknown) =>
      (...args: A): void => {
        if (!live) return;
        try {
          const result = as(() => callback(...args));
          if (result instanceof Promise) result.catch(fail);
        } catch (err) {
          fail(err);
        }
      };
    const ready = () => {
      if (live) sendBack({ type: 'READY' });
    };
    cleanup = as(() => start({ input, ready, fail, guard }));
    return dispose;
  });
}
