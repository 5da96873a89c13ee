/**
 * A route error handler that names the limit when fastify refuses a body as too large (its own
 * message says only "Request body is too large"); everything else goes to the app's handler.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { QbError } from '../../errors.js';

export function tooLargeHandler(limit: string) {
  return (err: FastifyError, _request: FastifyRequest, _reply: FastifyReply) => {
    if (err.statusCode === 413 && !(err instanceof QbError)) {
      throw new QbError('QB_ERR_PAYLOAD_TOO_LARGE', `request body is too large: ${limit}`);
    }
    throw err;
  };
}
