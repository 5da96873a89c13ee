import type { FastifyPluginAsync } from 'fastify';
import type { HealthMonitor, HealthSample } from '../../actors/health-monitor.js';
import type { AppDeps } from '../app.js';
import { storeUnready } from './queues.js';

export const HEALTH_CONTENT_TYPE = 'application/json; charset=utf-8';

/** The serialized answer of each sample, made once: a probe then costs a lookup, not a stringify. */
const bodies = new WeakMap<HealthSample, string>();

/**
 * The GET /health answer: `{status, uptime, cpu, memory, eventLoopDelayMs, connections}` of a sample
 * at most HEALTH_SAMPLE_TTL_MS old. Shared by the route and the boot gate, which answers it before
 * the app is built.
 */
export function healthBody(monitor: HealthMonitor): string {
  const sample = monitor.current();
  let body = bodies.get(sample);
  if (body === undefined) {
    const { status, uptime, cpu, memory, eventLoopDelayMs, connections } = sample;
    body = JSON.stringify({ status, uptime, cpu, memory, eventLoopDelayMs, connections });
    bodies.set(sample, body);
  }
  return body;
}

/**
 * Liveness (/health) and readiness (/ready).
 *
 * A subsystem halted by the kill switch does not make the peer unready: a halted peer still serves
 * the API and relays the mesh (which carries the kill switch itself). Under Kubernetes a 503 would
 * drop the peer from the headless service's DNS records that DNS discovery resolves, so the fleet
 * would split exactly while the kill switch is on. /ready answers 200 then and names the halt in
 * `halted`.
 */
export const healthRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  // Synchronous handler: liveness is probed often, and an async one costs a promise per request.
  app.get('/health', (_request, reply) => {
    reply.type(HEALTH_CONTENT_TYPE).send(healthBody(deps.health));
  });

  app.get('/ready', async (_request, reply) => {
    const enabled = deps.actors.status().filter((s) => s.enabled);
    const reasons = enabled
      .filter((s) => s.state !== 'running' && s.state !== 'halted')
      .map((s) => {
        if (s.state === 'failed') return `${s.name} failed: ${s.lastError?.message ?? 'unknown error'}`;
        return `${s.name} is ${s.state}`;
      });
    // The queue's database: while it is unreachable nothing can be accepted or claimed.
    const store = deps.queue ? storeUnready(deps.queue.connection()) : null;
    if (store) reasons.push(store);
    const haltedNames = enabled.filter((s) => s.state === 'halted').map((s) => s.name);
    const ks = deps.killSwitch.get();
    const halted =
      haltedNames.length > 0
        ? {
            subsystems: haltedNames,
            reason: `halted by the kill switch (${ks.origin}: ${ks.reason})`,
            since: ks.since,
            epoch: ks.epoch,
          }
        : null;
    if (reasons.length > 0) return reply.status(503).send({ ready: false, reasons, halted });
    return { ready: true, reasons: [], halted };
  });
};
