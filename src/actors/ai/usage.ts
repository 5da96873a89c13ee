/**
 * Provider calls and tokens per clock hour: what the spending guard reads and /status shows. A call
 * counts when it starts (its unit is reserved before the call, atomically against the cap), its
 * tokens when it answers.
 *
 * Two ledgers behind one interface: the peer's SQLite file (a peer alone), or the fleet's
 * PostgreSQL (DATABASE_URL), where the caps hold for the whole fleet: a reservation is one
 * row-locked UPDATE, so two peers can never both take the last unit.
 */
import type { SharedSql } from '../../queue/types.js';
import type { Db } from '../../store/db.js';
import type { NamedMigration } from '../../store/migrations.js';

export const HOUR_MS = 3_600_000;
export const hourOf = (now: number) => Math.floor(now / HOUR_MS);

export interface HourUsage {
  requests: number;
  tokens: number;
}

export interface HourRow extends HourUsage {
  hour: string;
}

export interface SpendLedger {
  /** Takes up to `want` request units of this hour without passing `cap`; resolves with how many. */
  reserveRequests(want: number, cap: number): Promise<number>;
  /** Gives back units reserved for calls that were not made. */
  refundRequests(n: number): Promise<void>;
  addTokens(n: number): Promise<void>;
  /** This hour's figures (with PostgreSQL the fleet's, as of the last call or refresh). */
  current(): HourUsage;
  /** The last `hours` clock hours that saw any use, oldest first. */
  history(hours: number): HourRow[];
  /** Re-reads the shared figures (PostgreSQL); nothing to do for SQLite. */
  refresh(): Promise<void>;
}

const toRows = (rows: ({ hour: number } & HourUsage)[]): HourRow[] =>
  rows.map((r) => ({
    hour: new Date(r.hour * HOUR_MS).toISOString(),
    requests: r.requests,
    tokens: r.tokens,
  }));

/** The SQLite ledger: one peer's own usage. */
export class UsageLedger implements SpendLedger {
  private readonly s;
  private readonly reserve;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.s = {
      add: db.prepare(
        `INSERT INTO ai_usage_hourly (hour, requests, tokens) VALUES (@hour, @requests, @tokens)
         ON CONFLICT (hour) DO UPDATE SET requests = requests + @requests, tokens = tokens + @tokens`,
      ),
      get: db.prepare('SELECT requests, tokens FROM ai_usage_hourly WHERE hour = ?'),
      since: db.prepare('SELECT hour, requests, tokens FROM ai_usage_hourly WHERE hour >= ? ORDER BY hour'),
    };
    this.reserve = db.transaction((want: number, cap: number) => {
      const got = Math.max(0, Math.min(want, cap - this.current().requests));
      if (got > 0) this.add(got, 0);
      return got;
    });
  }

  add(requests: number, tokens: number): void {
    this.s.add.run({ hour: hourOf(this.now()), requests, tokens });
  }

  async reserveRequests(want: number, cap: number): Promise<number> {
    return this.reserve(want, cap);
  }

  async refundRequests(n: number): Promise<void> {
    if (n > 0) this.add(-n, 0);
  }

  async addTokens(n: number): Promise<void> {
    this.add(0, n);
  }

  current(): HourUsage {
    return (this.s.get.get(hourOf(this.now())) as HourUsage | undefined) ?? { requests: 0, tokens: 0 };
  }

  history(hours: number): HourRow[] {
    return toRows(this.s.since.all(hourOf(this.now()) - hours + 1) as ({ hour: number } & HourUsage)[]);
  }

  async refresh(): Promise<void> {}
}

/** The fleet-wide ledger's table in the shared PostgreSQL database. ONLY APPEND. */
export const AI_SHARED_MIGRATIONS: readonly NamedMigration[] = [
  {
    name: 'ai/pg-001-usage-hourly',
    sql: `CREATE TABLE ai_usage_hourly (
            hour      BIGINT PRIMARY KEY,
            requests  BIGINT NOT NULL DEFAULT 0,
            tokens    BIGINT NOT NULL DEFAULT 0
          )`,
  },
];

/** The PostgreSQL ledger: the whole fleet's usage, shared by every peer. */
export class SharedUsageLedger implements SpendLedger {
  private snapshot: { hour: number; usage: HourUsage; history: HourRow[] } = {
    hour: -1,
    usage: { requests: 0, tokens: 0 },
    history: [],
  };

  constructor(
    private readonly sql: SharedSql,
    private readonly now: () => number = Date.now,
  ) {}

  async reserveRequests(want: number, cap: number): Promise<number> {
    if (want <= 0) return 0;
    const hour = hourOf(this.now());
    await this.ensureRow(hour);
    // The row lock taken by FOR UPDATE makes read-and-take one step: a peer racing for the last
    // unit waits, then sees it gone.
    const rows = await this.sql.query<{ granted: number } & HourUsage>(
      `WITH old AS (SELECT hour, requests FROM ai_usage_hourly WHERE hour = $1 FOR UPDATE)
       UPDATE ai_usage_hourly u SET requests = GREATEST(old.requests, LEAST(old.requests + $2, $3))
       FROM old WHERE u.hour = old.hour
       RETURNING u.requests - old.requests AS granted, u.requests, u.tokens`,
      [hour, want, cap],
    );
    const row = rows[0];
    if (row) this.remember(hour, row);
    return row?.granted ?? 0;
  }

  async refundRequests(n: number): Promise<void> {
    if (n > 0) await this.bump(-n, 0);
  }

  async addTokens(n: number): Promise<void> {
    if (n > 0) await this.bump(0, n);
  }

  current(): HourUsage {
    return this.snapshot.hour === hourOf(this.now()) ? this.snapshot.usage : { requests: 0, tokens: 0 };
  }

  history(hours: number): HourRow[] {
    const from = new Date((hourOf(this.now()) - hours + 1) * HOUR_MS).toISOString();
    return this.snapshot.history.filter((h) => h.hour >= from);
  }

  async refresh(): Promise<void> {
    const hour = hourOf(this.now());
    const rows = await this.sql.query<{ hour: number } & HourUsage>(
      'SELECT hour, requests, tokens FROM ai_usage_hourly WHERE hour >= $1 ORDER BY hour',
      [hour - 23],
    );
    const mine = rows.find((r) => r.hour === hour);
    this.snapshot = {
      hour,
      usage: mine ? { requests: mine.requests, tokens: mine.tokens } : { requests: 0, tokens: 0 },
      history: toRows(rows),
    };
  }

  private async ensureRow(hour: number): Promise<void> {
    await this.sql.query(
      'INSERT INTO ai_usage_hourly (hour, requests, tokens) VALUES ($1, 0, 0) ON CONFLICT (hour) DO NOTHING',
      [hour],
    );
  }

  private async bump(requests: number, tokens: number): Promise<void> {
    const hour = hourOf(this.now());
    const rows = await this.sql.query<HourUsage>(
      `INSERT INTO ai_usage_hourly (hour, requests, tokens) VALUES ($1, GREATEST($2, 0), $3)
       ON CONFLICT (hour) DO UPDATE SET requests = GREATEST(ai_usage_hourly.requests + $2, 0),
         tokens = ai_usage_hourly.tokens + $3
       RETURNING requests, tokens`,
      [hour, requests, tokens],
    );
    if (rows[0]) this.remember(hour, rows[0]);
  }

  private remember(hour: number, usage: HourUsage): void {
    const u = { requests: usage.requests, tokens: usage.tokens };
    const history = this.snapshot.history.filter((h) => h.hour !== new Date(hour * HOUR_MS).toISOString());
    history.push({ hour: new Date(hour * HOUR_MS).toISOString(), ...u });
    this.snapshot = { hour, usage: u, history };
  }
}
