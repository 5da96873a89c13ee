/** Per-feed state in SQLite: validators for conditional requests, failures and the next poll. */
import type { Db } from '../../../store/db.js';

export interface FeedState {
  url: string;
  etag: string | null;
  lastModified: string | null;
  failures: number;
  lastError: string | null;
  nextPollAt: number;
  lastOkAt: number | null;
  itemsSeen: number;
}

interface Row {
  url: string;
  etag: string | null;
  last_modified: string | null;
  failures: number;
  last_error: string | null;
  next_poll_at: number;
  last_ok_at: number | null;
  items_seen: number;
}

const toState = (r: Row): FeedState => ({
  url: r.url,
  etag: r.etag,
  lastModified: r.last_modified,
  failures: r.failures,
  lastError: r.last_error,
  nextPollAt: r.next_poll_at,
  lastOkAt: r.last_ok_at,
  itemsSeen: r.items_seen,
});

export class FeedStore {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      ensure: db.prepare('INSERT INTO freelance_feeds (url) VALUES (?) ON CONFLICT (url) DO NOTHING'),
      get: db.prepare('SELECT * FROM freelance_feeds WHERE url = ?'),
      ok: db.prepare(
        `UPDATE freelance_feeds SET etag = COALESCE(@etag, etag), last_modified = COALESCE(@lastModified, last_modified),
           failures = 0, last_error = NULL, next_poll_at = @next, last_ok_at = @now, items_seen = items_seen + @items
         WHERE url = @url`,
      ),
      failed: db.prepare(
        `UPDATE freelance_feeds SET failures = failures + 1, last_error = @error, next_poll_at = @next
         WHERE url = @url RETURNING failures`,
      ),
    };
  }

  ensure(url: string): FeedState {
    this.s.ensure.run(url);
    return toState(this.s.get.get(url) as Row);
  }

  get(url: string): FeedState | undefined {
    const r = this.s.get.get(url) as Row | undefined;
    return r ? toState(r) : undefined;
  }

  succeeded(
    url: string,
    v: { etag: string | null; lastModified: string | null; items: number; now: number; next: number },
  ): void {
    this.s.ok.run({ url, ...v });
  }

  failed(url: string, error: string, next: number): void {
    this.s.failed.run({ url, error, next });
  }
}
