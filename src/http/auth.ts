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

/**
 * Where this peer's token can be read, never the token itself: the file it was generated into, or
 * API_TOKEN (in the file a launcher says it wrote it to, when one did). 401 answers and the
 * dashboard's token dialog show it, so an operator is told where to look, not only what is wrong.
 */
export function tokenHint(generatedFile: string | undefined, launcherHint: string | undefined): string {
  if (generatedFile) return `in the file ${generatedFile} (generated at first start)`;
  return launcherHint ?? "API_TOKEN in the peer's environment";
}

/**
 * A fastify onRequest hook that refuses the request with 401 unless it carries the API token; the
 * answer says where the token is (`hint`, from {@link tokenHint}).
 */
export function requireToken(apiToken: string, hint: string) {
  return async (request: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !tokenMatches(presented, apiToken)) {
      request.log.warn(
        { route: request.routeOptions.url, ip: request.ip },
        'refused: missing or wrong API token',
      );
      throw new QbError(
        'QB_ERR_UNAUTHORIZED',
        `missing or wrong bearer token (Authorization: Bearer <token>); this peer's token is ${hint}`,
      );
    }
  };
}
