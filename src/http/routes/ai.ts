/**
 * POST /ai/tasks, GET /ai/tasks, GET /ai/tasks/:id. A task is answered 202 only once its row is
 * committed; prompts and results are shown only to a caller with the API token.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import type { AiEngine } from '../../actors/ai/engine.js';
import { TASK_STATUSES, type Task, type TaskStore } from '../../actors/ai/store.js';
import { QbError } from '../../errors.js';
import { bearerToken, requireToken, tokenMatches } from '../auth.js';
import { tooLargeHandler } from './limits.js';

export interface AiRouteDeps {
  store: TaskStore;
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
    status: Type.Optional(Type.Union(TASK_STATUSES.map((s) => Type.Literal(s)))),
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$' })),
  },
  { additionalProperties: false },
);

/** The API view of a task; contents only for a caller with the token. */
export function taskView(task: Task, withContents: boolean): Record<string, unknown> {
  return {
    id: task.id,
    status: task.status,
    attempts: task.attempts,
    origin: task.origin,
    createdAt: new Date(task.createdAt).toISOString(),
    finishedAt: task.finishedAt === null ? null : new Date(task.finishedAt).toISOString(),
    ...(task.usage ? { usage: task.usage } : {}),
    ...(task.error ? { error: task.error } : {}),
    ...(withContents
      ? {
          prompt: task.prompt,
          ...(task.system !== null ? { system: task.system } : {}),
          ...(task.model !== null ? { model: task.model } : {}),
          ...(task.result !== null ? { result: task.result } : {}),
          ...(task.idempotencyKey !== null ? { idempotencyKey: task.idempotencyKey } : {}),
        }
      : {}),
  };
}

export function hasToken(request: FastifyRequest, apiToken: string): boolean {
  const presented = bearerToken(request.headers.authorization);
  return presented !== undefined && tokenMatches(presented, apiToken);
}

export function aiRoutes(deps: AiRouteDeps): FastifyPluginAsync<{ apiToken: string }> {
  return async (fastify, { apiToken }) => {
    const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
    // The body may carry a prompt of the full size in JSON escapes; the precise check is below.
    const bodyLimit = Math.max(64 * 1024, deps.maxPromptBytes * 6 + 4096);

    app.post(
      '/ai/tasks',
      {
        schema: { body: TaskBody },
        onRequest: requireToken(apiToken),
        bodyLimit,
        errorHandler: tooLargeHandler(`an AI task may carry ${deps.maxPromptBytes} bytes of prompt (AI_MAX_PROMPT_BYTES)`),
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
        const { task, created } = deps.store.submit({ ...body, origin: 'api' });
        if (created) deps.engine.wake();
        return reply.status(202).send({ id: task.id, status: task.status });
      },
    );

    app.get('/ai/tasks', { schema: { querystring: ListQuery } }, async (request) => {
      const limit = Math.min(500, Number(request.query.limit ?? 50));
      const full = hasToken(request, apiToken);
      return { tasks: deps.store.list(limit, request.query.status).map((t) => taskView(t, full)) };
    });

    app.get<{ Params: { id: string } }>('/ai/tasks/:id', async (request) => {
      const task = deps.store.get(request.params.id);
      if (!task) throw new QbError('QB_ERR_NOT_FOUND', `no AI task ${request.params.id}`);
      return taskView(task, hasToken(request, apiToken));
    });
  };
}
