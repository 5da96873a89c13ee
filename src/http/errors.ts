/**
 * Maps every error to `{error: {code, message}}` with the catalogue's status. A 5xx never shows its
 * internals: the client gets a generic message, the log gets the whole error.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { type ErrorCode, isQbError } from '../errors.js';

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** 5xx codes that describe an outage, not a bug: their fixed message is shown, and not logged as an error. */
const OUTAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['QB_ERR_STORE_UNAVAILABLE']);

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (isQbError(err)) {
      if (OUTAGE_CODES.has(err.code)) {
        // The outage itself is logged once by the store and shown by /ready and /status; one line
        // per refused request would flood the log while it lasts. Its message holds no internals.
        request.log.debug({ code: err.code }, 'request refused: store unavailable');
        return reply.status(err.status).send(errorBody(err.code, err.message));
      }
      if (err.status >= 500) request.log.error({ err }, 'request failed');
      const message = err.status >= 500 ? 'internal error' : err.message;
      return reply.status(err.status).send(errorBody(err.code, message));
    }
    if (err.validation) {
      return reply.status(400).send(errorBody('QB_ERR_VALIDATION', validationMessage(err)));
    }
    const status = err.statusCode ?? 500;
    if (status === 413) return reply.status(413).send(errorBody('QB_ERR_PAYLOAD_TOO_LARGE', err.message));
    if (status === 429) return reply.status(429).send(errorBody('QB_ERR_RATE_LIMITED', err.message));
    if (status >= 400 && status < 500) {
      // Malformed JSON, wrong content type and the like: the client's mistake, safe to explain.
      return reply.status(status).send(errorBody('QB_ERR_VALIDATION', err.message));
    }
    request.log.error({ err }, 'request failed');
    return reply.status(500).send(errorBody('QB_ERR_INTERNAL', 'internal error'));
  });

  app.setNotFoundHandler((request, reply) => {
    reply
      .status(404)
      .send(errorBody('QB_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`));
  });
}

/**
 * Ajv's message, which names every bad field except an unexpected one ("body must NOT have
 * additional properties"): the name of that one is appended, so every 400 names its field, and an
 * enum's allowed values are listed.
 */
function validationMessage(err: FastifyError): string {
  const details: string[] = [];
  for (const v of err.validation ?? []) {
    const params = v.params as { additionalProperty?: unknown; allowedValues?: unknown[] };
    if (v.keyword === 'additionalProperties')
      details.push(`unexpected '${String(params.additionalProperty)}'`);
    if (v.keyword === 'enum' && Array.isArray(params.allowedValues)) {
      details.push(`allowed: ${params.allowedValues.join(', ')}`);
    }
  }
  return details.length > 0 ? `${err.message} (${details.join('; ')})` : err.message;
}
