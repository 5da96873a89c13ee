/**
 * Executions (first delivery attempts) per clock hour, against FREELANCE_MAX_EXECUTIONS_PER_HOUR:
 * in the peer's SQLite file, or in the fleet's PostgreSQL, where the cap holds for the whole
 * fleet. Taking a unit is one guarded statement (`count < cap`), so two peers never both take the
 * last one.
 */
import type { SharedSql } from '../../queue/types.js';
import type { Db } from '../../store/db.js';
import { hourOf } from '../ai/usage.js';

export interface ExecutionCounter {
  /** Takes one execution of this hour if fewer than `cap` were taken; false otherwise. */
  take(cap: number): Promise<boolean>;
  /** This hour's count (with PostgreSQL the fleet's, as of the last call or refresh). */
  current(): number;
  refresh(): Promise<void>;
}

export class SqliteExecutionCounter implements ExecutionCounter {
  private readonly s;

  constructor(
    db: Db,
    private readonly now: () => number = Date.now,
  ) {
    this.s = {
      count: db.prepare('SELECT count FROM freelance_executions_hourly WHERE hour = ?'),
      take: db.prepare(
        `INSERT INTO freelance_executions_hourly (hour, count) VALUES (@hour, 1)
         ON CONFLICT (hour) DO UPDATE SET count = count + 1 WHERE count < @cap`,
      ),
    };
  }

  async take(cap: number): Promise<boolean> {
    if (cap <= 0) return false;
    return this.s.take.run({ hour: hourOf(this.now()), cap }).changes === 1;
  }

  current(): number {
    return (this.s.count.get(hourOf(this.now())) as { count: number } | undefined)?.count ?? 0;
  }

  async refresh(): Promise<void> {}
}

export class SharedExecutionCounter implements ExecutionCounter {
  private snapshot = { hour: -1, count: 0 };

  constructor(
    private readonly sql: SharedSql,
    private readonly now: () => number = Date.now,
  ) {}

  async take(cap: number): Promise<boolean> {
    if (cap <= 0) return false;
    const hour = hourOf(this.now());
    const rows = await this.sql.query<{ count: number }>(
      `INSERT INTO freelance_executions_hourly AS e (hour, count) VALUES ($1, 1)
       ON CONFLICT (hour) DO UPDATE SET count = e.count + 1 WHERE e.count < $2
       RETURNING count`,
      [hour, cap],
    );
    if (rows[0]) this.snapshot = { hour, count: rows[0].count };
    else this.snapshot = { hour, count: Math.max(this.current(), cap) };
    return rows.length === 1;
  }

  current(): number {
    return this.snapshot.hour === hourOf(this.now()) ? this.snapshot.count : 0;
  }

  async refresh(): Promise<void> {
    const hour = hourOf(this.now());
    const rows = await this.sql.query<{ count: number }>(
      'SELECT count FROM freelance_executions_hourly WHERE hour = $1',
      [hour],
    );
    this.snapshot = { hour, count: rows[0]?.count ?? 0 };
  }
}
