/**
 * Provider calls and tokens per clock hour, in the peer's SQLite file: what the spending guard
 * reads and /status shows. A call counts when it starts, its tokens when it answers.
 */
import type { Db } from '../../store/db.js';

export const HOUR_MS = 3_600_000;
export const hourOf = (now: number) => Math.floor(now / HOUR_MS);

export interface HourUsage {
  requests: number;
  tokens: number;
}

export class UsageLedger {
  private readonly s;

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
  }

  add(requests: number, tokens: number): void {
    this.s.add.run({ hour: hourOf(this.now()), requests, tokens });
  }

  current(): HourUsage {
    return (this.s.get.get(hourOf(this.now())) as HourUsage | undefined) ?? { requests: 0, tokens: 0 };
  }

  /** The last `hours` clock hours that saw any use, oldest first. */
  history(hours: number): { hour: string; requests: number; tokens: number }[] {
    const rows = this.s.since.all(hourOf(this.now()) - hours + 1) as ({ hour: number } & HourUsage)[];
    return rows.map((r) => ({
      hour: new Date(r.hour * HOUR_MS).toISOString(),
      requests: r.requests,
      tokens: r.tokens,
    }));
  }
}
