/**
 * The health subsystem: closes a sampling window of the HealthMonitor every HEALTH_CHECK_INTERVAL
 * and warns when the process is degraded. The monitor itself (health-monitor.ts) lives as long as
 * the process, so GET /health answers even while this subsystem is stopped.
 */
import type { Logger } from '../logger.js';
import type { HealthMonitor } from './health-monitor.js';
import { defineRun } from './subsystem.js';

export {
  type Connections,
  DEGRADED_EVENT_LOOP_DELAY_MS,
  HealthMonitor,
  type HealthMonitorOptions,
  type HealthSample,
} from './health-monitor.js';

export interface HealthRunInput {
  monitor: HealthMonitor;
  intervalMs: number;
  logger: Logger;
}

/** The health subsystem: closes a window every interval and warns when the process is degraded. */
export const healthRun = defineRun<HealthRunInput>(({ input, ready, guard }) => {
  const { monitor, intervalMs, logger } = input;
  // Guarded: a throw while sampling fails this subsystem (and it is restarted), not the process.
  const sample = guard(() => {
    const s = monitor.closeWindow();
    if (s.status !== 'ok') logger.warn({ health: s }, 'process is degraded');
    else logger.debug({ health: s }, 'health sample');
  });
  sample();
  ready();
  const timer = setInterval(sample, intervalMs);
  return () => clearInterval(timer);
});
