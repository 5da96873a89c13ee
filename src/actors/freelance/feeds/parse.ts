/**
 * Feed bodies to job candidates, no I/O: RSS 2.0 and Atom through fast-xml-parser (validated
 * first, so a broken document is an error rather than half a feed), JSON Feed 1.x by hand (it is
 * plain JSON). A job's budget comes from the JSON Feed extension `_freelance: {budget, currency}`.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface FeedItem {
  /** guid (RSS), id (Atom, JSON Feed); the dedup key with the URL as fallback. */
  guid: string | undefined;
  url: string | undefined;
  title: string;
  description: string | undefined;
  tags: string[];
  budget: number | undefined;
  currency: string | undefined;
}

export class FeedParseError extends Error {
  override name = 'FeedParseError';
}

/** Items beyond this are ignored: a feed is a window on recent jobs, not an archive. */
export const MAX_ITEMS_PER_FEED = 500;
const MAX_TEXT = 8_000;

export function parseFeed(body: string, contentType = ''): FeedItem[] {
  const trimmed = body.trimStart();
  if (contentType.includes('json') || trimmed.startsWith('{')) return parseJsonFeed(trimmed);
  return parseXmlFeed(trimmed);
}

function parseJsonFeed(body: string): FeedItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (err) {
    throw new FeedParseError(`invalid JSON Feed: ${(err as Error).message}`);
  }
  const d = doc as { version?: unknown; items?: unknown };
  if (
    typeof d.version !== 'string' ||
    !d.version.startsWith('https://jsonfeed.org/version/') ||
    !Array.isArray(d.items)
  ) {
    throw new FeedParseError('not a JSON Feed (no version https://jsonfeed.org/version/... or no items)');
  }
  return d.items.slice(0, MAX_ITEMS_PER_FEED).flatMap((raw) => {
    const i = raw as Record<string, unknown>;
    const ext = (i._freelance ?? {}) as { budget?: unknown; currency?: unknown };
    const title = str(i.title) ?? str(i.summary) ?? str(i.content_text);
    if (!title) return [];
    return [
      {
        guid: str(i.id),
        url: str(i.url) ?? str(i.external_url),
        title: clip(title, 500),
        description: text(str(i.content_text) ?? str(i.content_html) ?? str(i.summary)),
        tags: Array.isArray(i.tags)
          ? i.tags.filter((t): t is string => typeof t === 'string').slice(0, 50)
          : [],
        budget: typeof ext.budget === 'number' && Number.isFinite(ext.budget) ? ext.budget : undefined,
        currency: str(ext.currency),
      },
    ];
  });
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  textNodeName: '#text',
  // Entities beyond the XML five are not expanded: no billion-laughs through a feed.
  processEntities: true,
  htmlEntities: false,
  isArray: (name) => ['item', 'entry', 'category', 'link'].includes(name),
});

type XmlNode = Record<string, unknown>;

/** Elements listed in `isArray` come as arrays; anything else is treated as absent. */
function nodes(v: unknown): XmlNode[] {
  return Array.isArray(v) ? v.filter((x): x is XmlNode => x !== null && typeof x === 'object') : [];
}

/** Like nodes(), for elements that may be plain text (RSS <category>, <link>). */
function values(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function parseXmlFeed(body: string): FeedItem[] {
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw new FeedParseError(`invalid XML: ${valid.err.msg} (line ${valid.err.line})`);
  const doc = xml.parse(body) as { rss?: { channel?: XmlNode }; feed?: XmlNode };
  const channel = doc.rss?.channel;
  if (channel && typeof channel === 'object') {
    return nodes(channel.item)
      .slice(0, MAX_ITEMS_PER_FEED)
      .flatMap((i) => {
        const title = str(node(i.title));
        if (!title) return [];
        return [
          {
            guid: str(node(i.guid)),
            url: str(node(values(i.link)[0])),
            title: clip(title, 500),
            description: text(str(node(i.description))),
            tags: values(i.category).flatMap((c) => str(node(c)) ?? []),
            budget: undefined,
            currency: undefined,
          },
        ];
      });
  }
  if (doc.feed && typeof doc.feed === 'object') {
    return nodes(doc.feed.entry)
      .slice(0, MAX_ITEMS_PER_FEED)
      .flatMap((e) => {
        const title = str(node(e.title));
        if (!title) return [];
        const links = nodes(e.link);
        const alt = links.find((l) => !l['@_rel'] || l['@_rel'] === 'alternate') ?? links[0];
        return [
          {
            guid: str(node(e.id)),
            url: str(alt?.['@_href']),
            title: clip(title, 500),
            description: text(str(node(e.summary)) ?? str(node(e.content))),
            tags: nodes(e.category).flatMap((c) => str(c['@_term']) ?? []),
            budget: undefined,
            currency: undefined,
          },
        ];
      });
  }
  throw new FeedParseError('neither RSS (<rss><channel>) nor Atom (<feed>)');
}

/** The text of an element that may carry attributes. */
function node(v: unknown): unknown {
  return v !== null && typeof v === 'object' && '#text' in v ? (v as Record<string, unknown>)['#text'] : v;
}

function str(v: unknown): string | undefined {
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

/** Markup out, whitespace folded: descriptions are read by matching rules and a model, not rendered. */
function text(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  return clip(
    v
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim(),
    MAX_TEXT,
  );
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n) : s;
}
