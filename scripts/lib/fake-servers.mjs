/**
 * Local stand-ins for the outside services a loaded fleet talks to, for the soak script (scripts
 * cannot import test/helpers/*.ts, which vitest compiles; this is the few lines of
 * test/helpers/fake-openai.ts and test/helpers/webhook-receiver.ts a steady load needs, and only the
 * "ok" behaviour): an OpenAI-compatible Chat Completions endpoint and a webhook sink that answers
 * 204. Both listen on 127.0.0.1 on a port the kernel picks and count what they were asked.
 */
import { createServer } from 'node:http';
import { HOST } from './proc.mjs';

function listen(server) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve(server.address().port));
  });
}

function closer(server) {
  return () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
}

/** Drains a request body; `cb(text)` once it ended (bodies here are small JSON). */
function readBody(req, cb) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => cb(Buffer.concat(chunks).toString('utf8')));
  req.on('error', () => cb(''));
}

/** POST /v1/chat/completions answers a fixed completion with usage; anything else is 404. */
export async function startFakeOpenAi() {
  const stats = { calls: 0 };
  const server = createServer((req, res) => {
    readBody(req, (body) => {
      if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
        return;
      }
      stats.calls++;
      let model = 'soak-model';
      try {
        model = JSON.parse(body).model ?? model;
      } catch {}
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          id: `chatcmpl-${stats.calls}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [
            { index: 0, message: { role: 'assistant', content: 'a short answer' }, finish_reason: 'stop' },
          ],
          usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
        }),
      );
    });
  });
  const port = await listen(server);
  return { baseUrl: `http://${HOST}:${port}/v1`, stats, close: closer(server) };
}

/** Any POST is a delivery, answered 204; the count is what the fleet delivered. */
export async function startWebhookSink() {
  const stats = { deliveries: 0 };
  const server = createServer((req, res) => {
    readBody(req, () => {
      if (req.method === 'POST') stats.deliveries++;
      res.writeHead(req.method === 'POST' ? 204 : 405).end();
    });
  });
  const port = await listen(server);
  return { url: `http://${HOST}:${port}/hooks`, stats, close: closer(server) };
}
