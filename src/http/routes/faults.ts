import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { QbError } from '../../errors.js';
import type { AppDeps } from '../app.js';
import { requireToken } from '../auth.js';

/**
 * Fault injection for tests and chaos runs. Without FAULT_INJECTION=true the routes answer 404, so
 * a production peer cannot be crashed through its API even with the token.
 */
export const faultRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (fastify, { deps }) => {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const enabled = async () => {
    if (!deps.config.faultInjection || !deps.crashWorker) {
      throw new QbError(
        'QB_ERR_FAULT_INJECTION_DISABLED',
        'fault injection is off (FAULT_INJECTION=true enables it)',
      );
    }
  };
  const guard = [enabled, requireToken(deps.apiToken)];

  app.post(
    '/faults/subsystems/:name/throw',
    { schema: { params: Type.Object({ name: Type.String() }) }, onRequest: guard },
    async (request, reply) => {
      const { name } = request.params;
      if (!deps.actors.isEnabled(name))
        throw new QbError('QB_ERR_UNKNOWN_SUBSYSTEM', `no running subsystem "${name}"`);
      request.log.warn({ subsystem: name }, 'injecting a fault');
      deps.actors.injectFault(name);
      return reply.status(202).send({ injected: name });
    },
  );

  app.post('/faults/worker/crash', { onRequest: guard }, async (request, reply) => {
    request.log.warn('crashing the worker process on request');
    await reply.status(202).send({ crashing: true });
    deps.crashWorker?.();
  });
};
