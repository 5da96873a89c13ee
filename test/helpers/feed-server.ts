/**
 * A feed server on 127.0.0.1 for tests: serves RSS, Atom and JSON Feed documents with an ETag and
 * answers 304 to a matching If-None-Match; can also answer broken XML, a huge body, a redirect
 * loop, or nothing at all (a hang). Counts the requests per path. Stopped when the test finishes.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

export type FeedRoute =
  | { kind: 'doc'; body: string; contentType: string; etag?: string }
  | { kind: 'invalid-xml' }
  | { kind: 'huge'; bytes: number }
  | { kind: 'redirect-loop' }
  | { kind: 'hang' };

export interface FeedServer {
  url(path: string): string;
  route(path: string, route: FeedRoute): void;
  /** Requests per path, and how many were answered 304. */
  hits: Map<string, { total: number; notModified: number }>;
}

export async function startFeedServer(): Promise<FeedServer> {
  const routes = new Map<string, FeedRoute>();
  const hits = new Map<string, { total: number; notModified: number }>();
  const hanging = new Set<ServerResponse>();
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    const h = hits.get(path) ?? { total: 0, notModified: 0 };
    h.total++;
    hits.set(path, h);
    const route = routes.get(path);
    if (!route) return void res.writeHead(404).end();
    switch (route.kind) {
      case 'doc':
        if (route.etag && req.headers['if-none-match'] === route.etag) {
          h.notModified++;
          return void res.writeHead(304, { etag: route.etag }).end();
        }
        return void res
          .writeHead(200, { 'content-type': route.contentType, ...(route.etag ? { etag: route.etag } : {}) })
          .end(route.body);
      case 'invalid-xml':
        return void res
          .writeHead(200, { 'content-type': 'application/rss+xml' })
          .end('<rss><channel><item><title>x</titl></item>');
      case 'huge': {
        res.writeHead(200, { 'content-type': 'application/rss+xml' });
        const chunk = Buffer.alloc(64 * 1024, 'a');
        let sent = 0;
        const pump = () => {
          while (sent < route.bytes) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        res.on('error', () => {});
        return pump();
      }
      case 'redirect-loop':
        return void res.writeHead(302, { location: path }).end();
      case 'hang':
        hanging.add(res);
        return;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: (path) => `http://127.0.0.1:${port}${path}`, route: (p, r) => routes.set(p, r), hits };
}

export function rssDoc(
  items: { guid: string; title: string; description?: string; link?: string; category?: string }[],
): string {
  const body = items
    .map(
      (i) =>
        `<item><guid isPermaLink="false">${i.guid}</guid><title>${i.title}</title>` +
        `${i.link ? `<link>${i.link}</link>` : ''}${i.category ? `<category>${i.category}</category>` : ''}` +
        `<description><![CDATA[${i.description ?? ''}]]></description></item>`,
    )
    .join('');
  return `<?xml version="1.0"?><rss version="2.0"><channel><title>jobs</title>${body}</channel></rss>`;
}

export function atomDoc(
  entries: { id: string; title: string; summary?: string; href?: string; term?: string }[],
): string {
  const body = entries
    .map(
      (e) =>
        `<entry><id>${e.id}</id><title type="text">${e.title}</title>` +
        `${e.href ? `<link rel="alternate" href="${e.href}"/>` : ''}${e.term ? `<category term="${e.term}"/>` : ''}` +
        `<summary>${e.summary ?? ''}</summary><updated>2026-01-01T00:00:00Z</updated></entry>`,
    )
    .join('');
  return `<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>jobs</title>${body}</feed>`;
}

export function jsonFeedDoc(
  items: {
    id: string;
    title: string;
    content_text?: string;
    url?: string;
    tags?: string[];
    budget?: number;
    currency?: string;
  }[],
): string {
  return JSON.stringify({
    version: 'https://jsonfeed.org/version/1.1',
    title: 'jobs',
    items: items.map(({ budget, currency, ...i }) => ({
      ...i,
      ...(budget !== undefined ? { _freelance: { budget, currency } } : {}),
    })),
  });
}
