import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';

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
  app.get('/health', async () => {
    const { status, uptime, cpu, memory, eventLoopDelayMs, connections } = deps.health.read();
    return { status, uptime, cpu, memory, eventLoopDelayMs, connections };
  });

  app.get('/ready', async (_request, reply) => {
    const enabled = deps.actors.status().filter((s) => s.enabled);
    const reasons = enabled
      .filter((s) => s.state !== 'running' && s.state !== 'halted')
      .map((s) => {
        if (s.state === 'failed') return `${s.name} failed: ${s.lastError?.message ?? 'unknown error'}`;
        return `${s.name} is ${s.state}`;
      });
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
