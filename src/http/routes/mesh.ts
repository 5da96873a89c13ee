import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';

/** GET /mesh: this peer and every peer it knows, with state, address, last seen, RTT, status. */
export const meshRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get('/mesh', { config: { access: 'fleet' } }, async () => {
    const { enabled, reason, self, peers, reconnectAttempts } = deps.mesh();
    return { self: { ...self, enabled, ...(reason ? { reason } : {}) }, peers, reconnectAttempts };
  });
};
