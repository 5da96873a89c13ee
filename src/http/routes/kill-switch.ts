import type { FastifyPluginAsync } from 'fastify';
import { killSwitchView } from '../../store/kill-switch.js';
import type { AppDeps } from '../app.js';
import { requireToken } from '../auth.js';

// Plain JSON Schema, not TypeBox: TypeBox is ~370 modules, too heavy for the way to the first /health.
const KillSwitchBody = {
  type: 'object',
  required: ['activate', 'reason'],
  properties: {
    activate: { type: 'boolean' },
    reason: { type: 'string', minLength: 1, maxLength: 500 },
  },
  additionalProperties: false,
} as const;

interface KillSwitchRequest {
  Body: { activate: boolean; reason: string };
}

export const killSwitchRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.get('/kill-switch', async () => ({
    ...killSwitchView(deps.killSwitch.get()),
    history: deps.killSwitch.history(),
  }));

  app.post<KillSwitchRequest>(
    '/kill-switch',
    { schema: { body: KillSwitchBody }, onRequest: requireToken(deps.apiToken, deps.tokenHint) },
    async (request) => {
      const { activate, reason } = request.body;
      const state = deps.killSwitch.set(activate, reason, deps.identity.peerId);
      request.log.warn({ killSwitch: state }, activate ? 'kill switch ACTIVATED' : 'kill switch deactivated');
      return { ...killSwitchView(state), history: deps.killSwitch.history() };
    },
  );
};
