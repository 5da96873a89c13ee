/**
 * The account lease's statements (see lease.ts for the protocol). Each is one atomic statement that
 * also writes its row of `trading_lease_log` in a CTE; every time in them is the database's.
 */
import type pg from 'pg';

/** Who may write the ledger: the token of the lease and its holder. */
export interface Fence {
  token: number;
  peerId: string;
  bootId: string;
}

export type Exec = Pick<pg.ClientBase, 'query'>;

export type AcquireResult =
  | { acquired: true; token: number }
  | {
      acquired: false;
      /** The current holder, by the database's view. */
      holder: { peerId: string; bootId: string; token: number; since: number };
      /** ms until the holder's row expires, by the database's clock. */
      remainingMs: number;
    };

/** Takes the lease if it is free, expired or already ours; the token always grows. */
export async function acquireLease(
  db: Exec,
  account: string,
  holder: { peerId: string; bootId: string },
  leaseMs: number,
): Promise<AcquireResult> {
  const { rows } = await db.query<{ token: number }>(
    `WITH got AS (
       INSERT INTO trading_lease AS l (account, holder_peer, holder_boot, token, acquired_at, renewed_at, expires_at)
       VALUES ($1, $2, $3, 1, now(), now(), now() + $4::bigint * interval '1 millisecond')
       ON CONFLICT (account) DO UPDATE
         SET holder_peer = EXCLUDED.holder_peer, holder_boot = EXCLUDED.holder_boot, token = l.token + 1,
             acquired_at = now(), renewed_at = now(), expires_at = EXCLUDED.expires_at
         WHERE l.expires_at <= now()
            OR (l.holder_peer = EXCLUDED.holder_peer AND l.holder_boot = EXCLUDED.holder_boot)
       RETURNING token, expires_at
     ), logged AS (
       INSERT INTO trading_lease_log (account, event, holder_peer, holder_boot, token, expires_at)
       SELECT $1, 'acquired', $2, $3, token, expires_at FROM got
     )
     SELECT token FROM got`,
    [account, holder.peerId, holder.bootId, leaseMs],
  );
  if (rows[0]) return { acquired: true, token: Number(rows[0].token) };
  const current = await db.query<{
    holder_peer: string;
    holder_boot: string;
    token: number;
    since: number;
    remaining_ms: number;
  }>(
    `SELECT holder_peer, holder_boot, token, (extract(epoch FROM acquired_at) * 1000)::bigint AS since,
       greatest(0, ceil(extract(epoch FROM (expires_at - now())) * 1000))::bigint AS remaining_ms
     FROM trading_lease WHERE account = $1`,
    [account],
  );
  const row = current.rows[0];
  // Released or expired between the two statements: try again at once.
  if (!row) return acquireLease(db, account, holder, leaseMs);
  return {
    acquired: false,
    holder: {
      peerId: row.holder_peer,
      bootId: row.holder_boot,
      token: Number(row.token),
      since: Number(row.since),
    },
    remainingMs: Number(row.remaining_ms),
  };
}

/** Extends our lease from the database's now; false when the row expired or another holder has it. */
export async function renewLease(db: Exec, account: string, fence: Fence, leaseMs: number): Promise<boolean> {
  const { rows } = await db.query(
    `WITH r AS (
       UPDATE trading_lease SET renewed_at = now(), expires_at = now() + $5::bigint * interval '1 millisecond'
       WHERE account = $1 AND holder_peer = $2 AND holder_boot = $3 AND token = $4 AND expires_at > now()
       RETURNING token, expires_at
     ), logged AS (
       INSERT INTO trading_lease_log (account, event, holder_peer, holder_boot, token, expires_at)
       SELECT $1, 'renewed', $2, $3, token, expires_at FROM r
     )
     SELECT token FROM r`,
    [account, fence.peerId, fence.bootId, fence.token, leaseMs],
  );
  return rows.length > 0;
}

/** Gives the lease up (it expires now), so a peer waiting for it need not wait for the expiry. */
export async function releaseLease(db: Exec, account: string, fence: Fence): Promise<boolean> {
  const { rows } = await db.query(
    `WITH r AS (
       UPDATE trading_lease SET expires_at = now()
       WHERE account = $1 AND holder_peer = $2 AND holder_boot = $3 AND token = $4 AND expires_at > now()
       RETURNING token
     ), logged AS (
       INSERT INTO trading_lease_log (account, event, holder_peer, holder_boot, token, expires_at)
       SELECT $1, 'released', $2, $3, token, now() FROM r
     )
     SELECT token FROM r`,
    [account, fence.peerId, fence.bootId, fence.token],
  );
  return rows.length > 0;
}

/** Records that a holder noticed it lost the lease (best effort: the database may be unreachable). */
export async function logLeaseLost(db: Exec, account: string, fence: Fence, detail: string): Promise<void> {
  await db.query(
    `INSERT INTO trading_lease_log (account, event, holder_peer, holder_boot, token, detail)
     VALUES ($1, 'lost', $2, $3, $4, $5)`,
    [account, fence.peerId, fence.bootId, fence.token, detail.slice(0, 500)],
  );
}
