/** Restart policy of subsystems (inside the worker) and of the worker process (continuous mode). */
import { type ValuesOf, withDefault } from './define.js';
import { integer } from './parsers.js';

export const DEFAULT_RESTART_BASE_MS = 1_000;
export const DEFAULT_RESTART_MAX_MS = 60_000;
export const DEFAULT_STABLE_PERIOD_MS = 60_000;
/** The failure that makes this many in a row holds a subsystem `failed`. */
export const MAX_CONSECUTIVE_FAILURES = 10;
export const DEFAULT_RESPAWN_BASE_MS = 250;
export const DEFAULT_RESPAWN_MAX_MS = 30_000;

export const SUPERVISOR_VARS = {
  /** First restart delay, ms; doubles per consecutive failure. */
  restartBaseMs: withDefault(
    'SUBSYSTEM_RESTART_BASE_MS',
    String(DEFAULT_RESTART_BASE_MS),
    integer(1),
    'first restart delay of a failed subsystem, ms (doubles, with jitter)',
  ),
  /** Upper bound of a restart delay, ms. */
  restartMaxMs: withDefault(
    'SUBSYSTEM_RESTART_MAX_MS',
    String(DEFAULT_RESTART_MAX_MS),
    integer(1),
    'cap of a subsystem restart delay, ms',
  ),
  /** Running this long (ms) forgives earlier failures. */
  stablePeriodMs: withDefault(
    'SUBSYSTEM_STABLE_MS',
    String(DEFAULT_STABLE_PERIOD_MS),
    integer(1),
    'running this long (ms) resets the failure count',
  ),
};

export const WORKER_VARS = {
  respawnBaseMs: withDefault(
    'WORKER_RESPAWN_BASE_MS',
    String(DEFAULT_RESPAWN_BASE_MS),
    integer(1),
    'first respawn delay of a dead worker process in continuous mode, ms',
  ),
  respawnMaxMs: withDefault(
    'WORKER_RESPAWN_MAX_MS',
    String(DEFAULT_RESPAWN_MAX_MS),
    integer(1),
    'cap of the worker respawn delay, ms',
  ),
};

export type SupervisorConfig = ValuesOf<typeof SUPERVISOR_VARS> & {
  /** The failure that makes this many in a row holds the subsystem `failed`. */
  maxConsecutiveFailures: number;
};
export type WorkerConfig = ValuesOf<typeof WORKER_VARS>;

export function checkSupervision(sup: Partial<SupervisorConfig>, problems: string[]): void {
  if (sup.restartBaseMs && sup.restartMaxMs && sup.restartBaseMs > sup.restartMaxMs) {
    problems.push('SUBSYSTEM_RESTART_BASE_MS must not exceed SUBSYSTEM_RESTART_MAX_MS');
  }
}
