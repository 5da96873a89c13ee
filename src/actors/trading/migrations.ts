/** The trading feature's SQLite schema, as named migrations. ONLY APPEND; never edit a released one. */
export const TRADING_MIGRATIONS = [
  {
    name: 'trading/001-ledger',
    sql: `CREATE TABLE trading_account (
       account     TEXT PRIMARY KEY,
       quote       TEXT NOT NULL,
       state       TEXT NOT NULL,          -- JSON of LedgerState
       day         TEXT NOT NULL,          -- UTC date the day-start equity belongs to
       day_equity  REAL NOT NULL,
       updated_at  INTEGER NOT NULL
     );
     CREATE TABLE trading_order (
       id               TEXT PRIMARY KEY,
       client_order_id  TEXT NOT NULL UNIQUE,
       exchange_id      TEXT,                  -- the exchange's order id (live); null on paper
       account          TEXT NOT NULL,
       symbol           TEXT NOT NULL,
       side             TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
       type             TEXT NOT NULL CHECK (type IN ('market', 'limit')),
       amount           REAL NOT NULL,
       price            REAL,
       status           TEXT NOT NULL CHECK (status IN ('open', 'closed', 'canceled', 'rejected')),
       filled           REAL NOT NULL DEFAULT 0,
       average          REAL,
       fee              REAL NOT NULL DEFAULT 0,
       reason           TEXT,
       created_at       INTEGER NOT NULL,
       updated_at       INTEGER NOT NULL
     );
     CREATE INDEX trading_order_open ON trading_order (account, status) WHERE status = 'open';
     CREATE INDEX trading_order_created ON trading_order (account, created_at);
     CREATE TABLE trading_fill (
       seq       INTEGER PRIMARY KEY AUTOINCREMENT,
       order_id  TEXT NOT NULL REFERENCES trading_order (id),
       account   TEXT NOT NULL,
       symbol    TEXT NOT NULL,
       side      TEXT NOT NULL,
       price     REAL NOT NULL,
       amount    REAL NOT NULL,
       fee       REAL NOT NULL,
       role      TEXT NOT NULL,
       at        INTEGER NOT NULL
     );
     CREATE INDEX trading_fill_account ON trading_fill (account, seq);
     CREATE TABLE trading_protection (
       account     TEXT NOT NULL,
       name        TEXT NOT NULL,
       reason      TEXT NOT NULL,
       tripped_at  INTEGER NOT NULL,
       PRIMARY KEY (account, name)
     );
     CREATE TABLE trading_equity (
       account  TEXT NOT NULL,
       at       INTEGER NOT NULL,
       equity   REAL NOT NULL,
       PRIMARY KEY (account, at)
     );`,
  },
] as const;
