/**
 * Bearer-token check for every mutating endpoint. Both sides are hashed first so the comparison is
 * constant-time whatever the lengths (timingSafeEqual needs equal-length buffers).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { QbError } from '../errors.js';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function tokenMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** Extracts the token of an `Authorization: Bearer <token>` header. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** Does the request carry the API token? For reads that show more to a caller who has it. */
export function hasToken(request: FastifyRequest, apiToken: string): boolean {
  const presented = bearerToken(request.headers.authorization);
  return presented !== undefined && tokenMatches(presented, apiToken);
}

/** A fastify preHandler that refuses the request with 401 unless it carries the API token. */
export function requireToken(apiToken: string) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !tokenMatches(presented, apiToken)) {
      request.log.warn(
        { route: request.routeOptions.url, ip: request.ip },
        'refused: missing or wrong API token',
      );
      throw new QbError(
        'QB_ERR_UNAUTHORIZED',
        'missing or wrong bearer token (Authorization: Bearer <API_TOKEN>)',
      );
    }
  };
}
