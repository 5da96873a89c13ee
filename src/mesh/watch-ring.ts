/**
 * Who watches whom, so the idle cost of failure detection does not grow with the fleet (issue 11,
 * item 18). Every peer puts itself and the peers it is linked with on a ring sorted by peer id and
 * watches the next WATCHERS_PER_PEER of them: it makes sure it hears each of those at least once
 * per heartbeat interval (pinging it when nothing else came). In a full mesh every peer computes
 * the same ring, so each peer is watched by the WATCHERS_PER_PEER before it, and a peer sends and
 * answers about 2 x WATCHERS_PER_PEER heartbeat frames per interval whatever N is; before, it was
 * N - 1. The other links carry no heartbeats: a crash closes their TCP connection (seen at once),
 * a silent peer is reported by its watchers (`suspect` messages, see node.ts), and TCP keepalive
 * ends a connection that died without a word.
 *
 * Pure: ids in, sets out, so a unit test covers any fleet.
 */

/** Watchers per peer: two, so a peer stays watched while one of its watchers is down itself. */
export const WATCHERS_PER_PEER = 2;

export interface Watch {
  /** The peers this one watches: the next `k` on the ring. */
  targets: Set<string>;
  /** The peers that watch this one, as far as this peer can tell: the `k` before it. */
  watchers: Set<string>;
}

/** The ring of `self` and `linked` (peer ids), and `self`'s neighbours on it. */
export function watchRing(self: string, linked: Iterable<string>, k = WATCHERS_PER_PEER): Watch {
  const ring = [...new Set([self, ...linked])].sort();
  const at = ring.indexOf(self);
  const n = ring.length;
  const reach = Math.min(k, n - 1);
  const targets = new Set<string>();
  const watchers = new Set<string>();
  for (let i = 1; i <= reach; i++) {
    targets.add(ring[(at + i) % n] as string);
    watchers.add(ring[(at - i + n) % n] as string);
  }
  return { targets, watchers };
}
