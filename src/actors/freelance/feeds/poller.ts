/**
 * Polls every FREELANCE_FEEDS URL on its own schedule. Each feed is independent: one that times
 * out, loops on redirects, answers a huge body or broken XML is marked failing with the reason,
 * retried with exponential backoff, and never delays the others.
 */
import type { Logger } from '../../../logger.js';
import { fetchFeed } from './fetch.js';
import type { FeedItem } from './parse.js';
import type { FeedState, FeedStore } from './store.js';

/** A feed body larger than this is refused. */
export const MAX_FEED_BYTES = 2 * 1024 * 1024;
/** Backoff of a failing feed never waits longer than this, ms. */
const MAX_BACKOFF_MS = 60 * 60_000;

export interface PollerOptions {
  feeds: readonly string[];
  store: FeedStore;
  intervalMs: number;
  timeoutMs: number;
  /**
   * Called with each item of a feed that answered; the pipeline dedups. A rejection (the job store
   * unreachable) fails the poll, so the feed's validators are not advanced and the item comes again.
   */
  intake(item: FeedItem, feedUrl: string): void | Promise<void>;
  logger: Logger;
  now?: () => number;
}

export class FeedPoller {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Map<string, AbortController>();
  private running = false;
  private readonly now: () => number;

  constructor(private readonly o: PollerOptions) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    for (const url of this.o.feeds) {
      const state = this.o.store.ensure(url);
      this.schedule(url, Math.max(0, state.nextPollAt - this.now()));
    }
  }

  stop(): void {
    this.running = false;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const a of this.inFlight.values()) a.abort();
    this.inFlight.clear();
  }

  /** Every feed's state for /status. */
  states(): (FeedState & { failing: boolean })[] {
    return this.o.feeds.map((url) => {
      const s = this.o.store.get(url) ?? this.o.store.ensure(url);
      return { ...s, failing: s.failures > 0 };
    });
  }

  private schedule(url: string, delayMs: number): void {
    if (!this.running) return;
    clearTimeout(this.timers.get(url));
    this.timers.set(
      url,
      setTimeout(() => void this.poll(url), Math.min(delayMs, 2 ** 31 - 1)),
    );
  }

  private async poll(url: string): Promise<void> {
    const state = this.o.store.ensure(url);
    const abort = new AbortController();
    this.inFlight.set(url, abort);
    try {
      const res = await fetchFeed(url, {
        timeoutMs: this.o.timeoutMs,
        maxBytes: MAX_FEED_BYTES,
        etag: state.etag,
        lastModified: state.lastModified,
        signal: abort.signal,
      });
      if (abort.signal.aborted) return;
      let items: FeedItem[] = [];
      if (res.kind === 'body') {
        // The XML parser is loaded with the first feed body: a peer without feeds never pays for it.
        const { parseFeed } = await import('./parse.js');
        items = parseFeed(res.body, res.contentType);
      }
      const taken = await Promise.allSettled(items.map(async (item) => this.o.intake(item, url)));
      const missed = taken.flatMap((t) => (t.status === 'rejected' ? [t.reason as unknown] : []));
      if (missed.length > 0) {
        const why = missed[0] instanceof Error ? missed[0].message : String(missed[0]);
        throw new Error(`${missed.length} of ${items.length} items not taken in: ${why}`);
      }
      const now = this.now();
      this.o.store.succeeded(url, {
        etag: res.kind === 'body' ? res.etag : null,
        lastModified: res.kind === 'body' ? res.lastModified : null,
        items: items.length,
        now,
        next: now + this.o.intervalMs,
      });
      if (state.failures > 0) this.o.logger.info({ feed: url }, 'feed answers again');
      this.schedule(url, this.o.intervalMs);
    } catch (err) {
      if (abort.signal.aborted) return;
      const failures = state.failures + 1;
      const delay = Math.min(MAX_BACKOFF_MS, this.o.intervalMs * 2 ** Math.min(failures - 1, 20));
      const reason = (err as Error).message ?? String(err);
      this.o.store.failed(url, reason, this.now() + delay);
      this.o.logger.warn({ feed: url, failures, retryInMs: delay, reason }, 'feed failing');
      this.schedule(url, delay);
    } finally {
      this.inFlight.delete(url);
    }
  }
}
