import type { FastifyPluginAsync } from 'fastify';
import type { AppDeps } from '../app.js';

/**
 * GET /token-hint: where this peer's API token can be read (a file path or an environment
 * variable), never the token. Unauthenticated on purpose: it is what a dashboard shows before it
 * has a token, and the same text every 401 answer carries.
 */
export const tokenHintRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get('/token-hint', async () => ({
    header: 'Authorization: Bearer <token>',
    tokenHint: deps.tokenHint,
  }));
};
