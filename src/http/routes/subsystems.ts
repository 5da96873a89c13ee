import type { FastifyPluginAsync } from 'fastify';
import { QbError } from '../../errors.js';
import type { AppDeps } from '../app.js';
import { requireToken } from '../auth.js';

// Plain JSON Schema, not TypeBox: TypeBox is ~370 modules, too heavy for the way to the first /health.
const ACTIONS = ['start', 'stop', 'restart'] as const;
const Params = {
  type: 'object',
  required: ['name', 'action'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' },
    action: { enum: ACTIONS },
  },
} as const;

interface SubsystemRequest {
  Params: { name: string; action: (typeof ACTIONS)[number] };
}

/** Operator control of one subsystem. The answer is the subsystem's status after the command. */
export const subsystemRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  app.post<SubsystemRequest>(
    '/subsystems/:name/:action',
    { schema: { params: Params }, onRequest: requireToken(deps.apiToken, deps.tokenHint) },
    async (request, reply) => {
      const { name, action } = request.params;
      if (!deps.actors.has(name))
        throw new QbError('QB_ERR_UNKNOWN_SUBSYSTEM', `no subsystem named "${name}"`);
      if (!deps.actors.isEnabled(name)) {
        throw new QbError('QB_ERR_SUBSYSTEM_DISABLED', `subsystem "${name}" is disabled by configuration`);
      }
      deps.actors.command(name, action);
      request.log.info({ subsystem: name, action }, 'operator command');
      const status = deps.actors.status().find((s) => s.name === name);
      return reply.status(202).send(status);
    },
  );
};
