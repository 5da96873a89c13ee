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
  const guard = [enabled, requireToken(deps.apiToken, deps.tokenHint)];

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

  // A busy process (a long synchronous computation, a GC pause) must not look dead to the mesh.
  app.post(
    '/faults/event-loop/block',
    {
      schema: {
        body: Type.Object(
          { ms: Type.Integer({ minimum: 1, maximum: 10_000 }) },
          { additionalProperties: false },
        ),
      },
      onRequest: guard,
    },
    async (request) => {
      const { ms } = request.body;
      request.log.warn({ ms }, 'blocking the event loop on request');
      const until = Date.now() + ms;
      while (Date.now() < until) {
        // Busy on purpose: nothing else in this process runs meanwhile.
      }
      return { blockedMs: ms };
    },
  );

  app.post('/faults/worker/crash', { onRequest: guard }, async (request, reply) => {
    request.log.warn('crashing the worker process on request');
    await reply.status(202).send({ crashing: true });
    deps.crashWorker?.();
  });
};
