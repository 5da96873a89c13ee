import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { AppDeps } from '../app.js';

/**
 * GET /metrics. The registry (prom-client, about a hundred modules) is imported once the app is
 * ready, in the background, so it costs nothing on the way to the first /health; a scrape that
 * comes earlier waits for it.
 */
export const metricsRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  let registry: Promise<Registry> | undefined;
  const load = () => {
    registry ??= import('../metrics/registry.js').then((m) => m.createMetricsRegistry(deps));
    return registry;
  };
  let closed = false;
  app.addHook('onReady', async () => {
    // After the current turn: whatever waits on ready (the boot gate opening) goes first.
    setImmediate(() => {
      if (!closed) void load().catch(() => {});
    });
  });
  app.addHook('onClose', async () => {
    closed = true;
  });
  app.get('/metrics', async (_request, reply) => {
    const register = await load();
    reply.header('content-type', register.contentType);
    return register.metrics();
  });
};
