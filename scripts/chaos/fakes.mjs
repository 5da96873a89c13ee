/**
 * The outside world of a chaos run, on one HTTP server at the bridge's host address (reachable from
 * every peer's namespace; 127.0.0.1 in loopback mode):
 *   POST /v1/chat/completions  an OpenAI-compatible provider that always answers (after 20-150 ms)
 *   GET  /feed.json            a JSON Feed that gains one job every `feedEveryMs`, newest 30 kept
 *   POST /hooks/jobs           a Standard Webhooks receiver: verifies the signature (the
 *                              `standardwebhooks` package) and counts deliveries per webhook-id
 * The test helpers in test/helpers do the same jobs but bind to 127.0.0.1 and need vitest; these
 * must listen where the namespaces can reach them.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';

const FEED_KEEP = 30;

export async function startFakes({ host, feedEveryMs = 6_000, random }) {
  const secret = `whsec_${randomBytes(24).toString('base64')}`;
  const wh = new Webhook(secret);
  const startedAt = Date.now();
  const stats = { aiCalls: 0, feedPolls: 0, deliveries: 0, badSignatures: 0 };
  /** webhook-id -> { count, firstAt, body } */
  const received = new Map();

  /** Set when the chaos ends: the feed stops growing, so the fleet's work can run out. */
  let frozenAt = null;
  const feed = () => {
    const n = Math.floor(((frozenAt ?? Date.now()) - startedAt) / feedEveryMs) + 1;
    const items = [];
    for (let k = n; k > Math.max(0, n - FEED_KEEP); k--) {
      items.push({
        id: `chaos-feed-${k}`,
        url: `https://jobs.example/chaos/${k}`,
        title: `Chaos feed job ${k}: write a TypeScript service`,
        content_text: 'A typescript job from the chaos feed.',
        date_published: new Date(startedAt + (k - 1) * feedEveryMs).toISOString(),
        _freelance: { budget: 500 + k, currency: 'USD' },
      });
    }
    return { version: 'https://jsonfeed.org/version/1.1', title: 'chaos feed', items };
  };

  const server = createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'POST' && req.url?.endsWith('/chat/completions')) return completion(body, res);
      if (req.method === 'GET' && req.url?.startsWith('/feed.json')) {
        stats.feedPolls++;
        res.writeHead(200, { 'content-type': 'application/feed+json' }).end(JSON.stringify(feed()));
        return;
      }
      if (req.method === 'POST' && req.url === '/hooks/jobs') return hook(req, body, res);
      res.writeHead(404).end();
    });
  });

  const timers = new Set();
  function completion(body, res) {
    stats.aiCalls++;
    let model = 'fake';
    try {
      model = JSON.parse(body).model ?? model;
    } catch {
      // The answer does not depend on it.
    }
    const timer = setTimeout(
      () => {
        timers.delete(timer);
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            id: `chatcmpl-${randomBytes(6).toString('hex')}`,
            object: 'chat.completion',
            created: Math.floor(Date.now() / 1000),
            model,
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: 'A proposal from the fake provider.' },
                finish_reason: 'stop',
              },
            ],
            usage: { prompt_tokens: 20, completion_tokens: 8, total_tokens: 28 },
          }),
        );
      },
      20 + Math.floor(random() * 130),
    );
    timers.add(timer);
    res.on('close', () => clearTimeout(timer));
  }

  function hook(req, body, res) {
    const id = req.headers['webhook-id'];
    try {
      wh.verify(body, {
        'webhook-id': String(id ?? ''),
        'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
        'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
      });
    } catch {
      stats.badSignatures++;
      return void res.writeHead(401).end();
    }
    stats.deliveries++;
    const seen = received.get(id);
    if (seen) seen.count++;
    else received.set(id, { count: 1, firstAt: Date.now() });
    res.writeHead(204).end();
  }

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const base = `http://${host}:${server.address().port}`;
  return {
    aiBaseUrl: `${base}/v1`,
    feedUrl: `${base}/feed.json`,
    webhookUrl: `${base}/hooks/jobs`,
    webhookSecret: secret,
    stats,
    received,
    freeze: () => {
      frozenAt ??= Date.now();
    },
    close: () =>
      new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * The market the peers trade (TRADING_REPLAY_CSV over EXCHANGE=sim): the built-in sim market moves
 * on one-minute candles, so its EMA crossover trades a few times an hour and a short run would place
 * no order at all. This replay oscillates with a 40-candle period (one candle per trading tick, 1 s),
 * so the holder of the account places an order about every 20 s and the one-trader and kill-switch
 * invariants have orders to judge. The swing is small (0.3 %) so the daily-loss protection does not
 * latch within an hour. Rows run out after `rows` ticks (the replay then starts again, and repeated
 * candles repeat client order ids, which the ledger deduplicates).
 */
export function writeReplayCsv(file, rows, random) {
  const lines = ['time,open,high,low,close,volume'];
  const start = Date.UTC(2026, 0, 1);
  let prev = 60_000;
  for (let k = 0; k < rows; k++) {
    // Phase 20: the fast EMA is above the slow one at the 27th row, the first the strategy judges
    // (each start of trading replays from the first row), so a holder buys ~27 s after it starts.
    const close = 60_000 * (1 + 0.003 * Math.sin((2 * Math.PI * (k + 20)) / 40) + 0.0005 * (random() - 0.5));
    const high = Math.max(prev, close) * 1.0002;
    const low = Math.min(prev, close) * 0.9998;
    lines.push(
      `${start + k * 60_000},${prev.toFixed(2)},${high.toFixed(2)},${low.toFixed(2)},${close.toFixed(2)},${(1 + random() * 5).toFixed(3)}`,
    );
    prev = close;
  }
  writeFileSync(file, `${lines.join('\n')}\n`);
}
