import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';

/** Liveness (/health) and readiness (/ready). */
export const healthRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get('/health', async () => {
    const { status, uptime, cpu, memory, eventLoopDelayMs, connections } = deps.health.read();
    return { status, uptime, cpu, memory, eventLoopDelayMs, connections };
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
