/** The queue's coded errors, shared by both backends. */
import { QbError } from '../errors.js';
import type { Lease } from './types.js';

export function leaseLost(lease: Lease): QbError {
  return new QbError(
    'QB_ERR_QUEUE_LEASE_LOST',
    `lease ${lease.token} of ${lease.owner} on item ${lease.id} expired or was taken over`,
  );
}

export function closedError(): QbError {
  return new QbError('QB_ERR_QUEUE_CLOSED', 'the queue is closed');
}

export function notFound(id: string): QbError {
  return new QbError('QB_ERR_NOT_FOUND', `no queue item ${id}`);
}

export function wrongState(id: string, state: string, action: string, allowed: string): QbError {
  return new QbError(
    'QB_ERR_QUEUE_ITEM_STATE',
    `cannot ${action} item ${id}: it is ${state}, not ${allowed}`,
  );
}
