/**
 * The one row shape both backends store, and its mapping to QueueItem. Column names are the same in
 * SQLite and PostgreSQL; times are integer ms since the epoch by the queue's clock.
 */
import type { ClaimedItem, QueueDepths, QueueItem, QueueItemState } from './types.js';
import { QUEUE_ITEM_STATES } from './types.js';

export interface ItemRow {
  id: number | string | bigint;
  queue: string;
  state: QueueItemState;
  payload: string;
  result: string | null;
  last_error: string | null;
  idempotency_key: string | null;
  attempts: number;
  max_attempts: number;
  run_at: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  lease_owner: string | null;
  lease_token: number;
  lease_expires_at: number | null;
  heartbeat_at: number | null;
}

/** JSON text for the payload/result columns; `undefined` is stored as null. */
export function toJson(value: unknown): string | null {
  return value === undefined ? null : JSON.stringify(value);
}

export function toItem<P = unknown, R = unknown>(row: ItemRow): QueueItem<P, R> {
  return {
    id: String(row.id),
    queue: row.queue,
    state: row.state,
    payload: JSON.parse(row.payload) as P,
    result: row.result === null ? null : (JSON.parse(row.result) as R),
    lastError: row.last_error,
    idempotencyKey: row.idempotency_key,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    runAt: Number(row.run_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    finishedAt: row.finished_at === null ? null : Number(row.finished_at),
    lease:
      row.lease_owner === null
        ? null
        : {
            owner: row.lease_owner,
            token: Number(row.lease_token),
            expiresAt: Number(row.lease_expires_at),
            heartbeatAt: Number(row.heartbeat_at),
          },
  };
}

export function toClaimed<P>(row: ItemRow): ClaimedItem<P> {
  const item = toItem<P>(row) as ClaimedItem<P>;
  item.claim = {
    id: item.id,
    queue: item.queue,
    owner: row.lease_owner as string,
    token: Number(row.lease_token),
    expiresAt: Number(row.lease_expires_at),
  };
  return item;
}

/** Oldest runAt first, then creation order: the order claims hand items out in. */
export function byRunOrder(a: ItemRow, b: ItemRow): number {
  return Number(a.run_at) - Number(b.run_at) || Number(a.id) - Number(b.id);
}

export function emptyDepths(): QueueDepths {
  return Object.fromEntries(QUEUE_ITEM_STATES.map((s) => [s, 0])) as QueueDepths;
}

/** Folds `(queue, state, n)` rows into depths per queue, with zeros for `names`. */
export function foldDepths(
  rows: Array<{ queue: string; state: QueueItemState; n: number | string }>,
  names: string[],
): Record<string, QueueDepths> {
  const out: Record<string, QueueDepths> = {};
  for (const name of names) out[name] = emptyDepths();
  for (const row of rows) {
    out[row.queue] ??= emptyDepths();
    (out[row.queue] as QueueDepths)[row.state] = Number(row.n);
  }
  return out;
}

export const LIST_DEFAULT_LIMIT = 50;
export const LIST_MAX_LIMIT = 500;

export function listLimit(limit: number | undefined): number {
  return Math.min(LIST_MAX_LIMIT, Math.max(1, Math.floor(limit ?? LIST_DEFAULT_LIMIT)));
}
