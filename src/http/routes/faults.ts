import type { FastifyPluginAsync } from 'fastify';
import { QbError } from '../../errors.js';
import type { AppDeps } from '../app.js';
import { requireToken } from '../auth.js';

/**
 * Fault injection for tests and chaos runs. Without FAULT_INJECTION=true the routes answer 404, so
 * a production peer cannot be crashed through its API even with the token. Schemas are plain JSON
 * Schema, not TypeBox: TypeBox is ~370 modules, too heavy for the way to the first /health.
 */
export const faultRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (app, { deps }) => {
  const enabled = async () => {
    if (!deps.config.faultInjection || !deps.crashWorker) {
      throw new QbError(
        'QB_ERR_FAULT_INJECTION_DISABLED',
        'fault injection is off (FAULT_INJECTION=true enables it)',
      );
    }
  };
  const guard = [enabled, requireToken(deps.apiToken, deps.tokenHint)];

  app.post<{ Params: { name: string } }>(
    '/faults/subsystems/:name/throw',
    {
      schema: { params: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
      onRequest: guard,
    },
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
  app.post<{ Body: { ms: number } }>(
    '/faults/event-loop/block',
    {
      schema: {
        body: {
          type: 'object',
          required: ['ms'],
          properties: { ms: { type: 'integer', minimum: 1, maximum: 10_000 } },
          additionalProperties: false,
        },
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
