/**
 * The trading feature's PostgreSQL schema (DATABASE_URL): the ledger every peer of the fleet shares,
 * the account lease that says which peer may trade an account, and the lease's log. Named
 * migrations applied under the queue's advisory lock (peers starting together do not race).
 * ONLY APPEND; never edit a released one.
 *
 * Every order and fill row carries the fencing token and the holder it was written under, and
 * `written_at` from the database's clock: the record a takeover test (and an auditor) checks.
 */
import type { NamedMigration } from '../../store/migrations.js';

export const POSTGRES_TRADING_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'trading/pg-001-ledger-and-lease',
    sql: `
      CREATE TABLE trading_account (
        account     TEXT PRIMARY KEY,
        quote       TEXT NOT NULL,
        state       TEXT NOT NULL,          -- JSON of LedgerState
        day         TEXT NOT NULL,
        day_equity  DOUBLE PRECISION NOT NULL,
        updated_at  BIGINT NOT NULL
      );
      CREATE TABLE trading_order (
        id               TEXT PRIMARY KEY,
        client_order_id  TEXT NOT NULL UNIQUE,
        exchange_id      TEXT,
        account          TEXT NOT NULL,
        symbol           TEXT NOT NULL,
        side             TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
        type             TEXT NOT NULL CHECK (type IN ('market', 'limit')),
        amount           DOUBLE PRECISION NOT NULL,
        price            DOUBLE PRECISION,
        status           TEXT NOT NULL CHECK (status IN ('open', 'closed', 'canceled', 'rejected')),
        filled           DOUBLE PRECISION NOT NULL DEFAULT 0,
        average          DOUBLE PRECISION,
        fee              DOUBLE PRECISION NOT NULL DEFAULT 0,
        reason           TEXT,
        created_at       BIGINT NOT NULL,
        updated_at       BIGINT NOT NULL,
        lease_token      BIGINT NOT NULL,
        holder           TEXT NOT NULL,
        written_at       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX trading_order_open ON trading_order (account, status) WHERE status = 'open';
      CREATE INDEX trading_order_created ON trading_order (account, created_at);
      CREATE TABLE trading_fill (
        seq          BIGSERIAL PRIMARY KEY,
        order_id     TEXT NOT NULL REFERENCES trading_order (id),
        account      TEXT NOT NULL,
        symbol       TEXT NOT NULL,
        side         TEXT NOT NULL,
        price        DOUBLE PRECISION NOT NULL,
        amount       DOUBLE PRECISION NOT NULL,
        fee          DOUBLE PRECISION NOT NULL,
        role         TEXT NOT NULL,
        at           BIGINT NOT NULL,
        lease_token  BIGINT NOT NULL,
        holder       TEXT NOT NULL,
        written_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX trading_fill_account ON trading_fill (account, seq);
      CREATE TABLE trading_protection (
        account     TEXT NOT NULL,
        name        TEXT NOT NULL,
        reason      TEXT NOT NULL,
        tripped_at  BIGINT NOT NULL,
        PRIMARY KEY (account, name)
      );
      CREATE TABLE trading_equity (
        account  TEXT NOT NULL,
        at       BIGINT NOT NULL,
        equity   DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (account, at)
      );
      -- The right to trade an account. token grows with every acquisition (never with a renewal);
      -- expires_at is computed by this database's clock only, so the peers' clocks do not matter.
      CREATE TABLE trading_lease (
        account      TEXT PRIMARY KEY,
        holder_peer  TEXT NOT NULL,
        holder_boot  TEXT NOT NULL,
        token        BIGINT NOT NULL,
        acquired_at  TIMESTAMPTZ NOT NULL,
        renewed_at   TIMESTAMPTZ NOT NULL,
        expires_at   TIMESTAMPTZ NOT NULL
      );
      CREATE TABLE trading_lease_log (
        seq          BIGSERIAL PRIMARY KEY,
        account      TEXT NOT NULL,
        event        TEXT NOT NULL CHECK (event IN ('acquired', 'renewed', 'lost', 'released')),
        holder_peer  TEXT NOT NULL,
        holder_boot  TEXT NOT NULL,
        token        BIGINT NOT NULL,
        at           TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
        expires_at   TIMESTAMPTZ,
        detail       TEXT
      );
      CREATE INDEX trading_lease_log_account ON trading_lease_log (account, seq);`,
  },
];
