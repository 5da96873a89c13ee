/**
 * What a peer id may look like: the `Id` of protocol.ts (1-64 of A-Z a-z 0-9 . _ -). Discovery
 * checks a claimed id with it before the id enters the peer table, so an unauthenticated mDNS record
 * cannot put into our status summary a value every receiver would reject.
 */
export const PEER_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isValidPeerId(value: unknown): value is string {
  return typeof value === 'string' && PEER_ID_PATTERN.test(value);
}
