/**
 * The one place a subsystem plugs in: add its registration here, and the supervisor, /status,
 * /ready, /metrics, the kill switch and POST /subsystems/:name/* all know it.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { type HealthMonitor, healthRun } from './health.js';
import type { SubsystemRegistration } from './root.js';

export interface RegistryDeps {
  config: Readonly<Config>;
  logger: Logger;
  healthMonitor: HealthMonitor;
}

export function subsystemRegistrations(deps: RegistryDeps): SubsystemRegistration[] {
  return [
    {
      name: 'health',
      enabled: true,
      // Watching the process is not an operation: it keeps running under the kill switch.
      operates: false,
      run: healthRun,
      runInput: {
        monitor: deps.healthMonitor,
        intervalMs: deps.config.healthCheckIntervalMs,
        logger: deps.logger.child({ component: 'health' }),
      },
    },
  ];
}
