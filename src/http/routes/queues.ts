/**
 * Generic operator routes over the durable queue (any subsystem's items): depths, listing by state
 * with a cursor, one item, retry of a dead/failed/cancelled item, cancel of a queued one, pause and
 * resume. Item contents (payloads, results) and every change need the bearer token; the depths are
 * part of the fleet summary and do not.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { QbError } from '../../errors.js';
import {
  QUEUE_ITEM_STATES,
  type Queue,
  type QueueDepths,
  type QueueItem,
  type StoreConnection,
} from '../../queue/types.js';
import type { AppDeps } from '../app.js';
import { requireToken } from '../auth.js';

const QueueName = Type.String({ pattern: '^[a-z][a-z0-9._-]{0,63}$' });
const ItemId = Type.String({ pattern: '^[0-9]{1,19}$' });

const ListQuery = Type.Object(
  {
    state: Type.Optional(Type.Enum([...QUEUE_ITEM_STATES])),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
    before: Type.Optional(ItemId),
  },
  { additionalProperties: false },
);

/** The store's connection as /status shows it (ISO time). */
export function storeView(c: StoreConnection): Omit<StoreConnection, 'since'> & { since: string } {
  return { ...c, since: new Date(c.since).toISOString() };
}

/** Why /ready must say no because of the store, or null. */
export function storeUnready(c: StoreConnection): string | null {
  if (c.state === 'connected') return null;
  return `database unreachable: the queue's ${c.kind === 'postgres' ? 'PostgreSQL' : c.kind} store is ${c.state} since ${new Date(c.since).toISOString()}${c.lastError ? ` (${c.lastError})` : ''}`;
}

/** Depths and paused flag of every queue the store knows. */
export async function queueOverview(
  queue: Queue,
): Promise<Record<string, QueueDepths & { paused: boolean }>> {
  const depths = await queue.depths();
  const out: Record<string, QueueDepths & { paused: boolean }> = {};
  for (const [name, d] of Object.entries(depths)) out[name] = { ...d, paused: await queue.isPaused(name) };
  return out;
}

export const queueRoutes: FastifyPluginAsync<{ deps: AppDeps }> = async (fastify, { deps }) => {
  const queue = deps.queue;
  if (!queue) return;
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const auth = requireToken(deps.apiToken, deps.tokenHint);

  /** The item, which must belong to the queue named in the path (404 otherwise). */
  async function itemOf(name: string, id: string): Promise<QueueItem> {
    const item = await queue?.get(id);
    if (!item || item.queue !== name) throw new QbError('QB_ERR_NOT_FOUND', `no item ${id} in queue ${name}`);
    return item;
  }

  app.get('/queues', async () => ({ backend: queue.backend, queues: await queueOverview(queue) }));

  app.get(
    '/queues/:queue/items',
    { schema: { params: Type.Object({ queue: QueueName }), querystring: ListQuery }, onRequest: auth },
    async (request) => {
      const { state, limit, before } = request.query;
      return queue.list({
        queue: request.params.queue,
        ...(state ? { state } : {}),
        ...(limit ? { limit: Number(limit) } : {}),
        ...(before ? { before } : {}),
      });
    },
  );

  app.get(
    '/queues/:queue/items/:id',
    { schema: { params: Type.Object({ queue: QueueName, id: ItemId }) }, onRequest: auth },
    async (request) => itemOf(request.params.queue, request.params.id),
  );

  app.post(
    '/queues/:queue/items/:id/:action',
    {
      schema: {
        params: Type.Object({ queue: QueueName, id: ItemId, action: Type.Enum(['retry', 'cancel']) }),
      },
      onRequest: auth,
    },
    async (request) => {
      const { queue: name, id, action } = request.params;
      await itemOf(name, id);
      const item = action === 'retry' ? await queue.retry(id) : await queue.cancel(id);
      request.log.info({ queue: name, id, action }, 'operator queue command');
      return item;
    },
  );

  app.post(
    '/queues/:queue/:action',
    {
      schema: { params: Type.Object({ queue: QueueName, action: Type.Enum(['pause', 'resume']) }) },
      onRequest: auth,
    },
    async (request) => {
      const { queue: name, action } = request.params;
      if (action === 'pause') await queue.pause(name);
      else await queue.resume(name);
      request.log.info({ queue: name, action }, 'operator queue command');
      return { queue: name, paused: await queue.isPaused(name) };
    },
  );
};
