import type { FastifyPluginAsync } from 'fastify';
import type { SubsystemStatus } from '../../actors/root.js';
import { killSwitchView } from '../../store/kill-switch.js';
import type { AppDeps } from '../app.js';
import { queueOverview, storeView } from './queues.js';

export const statusRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get('/status', { config: { access: 'fleet' } }, async () => {
    const subsystems: Record<string, SubsystemStatus> = {};
    for (const s of deps.actors.status()) subsystems[s.name] = s;
    const { counters: _counters, ...mesh } = deps.mesh();
    return {
      peerId: deps.identity.peerId,
      bootId: deps.identity.bootId,
      uptime: Math.round(process.uptime() * 100) / 100,
      continuousMode: deps.config.continuousMode,
      killSwitch: killSwitchView(deps.killSwitch.get()),
      // Null for a feature this build lacks; each present feature fills its own field.
      trading: null,
      freelance: null,
      ai: null,
      ...deps.features?.status(),
      mesh,
      reconnectAttempts: mesh.reconnectAttempts,
      subsystems,
      // Depths by state per queue; null when the queue store cannot answer (e.g. PostgreSQL down).
      queues: deps.queue ? await queueOverview(deps.queue).catch(() => null) : {},
      // How the queue reaches its store: PostgreSQL may be `reconnecting` (see QB_ERR_STORE_UNAVAILABLE).
      store: deps.queue ? storeView(deps.queue.connection()) : null,
      prompt: deps.prompt,
      workerRespawns: deps.workerRespawns,
      pids: deps.pids,
    };
  });
};
