/** A fresh PostgreSQL database with the trading schema, for the lease and ledger tests. */
import pg from 'pg';
import { onTestFinished } from 'vitest';
import { POSTGRES_TRADING_MIGRATIONS } from '../../src/actors/trading/pg-schema.js';
import { pgTypes } from '../../src/queue/postgres.js';
import { migratePostgres } from '../../src/queue/postgres-schema.js';
import type { PostgresServer } from './postgres.js';

/** A new database `name` on `server` with the trading schema, and a pool on it (ended after the test). */
export async function tradingPool(server: PostgresServer, name: string): Promise<pg.Pool> {
  const url = await server.createDatabase(name);
  const pool = new pg.Pool({ connectionString: url, max: 4, types: pgTypes });
  // The server stops after the last test: idle clients' errors then are expected.
  pool.on('error', () => undefined);
  onTestFinished(() => pool.end());
  const client = await pool.connect();
  try {
    await migratePostgres(client, POSTGRES_TRADING_MIGRATIONS);
  } finally {
    client.release();
  }
  return pool;
}
