/**
 * What the peers recorded, read after they stopped (so nothing moves under the reads): each peer's
 * SQLite file (orders, kill-switch history, freelance jobs, its queue when there is no PostgreSQL)
 * and the fleet's PostgreSQL queue (and a trading lease log, where the product has one). Read-only.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

const DB_FILE = 'quantum-bot.sqlite';

function tableExists(db, name) {
  return !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name);
}

/** One peer's records: { orders, killSwitch, jobs, queueItems }. */
export function readPeerLedger(dataDir) {
  const file = join(dataDir, DB_FILE);
  if (!existsSync(file)) return { orders: [], killSwitch: [], jobs: [], queueItems: [] };
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const all = (table, sql) => (tableExists(db, table) ? db.prepare(sql).all() : []);
    return {
      orders: all(
        'trading_order',
        'SELECT id, client_order_id AS clientOrderId, account, symbol, side, status, filled, created_at AS at FROM trading_order ORDER BY created_at',
      ),
      killSwitch: all(
        'kill_switch_history',
        'SELECT seq, active, reason, at, origin, epoch FROM kill_switch_history ORDER BY seq',
      ).map((r) => ({ ...r, active: !!r.active, atMs: Date.parse(r.at) })),
      jobs: all(
        'freelance_jobs',
        'SELECT id, dedup_key AS dedupKey, source, status, reason, delivery_id AS deliveryId FROM freelance_jobs',
      ),
      queueItems: all(
        'queue_items',
        'SELECT id, queue, state, idempotency_key AS key, attempts, last_error AS lastError FROM queue_items',
      ),
    };
  } finally {
    db.close();
  }
}

/**
 * The fleet's queue items in PostgreSQL and, where the schema has them (the PostgreSQL ledger with
 * an account lease, shared freelance jobs), the fleet's orders with their holder and fencing token,
 * the lease log and the jobs.
 */
export async function readPostgres(url) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const items = await client.query(
      'SELECT id::text AS id, queue, state, idempotency_key AS key, attempts, last_error AS "lastError" FROM queue_items',
    );
    const tables = await client.query(
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name IN ('trading_order', 'trading_lease_log', 'freelance_jobs')",
    );
    const has = (table, column) =>
      tables.rows.some((r) => r.table_name === table && r.column_name === column);
    // The fleet's ledger and lease log (branch tradepg: orders carry their holder and fencing token).
    let orders = null;
    if (has('trading_order', 'holder') && has('trading_order', 'lease_token')) {
      orders = (
        await client.query(
          `SELECT id, client_order_id AS "clientOrderId", account, status, holder, lease_token::text AS token,
                  created_at::text AS at, (extract(epoch FROM written_at) * 1000)::bigint::text AS "writtenAt"
             FROM trading_order ORDER BY written_at`,
        )
      ).rows.map((r) => ({
        ...r,
        // The holder is written as `peerId/bootId`: the peer is what the invariants compare.
        holder: String(r.holder).split('/')[0],
        holderBoot: String(r.holder).split('/')[1] ?? null,
        at: Number(r.at),
        writtenAt: Number(r.writtenAt),
        token: Number(r.token),
      }));
    }
    const leaseLog = has('trading_lease_log', 'event')
      ? (
          await client.query(
            'SELECT account, event, holder_peer AS holder, token::text AS token, at FROM trading_lease_log ORDER BY seq',
          )
        ).rows
      : null;
    // Freelance jobs in the fleet's database (where the product keeps them there with DATABASE_URL).
    const jobs = has('freelance_jobs', 'dedup_key')
      ? (
          await client.query(
            'SELECT id, dedup_key AS "dedupKey", source, status, reason, delivery_id AS "deliveryId" FROM freelance_jobs',
          )
        ).rows
      : null;
    return { queueItems: items.rows, orders, leaseLog, jobs };
  } finally {
    await client.end();
  }
}
