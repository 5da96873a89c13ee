import type { FastifyPluginAsync } from 'fastify';
import type { SubsystemStatus } from '../../actors/root.js';
import type { AppDeps } from '../app.js';
import { queueOverview } from './queues.js';

export const statusRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get('/status', { config: { access: 'fleet' } }, async () => {
    const subsystems: Record<string, SubsystemStatus> = {};
    for (const s of deps.actors.status()) subsystems[s.name] = s;
    const { active, reason, since, origin, epoch } = deps.killSwitch.get();
    const { counters: _counters, ...mesh } = deps.mesh();
    return {
      peerId: deps.identity.peerId,
      bootId: deps.identity.bootId,
      uptime: Math.round(process.uptime() * 100) / 100,
      continuousMode: deps.config.continuousMode,
      killSwitch: { active, reason, since, origin, epoch },
      // Filled in by the trading, freelance and AI subsystems once they exist in this build.
      trading: null,
      freelance: null,
      ai: null,
      mesh,
      reconnectAttempts: mesh.reconnectAttempts,
      subsystems,
      // Depths by state per queue; null when the queue store cannot answer (e.g. PostgreSQL down).
      queues: deps.queue ? await queueOverview(deps.queue).catch(() => null) : {},
      prompt: deps.prompt,
      workerRespawns: deps.workerRespawns,
      pids: deps.pids,
    };
  });
};
