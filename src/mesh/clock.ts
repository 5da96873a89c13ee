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
