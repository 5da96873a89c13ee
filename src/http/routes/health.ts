import type { FastifyPluginAsync } from 'fastify';
import type { HealthMonitor, HealthSample } from '../../actors/health-monitor.js';
import type { AppDeps } from '../app.js';

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

/** Liveness (/health) and readiness (/ready). */
export const healthRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  // Synchronous handler: liveness is probed often, and an async one costs a promise per request.
  app.get('/health', (_request, reply) => {
    reply.type(HEALTH_CONTENT_TYPE).send(healthBody(deps.health));
  });

  app.get('/ready', async (_request, reply) => {
    const reasons = deps.actors
      .status()
      .filter((s) => s.enabled && s.state !== 'running')
      .map((s) => {
        if (s.state === 'halted') return `${s.name} is halted by the kill switch`;
        if (s.state === 'failed') return `${s.name} failed: ${s.lastError?.message ?? 'unknown error'}`;
        return `${s.name} is ${s.state}`;
      });
    if (reasons.length > 0) return reply.status(503).send({ ready: false, reasons });
    return { ready: true, reasons: [] };
  });
};
