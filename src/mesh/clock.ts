/**
 * The mesh's clock. Every deadline (heartbeats, dial backoff, failure detection) runs on a
 * monotonic reading, so a wall-clock step (NTP, a VM resumed, an operator's `date -s`) neither
 * stalls failure detection nor fires every deadline at once. Wall time is only for display: a
 * monotonic reading is turned into a wall time when a view is built. Injected, so tests run on
 * fake time.
 */
import { performance } from 'node:perf_hooks';

export interface MeshClock {
  /** Monotonic milliseconds (an arbitrary origin): the only time deadlines compare. */
  now(): number;
  /** The wall time (epoch ms) of a reading of now(), for display. */
  wall(monotonic: number): number;
}

export const systemClock: MeshClock = {
  now: () => performance.now(),
  wall: (monotonic) => Date.now() - (performance.now() - monotonic),
};

/**
 * Where the mesh's timers run. Injected like the clock, so a test runs a node on virtual time, and
 * can hold a paused node's timers back as a stopped process's would be (memory-transport.ts).
 */
export interface Scheduler {
  setTimeout(fn: () => void, ms: number): TimerHandle;
  setInterval(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timeout or an interval; ignores one already fired or cancelled. */
  clear(handle: TimerHandle | undefined): void;
}

/** A timer of a Scheduler; opaque to its users. */
export type TimerHandle = object;

export const systemScheduler: Scheduler = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clear: (handle) => {
    if (handle) clearTimeout(handle as NodeJS.Timeout);
  },
};
