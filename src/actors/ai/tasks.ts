/**
 * AI tasks as items of the durable queue (`ai`): the payload is the request, the result the
 * answer and its token usage. The queue owns leases, attempts, backoff and dead-lettering; this
 * module only names the shapes and maps an item to the API's task view.
 */
import type { QueueItem, QueueItemState } from '../../queue/types.js';

export const AI_QUEUE = 'ai';

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

export interface TaskPayload {
  prompt: string;
  system?: string;
  model?: string;
  maxTokens?: number;
  /** Who asked: `api`, or `freelance:<jobId>`. */
  origin: string;
}

export interface TaskResult {
  text: string;
  usage: Usage | null;
  model: string;
}

export type AiTask = QueueItem<TaskPayload, TaskResult>;

export type TaskStatus = QueueItemState;

/** The API view of a task (GET /ai/tasks/:id); prompt and answer only for a caller with the token. */
export function taskView(task: AiTask, withContents: boolean): Record<string, unknown> {
  return {
    id: task.id,
    status: task.state,
    attempts: task.attempts,
    origin: task.payload.origin,
    createdAt: new Date(task.createdAt).toISOString(),
    finishedAt: task.finishedAt === null ? null : new Date(task.finishedAt).toISOString(),
    ...(task.result?.usage ? { usage: task.result.usage } : {}),
    ...(task.lastError ? { error: task.lastError } : {}),
    ...(withContents
      ? {
          prompt: task.payload.prompt,
          ...(task.payload.system !== undefined ? { system: task.payload.system } : {}),
          ...(task.payload.model !== undefined ? { model: task.payload.model } : {}),
          ...(task.result ? { result: task.result.text, model: task.result.model } : {}),
          ...(task.idempotencyKey !== null ? { idempotencyKey: task.idempotencyKey } : {}),
        }
      : {}),
  };
}
