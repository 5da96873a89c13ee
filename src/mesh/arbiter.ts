/**
 * The link arbiter: when a second link to a peer comes up, which one stays. Pure, so the rule can
 * be checked against every ordering of events on both sides. Both sides must reach the same answer
 * from what both know, or each may close a different link and leave none:
 * - another boot of the peer: the new link replaces the old (the old process is gone);
 * - crossing dials (one link each way): keep the one dialed by the greater peerId;
 * - two links dialed by the same side (one peer at two addresses: hostname and IP, IPv4 and IPv6):
 *   the order in which each side sees them complete differs, so only the acceptor chooses (it keeps
 *   the first) and the dialer holds the extra one as a spare until the acceptor has closed one.
 */
import { CLOSE } from './protocol.js';

export interface LinkFacts {
  peerId: string;
  bootId: string;
  direction: 'in' | 'out';
}

export type Arbitration =
  /** Close the existing link with `code`, keep the incoming one. */
  | { action: 'replace'; code: number; reason: string }
  /** Close the incoming link with `code`, keep the existing one. */
  | { action: 'refuse'; code: number; reason: string }
  /** Keep the existing link and hold the incoming one: the other side closes one of the two. */
  | { action: 'spare' };

export function arbitrate(selfId: string, existing: LinkFacts, incoming: LinkFacts): Arbitration {
  if (existing.bootId !== incoming.bootId) {
    return { action: 'replace', code: CLOSE.REPLACED, reason: 'replaced by a link of a newer boot' };
  }
  const duplicate = { code: CLOSE.DUPLICATE, reason: 'a link to this peer exists' };
  if (existing.direction !== incoming.direction) {
    const dialer = (l: LinkFacts) => (l.direction === 'out' ? selfId : l.peerId);
    return dialer(incoming) > dialer(existing)
      ? { action: 'replace', ...duplicate }
      : { action: 'refuse', ...duplicate };
  }
  return incoming.direction === 'in' ? { action: 'refuse', ...duplicate } : { action: 'spare' };
}
