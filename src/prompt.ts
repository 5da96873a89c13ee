/**
 * The autonomous-mode prompt of the 24/7 guide: one paragraph that says what this peer will do on
 * its own, logged once at start and shown in /status as `prompt`, so an operator reading either
 * knows what was switched on without reading the environment.
 */
import type { Config } from './config.js';

const onOff = (b: boolean) => (b ? 'on' : 'off');

export function autonomousPrompt(config: Readonly<Config>): string {
  const mode = config.continuousMode
    ? 'Continuous autonomous mode: running 24/7, restarting any failed subsystem with backoff and respawning the worker process if it dies.'
    : 'Single-process mode: a fatal error ends the process for an outside manager to restart.';
  const start = config.autoStart
    ? 'Subsystems start on their own.'
    : 'Subsystems wait for an operator (AUTO_START=false): POST /subsystems/<name>/start.';
  const trading = config.botEnabled
    ? `trading ${config.trading.mode} on ${config.trading.exchange} (${config.trading.symbols.join(', ')})`
    : 'trading off';
  const freelance = config.freelanceEnabled
    ? `freelance ${config.freelance.autoExecute ? 'auto-executing matched jobs' : 'with approval of matched jobs'}`
    : 'freelance off';
  const mesh = config.mesh.secrets.length
    ? `mesh cluster "${config.mesh.cluster}" via ${config.mesh.discovery.join('+')}`
    : 'no mesh (no MESH_SECRET): running alone';
  return [
    mode,
    start,
    `Work: ${trading}; ${freelance}; AI tasks ${onOff(config.aiEnabled)}; ${mesh}; auto-reconnect ${onOff(config.autoReconnect)}.`,
    `Health checked every ${config.healthCheckIntervalMs} ms. The kill switch (POST /kill-switch) halts every operation at once.`,
  ].join(' ');
}
