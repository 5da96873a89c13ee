/**
 * The one place a subsystem plugs in: add its registration here, and the supervisor, /status,
 * /ready, /metrics, the kill switch and POST /subsystems/:name/* all know it.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { MeshNode } from '../mesh/node.js';
import { type HealthMonitor, healthRun } from './health.js';
import { meshDrain, meshRun } from './mesh.js';
import type { SubsystemRegistration } from './root.js';

export interface RegistryDeps {
  config: Readonly<Config>;
  logger: Logger;
  healthMonitor: HealthMonitor;
  /** Absent without MESH_SECRET: the peer runs alone. */
  meshNode: MeshNode | undefined;
}

export function subsystemRegistrations(deps: RegistryDeps): SubsystemRegistration[] {
  return [
    {
      name: 'health',
      enabled: true,
      // Watching the process is not an operation: it keeps running under the kill switch.
      operates: false,
      describe: `health checks every ${deps.config.healthCheckIntervalMs} ms`,
      run: healthRun,
      runInput: {
        monitor: deps.healthMonitor,
        intervalMs: deps.config.healthCheckIntervalMs,
        logger: deps.logger.child({ component: 'health' }),
      },
    },
    {
      name: 'mesh',
      enabled: deps.meshNode !== undefined,
      // The mesh carries the kill switch itself, so the kill switch must never halt it.
      operates: false,
      describe: deps.meshNode
        ? `mesh cluster "${deps.config.mesh.cluster}" via ${deps.config.mesh.discovery.join('+')}, auto-reconnect ${deps.config.autoReconnect ? 'on' : 'off'}`
        : 'mesh (MESH_SECRET is not set: this peer runs alone)',
      run: meshRun,
      drain: meshDrain,
      runInput: { node: deps.meshNode },
    },
  ];
}
