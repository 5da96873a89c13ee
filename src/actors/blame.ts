/**
 * Which subsystem's code is running, carried through its timers, promises and events with
 * AsyncLocalStorage, so an uncaught exception that takes the worker down can be pinned on the
 * subsystem whose callback threw. The supervision journal then counts that death against this one
 * subsystem only, not against every subsystem that happened to be running (see store/supervision.ts).
 *
 * `uncaughtExceptionMonitor` is used because it observes without changing what the process does:
 * the worker's own `uncaughtException` handler still logs and exits. It runs synchronously in the
 * context of the callback that threw, so the store is still that subsystem's.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const running = new AsyncLocalStorage<string>();

/** Runs `fn` as code of subsystem `name`: everything it schedules carries the name. */
export function runAs<T>(name: string, fn: () => T): T {
  return running.run(name, fn);
}

/** The subsystem whose code is running now, if any. */
export function currentSubsystem(): string | undefined {
  return running.getStore();
}

/**
 * Calls `record` when an uncaught exception is thrown from a subsystem's code, before the process's
 * handlers run. Returns a function that stops watching.
 */
export function watchSubsystemCrashes(record: (name: string, error: unknown) => void): () => void {
  const monitor = (error: unknown) => {
    const name = running.getStore();
    if (name !== undefined) record(name, error);
  };
  process.on('uncaughtExceptionMonitor', monitor);
  return () => {
    process.off('uncaughtExceptionMonitor', monitor);
  };
}
