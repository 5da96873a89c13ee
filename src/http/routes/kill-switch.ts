import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AppDeps } from '../app.js';
import { requireToken } from '../auth.js';

const KillSwitchBody = Type.Object(
  {
    activate: Type.Boolean(),
    reason: Type.String({ minLength: 1, maxLength: 500 }),
  },
  { additionalProperties: false },
);

export const killSwitchRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (fastify, { deps }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();

  app.get('/kill-switch', async () => ({ ...deps.killSwitch.get(), history: deps.killSwitch.history() }));

  app.post(
    '/kill-switch',
    { schema: { body: KillSwitchBody }, onRequest: requireToken(deps.apiToken, deps.tokenHint) },
    async (request) => {
      const { activate, reason } = request.body;
      const state = deps.killSwitch.set(activate, reason, deps.identity.peerId);
      request.log.warn({ killSwitch: state }, activate ? 'kill switch ACTIVATED' : 'kill switch deactivated');
      return { ...state, history: deps.killSwitch.history() };
    },
  );
};
