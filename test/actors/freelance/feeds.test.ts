import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { fetchFeed } from '../../../src/actors/freelance/feeds/fetch.js';
import { parseFeed } from '../../../src/actors/freelance/feeds/parse.js';
import { FeedPoller } from '../../../src/actors/freelance/feeds/poller.js';
import { FeedStore } from '../../../src/actors/freelance/feeds/store.js';
import { FREELANCE_MIGRATIONS } from '../../../src/actors/freelance/migrations.js';
import { QbError } from '../../../src/errors.js';
import { openDb } from '../../../src/store/db.js';
import { applyNamedMigrations } from '../../../src/store/migrations.js';
import { atomDoc, jsonFeedDoc, rssDoc, startFeedServer } from '../../helpers/feed-server.js';
import { silentLogger } from '../../helpers/logger.js';

describe('feed parsing', () => {
  it('reads RSS items: guid, link, title, description without markup, categories', () => {
    const items = parseFeed(
      rssDoc([
        {
          guid: 'g1',
          title: 'TypeScript job',
          link: 'https://x.test/1',
          description: '<p>Build <b>it</b></p>',
          category: 'node',
        },
      ]),
    );
    expect(items).toEqual([
      {
        guid: 'g1',
        url: 'https://x.test/1',
        title: 'TypeScript job',
        description: 'Build it',
        tags: ['node'],
        budget: undefined,
        currency: undefined,
      },
    ]);
  });

  it('reads Atom entries', () => {
    const items = parseFeed(
      atomDoc([{ id: 'tag:x,1', title: 'Go job', href: 'https://x.test/a', summary: 'do it', term: 'go' }]),
    );
    expect(items).toEqual([
      {
        guid: 'tag:x,1',
        url: 'https://x.test/a',
        title: 'Go job',
        description: 'do it',
        tags: ['go'],
        budget: undefined,
        currency: undefined,
      },
    ]);
  });

  it('reads JSON Feed items with the budget extension', () => {
    const items = parseFeed(
      jsonFeedDoc([
        {
          id: 'j1',
          title: 'Rust job',
          url: 'https://x.test/j',
          content_text: 'txt',
          tags: ['rust'],
          budget: 300,
          currency: 'EUR',
        },
      ]),
      'application/feed+json',
    );
    expect(items).toEqual([
      {
        guid: 'j1',
        url: 'https://x.test/j',
        title: 'Rust job',
        description: 'txt',
        tags: ['rust'],
        budget: 300,
        currency: 'EUR',
      },
    ]);
  });

  it('refuses invalid XML and documents that are no feed, with the reason', () => {
    expect(() => parseFeed('<rss><channel><item></titl></rss>')).toThrow(/invalid XML/);
    expect(() => parseFeed('<html><body/></html>')).toThrow(/neither RSS/);
    expect(() => parseFeed('{"items": []}')).toThrow(/not a JSON Feed/);
  });
});

describe('feed fetching', () => {
  it('sends the ETag back and reads a 304 as "not modified"', async () => {
    const server = await startFeedServer();
    server.route('/rss', {
      kind: 'doc',
      body: rssDoc([{ guid: 'a', title: 't' }]),
      contentType: 'application/rss+xml',
      etag: '"v1"',
    });
    const first = await fetchFeed(server.url('/rss'), { timeoutMs: 2_000, maxBytes: 1e6 });
    expect(first).toMatchObject({ kind: 'body', etag: '"v1"' });
    const second = await fetchFeed(server.url('/rss'), { timeoutMs: 2_000, maxBytes: 1e6, etag: '"v1"' });
    expect(second).toEqual({ kind: 'not-modified' });
    expect(server.hits.get('/rss')).toEqual({ total: 2, notModified: 1 });
  });

  it('ends a huge body, a redirect loop and a hang with a reason', async () => {
    const server = await startFeedServer();
    server.route('/huge', { kind: 'huge', bytes: 8 * 1024 * 1024 });
    server.route('/loop', { kind: 'redirect-loop' });
    server.route('/hang', { kind: 'hang' });
    await expect(fetchFeed(server.url('/huge'), { timeoutMs: 5_000, maxBytes: 1024 * 1024 })).rejects.toThrow(
      /exceeds the 1048576-byte limit/,
    );
    await expect(fetchFeed(server.url('/loop'), { timeoutMs: 5_000, maxBytes: 1e6 })).rejects.toThrow(
      /redirect/i,
    );
    await expect(fetchFeed(server.url('/hang'), { timeoutMs: 200, maxBytes: 1e6 })).rejects.toThrow(
      /timed out after 200 ms/,
    );
  });
});

describe('feed polling', () => {
  it('an item the pipeline could not take in (store unreachable) comes again, not lost behind a 304', async () => {
    const server = await startFeedServer();
    server.route('/rss', {
      kind: 'doc',
      body: rssDoc([{ guid: 'a', title: 't' }]),
      contentType: 'application/rss+xml',
      etag: '"v1"',
    });
    const db = openDb(':memory:');
    applyNamedMigrations(db, FREELANCE_MIGRATIONS);
    let down = true;
    const taken: string[] = [];
    const poller = new FeedPoller({
      feeds: [server.url('/rss')],
      store: new FeedStore(db),
      intervalMs: 20,
      timeoutMs: 2_000,
      intake: async (item) => {
        if (down) throw new QbError('QB_ERR_STORE_UNAVAILABLE', 'the queue database is unreachable');
        taken.push(item.guid ?? '');
      },
      logger: silentLogger(),
    });
    onTestFinished(() => {
      poller.stop();
      db.close();
    });
    poller.start();
    await vi.waitFor(() => expect(poller.states()[0]).toMatchObject({ failing: true }));
    expect(poller.states()[0]?.lastError).toContain('not taken in');
    down = false;
    await vi.waitFor(() => expect(taken).toEqual(['a']), { timeout: 5_000 });
    expect(poller.states()[0]).toMatchObject({ failing: false });
  });
});
