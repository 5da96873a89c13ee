/**
 * One conditional GET of a feed, bounded in every way a hostile or broken server could stretch
 * it: a deadline for the whole exchange, a cap on the body (read as a stream and cut, never
 * buffered whole), and fetch's redirect limit (a loop ends as an error after 20 hops).
 */
export interface FeedFetchOptions {
  timeoutMs: number;
  maxBytes: number;
  etag?: string | null | undefined;
  lastModified?: string | null | undefined;
  signal?: AbortSignal;
}

export type FeedFetchResult =
  | { kind: 'not-modified' }
  | { kind: 'body'; body: string; contentType: string; etag: string | null; lastModified: string | null };

export class FeedFetchError extends Error {
  override name = 'FeedFetchError';
}

export async function fetchFeed(url: string, o: FeedFetchOptions): Promise<FeedFetchResult> {
  const headers: Record<string, string> = {
    accept:
      'application/feed+json, application/json, application/rss+xml, application/atom+xml, application/xml, text/xml',
    'user-agent': 'quantum-bot feed reader',
  };
  if (o.etag) headers['if-none-match'] = o.etag;
  if (o.lastModified) headers['if-modified-since'] = o.lastModified;
  const signal = o.signal
    ? AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)])
    : AbortSignal.timeout(o.timeoutMs);
  let res: Response;
  try {
    res = await fetch(url, { headers, signal, redirect: 'follow' });
  } catch (err) {
    throw new FeedFetchError(reasonOf(err, o.timeoutMs));
  }
  if (res.status === 304) {
    await res.body?.cancel();
    return { kind: 'not-modified' };
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new FeedFetchError(`HTTP ${res.status} ${res.statusText}`.trim());
  }
  const declared = Number(res.headers.get('content-length') ?? 'NaN');
  if (declared > o.maxBytes) {
    await res.body?.cancel();
    throw new FeedFetchError(`body of ${declared} bytes exceeds the ${o.maxBytes}-byte limit`);
  }
  const body = await readCapped(res, o.maxBytes, o.timeoutMs);
  return {
    kind: 'body',
    body,
    contentType: res.headers.get('content-type') ?? '',
    etag: res.headers.get('etag'),
    lastModified: res.headers.get('last-modified'),
  };
}

async function readCapped(res: Response, maxBytes: number, timeoutMs: number): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw new FeedFetchError(`body exceeds the ${maxBytes}-byte limit`);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof FeedFetchError) throw err;
    throw new FeedFetchError(reasonOf(err, timeoutMs));
  }
  return Buffer.concat(chunks).toString('utf8');
}

function reasonOf(err: unknown, timeoutMs: number): string {
  const e = err as Error & { cause?: { message?: string; code?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return `timed out after ${timeoutMs} ms`;
  const cause = e?.cause?.message ?? e?.cause?.code;
  return cause ? `${e.message}: ${cause}` : String(e?.message ?? err);
}
