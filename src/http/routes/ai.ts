/**
 * POST /ai/tasks, GET /ai/tasks, GET /ai/tasks/:id. A task is answered 202 only once its row is
 * committed; prompts and results are shown only to a caller with the API token.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import type { AiEngine } from '../../actors/ai/engine.js';
import { AI_QUEUE, type AiTask, type TaskPayload, type TaskResult, taskView } from '../../actors/ai/tasks.js';
import { QbError } from '../../errors.js';
import type { RouteOptions } from '../../features/feature.js';
import { QUEUE_ITEM_STATES, type Queue } from '../../queue/types.js';
import { hasToken, requireToken } from '../auth.js';
import { tooLargeHandler } from './limits.js';

export interface AiRouteDeps {
  queue: Queue;
  engine: AiEngine;
  /** AI_MAX_PROMPT_BYTES. */
  maxPromptBytes: number;
}

const TaskBody = Type.Object(
  {
    prompt: Type.String({ minLength: 1 }),
    system: Type.Optional(Type.String({ minLength: 1 })),
    model: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    maxTokens: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
    idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  },
  { additionalProperties: false },
);

const ListQuery = Type.Object(
  {
    status: Type.Optional(Type.Union(QUEUE_ITEM_STATES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,3}$' })),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,20}$' })),
  },
  { additionalProperties: false },
);

export function aiRoutes(deps: AiRouteDeps): FastifyPluginAsync<RouteOptions> {
  return async (fastify, { apiToken, tokenHint }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // The body may carry a prompt of the full size in JSON escapes; the precise check is below.
    const bodyLimit = Math.max(64 * 1024, deps.maxPromptBytes * 6 + 4096);

    app.post(
      '/ai/tasks',
      {
        schema: { body: TaskBody },
        onRequest: requireToken(apiToken, tokenHint),
        bodyLimit,
        errorHandler: tooLargeHandler(
          `an AI task may carry ${deps.maxPromptBytes} bytes of prompt (AI_MAX_PROMPT_BYTES)`,
        ),
      },
      async (request, reply) => {
        const body = request.body;
        const bytes = Buffer.byteLength(body.prompt) + Buffer.byteLength(body.system ?? '');
        if (bytes > deps.maxPromptBytes) {
          throw new QbError(
            'QB_ERR_PAYLOAD_TOO_LARGE',
            `prompt is ${bytes} bytes; the limit is ${deps.maxPromptBytes} bytes (AI_MAX_PROMPT_BYTES)`,
          );
        }
        const { idempotencyKey, ...fields } = body;
        const payload: TaskPayload = { ...fields, origin: 'api' };
        // Resolves after the commit: a 202 is a promise that the task survives kill -9.
        const { item, created } = await deps.queue.enqueue(
          AI_QUEUE,
          payload,
          idempotencyKey ? { idempotencyKey } : {},
        );
        if (created) deps.engine.wake();
        return reply.status(202).send({ id: item.id, status: item.state });
      },
    );

    app.get('/ai/tasks', { schema: { querystring: ListQuery } }, async (request) => {
      const { status, limit, before } = request.query;
      const page = await deps.queue.list<TaskPayload>({
        queue: AI_QUEUE,
        ...(status ? { state: status } : {}),
        limit: Math.min(500, Number(limit ?? 50)),
        ...(before ? { before } : {}),
      });
      const full = hasToken(request, apiToken);
      return { tasks: page.items.map((t) => taskView(t as AiTask, full)), nextCursor: page.nextCursor };
    });

    app.get<{ Params: { id: string } }>('/ai/tasks/:id', async (request) => {
      const task = await deps.queue.get<TaskPayload, TaskResult>(request.params.id);
      if (!task || task.queue !== AI_QUEUE)
        throw new QbError('QB_ERR_NOT_FOUND', `no AI task ${request.params.id}`);
      return taskView(task as AiTask, hasToken(request, apiToken));
    });
  };
}
