/**
 * One trader per account, without a shared database: every trading peer announces the account it
 * wants to trade (a fingerprint: a hash of the exchange and API key, or of the paper account's name)
 * and since when it has wanted it, in its mesh status. Among the peers linked right now, the one
 * that has wanted it longest trades it (ties: the smaller peer id); the others stand down, say so,
 * and take over only when the holder is no longer linked.
 *
 * Limits (README): this is advisory. Two peers that cannot see each other (a partition, or a peer
 * not in the mesh) both trade; a status takes up to one sync interval to arrive, so both may trade
 * for that long after a start. With DATABASE_URL the right to trade is a lease in PostgreSQL instead.
 */
import { createHash } from 'node:crypto';

export interface AccountClaim {
  peerId: string;
  /** Fingerprint of the account. */
  account: string;
  /** ms since the epoch when this peer's trading started wanting the account. */
  since: number;
}

export interface GuardVerdict {
  mayTrade: boolean;
  /** The peer that trades the account, when it is not this one. */
  holder: AccountClaim | null;
  /** Every linked peer that claims the same account. */
  contenders: AccountClaim[];
  /** The lease's fencing token while it is held (PostgreSQL lease only): a new one means reload the ledger. */
  token?: number;
  /** Why this peer may not trade, when the guard says more than "another peer holds it". */
  reason?: string;
}

/** The account's fingerprint: never the key itself (it travels in the mesh status). */
export function accountFingerprint(
  mode: 'paper' | 'live',
  exchange: string,
  keyOrName: string | undefined,
): string {
  const digest = createHash('sha256')
    .update(`${mode}\0${exchange}\0${keyOrName ?? ''}`)
    .digest('hex');
  return `${mode}:${exchange}:${digest.slice(0, 16)}`;
}

/** Who trades `self.account` among `self` and the claims of peers linked now. */
export function judgeClaims(self: AccountClaim, linked: readonly AccountClaim[]): GuardVerdict {
  const contenders = linked.filter((c) => c.account === self.account && c.peerId !== self.peerId);
  let holder = self;
  for (const c of contenders) {
    if (c.since < holder.since || (c.since === holder.since && c.peerId < holder.peerId)) holder = c;
  }
  return { mayTrade: holder === self, holder: holder === self ? null : holder, contenders };
}
