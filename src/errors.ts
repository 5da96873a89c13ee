/**
 * The one catalogue of error codes. Callers branch on `err.code`, never on a message. The HTTP error
 * handler maps a code to its status; the mesh maps it to its WebSocket close code. A test fails when
 * a code here is missing from docs/errors.md.
 */

export interface ErrorSpec {
  /** HTTP status the API answers with. */
  status: number;
  /** WebSocket close code, for errors that end a mesh link or a /live subscription. */
  closeCode?: number;
  /** What the code means, for docs/errors.md. */
  description: string;
}

export const ERRORS = {
  QB_ERR_CONFIG: {
    status: 500,
    description: 'the environment holds invalid values; the process does not start',
  },
  QB_ERR_VALIDATION: {
    status: 400,
    description: 'a request body or parameter is invalid; the message names the field',
  },
  QB_ERR_UNAUTHORIZED: { status: 401, description: 'missing or wrong `Authorization: Bearer <API_TOKEN>`' },
  QB_ERR_NOT_FOUND: { status: 404, description: 'no such route or resource' },
  QB_ERR_UNKNOWN_SUBSYSTEM: { status: 404, description: 'no subsystem of that name exists in this peer' },
  QB_ERR_SUBSYSTEM_DISABLED: {
    status: 409,
    description: 'the subsystem is disabled by configuration (e.g. BOT_ENABLED=false)',
  },
  QB_ERR_KILL_SWITCH_ACTIVE: {
    status: 423,
    description: 'the kill switch is active; operations are refused until it is deactivated',
  },
  QB_ERR_FAULT_INJECTION_DISABLED: {
    status: 404,
    description: 'fault injection endpoints exist only with FAULT_INJECTION=true',
  },
  QB_ERR_INJECTED_FAULT: { status: 500, description: 'a failure made on purpose through fault injection' },
  QB_ERR_SUBSYSTEM_START_TIMEOUT: { status: 500, description: 'a subsystem did not report ready in time' },
  QB_ERR_WORKER_DIED: {
    status: 500,
    description:
      'the worker process died while the subsystem was starting or running; counted as its failure',
  },
  QB_ERR_DATA_DIR: {
    status: 500,
    description: 'DATA_DIR or LOG_DIR cannot be created or written; the process does not start',
  },
  QB_ERR_DATA_DIR_LOCKED: {
    status: 500,
    description:
      'another live process holds DATA_DIR (the message names its pid); the process does not start',
  },
  QB_ERR_PAYLOAD_TOO_LARGE: {
    status: 413,
    closeCode: 1009,
    description: 'a request or message is too large',
  },
  QB_ERR_RATE_LIMITED: { status: 429, description: 'too many requests' },
  QB_ERR_HOST_NOT_ALLOWED: {
    status: 421,
    description: 'the Host header names no allowed host (HTTP_ALLOWED_HOSTS); a guard against DNS rebinding',
  },
  QB_ERR_ORIGIN_NOT_ALLOWED: {
    status: 403,
    description: 'a browser page of another origin tried to open /live (HTTP_ALLOWED_ORIGINS)',
  },
  QB_ERR_QUEUE_LEASE_LOST: {
    status: 409,
    description:
      'a queue lease expired or was taken over; its holder can no longer complete or fail the item',
  },
  QB_ERR_TRADING_LEASE_LOST: {
    status: 409,
    description:
      'this peer does not hold the account lease (DATABASE_URL): its ledger writes are refused and it places no order',
  },
  QB_ERR_QUEUE_ITEM_STATE: {
    status: 409,
    description:
      'the queue item is in a state that does not allow this (retry needs dead/failed/cancelled, cancel needs queued/failed)',
  },
  QB_ERR_QUEUE_CLOSED: { status: 503, description: 'the queue backend is closed (the peer is stopping)' },
  QB_ERR_STORE_UNAVAILABLE: {
    status: 503,
    description:
      'the queue database (PostgreSQL, DATABASE_URL) is unreachable; nothing was committed (or the commit could not be confirmed): retry later with the same idempotency key. /ready and /status name the outage',
  },
  QB_ERR_STARTING: {
    status: 503,
    description: 'the peer is still starting and cannot hold this request; retry after a second',
  },
  QB_ERR_JOB_STATE: {
    status: 409,
    description:
      'the freelance job is not in a state that allows this decision (approve/reject need awaiting-approval)',
  },
  QB_ERR_INTERNAL: {
    status: 500,
    closeCode: 1011,
    description: 'an unexpected error; details are in the log only',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a stable code from {@link ERRORS}. */
export class QbError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'QbError';
    this.status = ERRORS[code].status;
  }
}

export function isQbError(err: unknown): err is QbError {
  return err instanceof QbError;
}

/** A loggable summary of any thrown value (subsystem `lastError`, /status). */
export function describeError(err: unknown): { code: string; message: string } {
  if (isQbError(err)) return { code: err.code, message: err.message };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { code: typeof code === 'string' ? code : 'QB_ERR_INTERNAL', message: err.message };
  }
  return { code: 'QB_ERR_INTERNAL', message: String(err) };
}
