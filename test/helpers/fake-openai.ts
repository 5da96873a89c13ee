/**
 * An OpenAI-compatible Chat Completions server on 127.0.0.1 for tests, scripted per request: a
 * normal answer (optionally slow), any status with headers (429 + Retry-After, 500, 400), a body
 * that is not JSON, a body cut short, or a connection reset in the middle of the answer. It
 * records what it was asked. Stopped when the test finishes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';

export type Behaviour =
  | { kind: 'ok'; text?: string; promptTokens?: number; completionTokens?: number; delayMs?: number }
  | { kind: 'status'; status: number; message?: string; headers?: Record<string, string> }
  | { kind: 'non-json' }
  | { kind: 'truncated' }
  | { kind: 'reset' };

export interface ChatCall {
  n: number;
  model: string;
  messages: { role: string; content: string }[];
  maxTokens: number | undefined;
  authorization: string | undefined;
  /** performance.now() when the request arrived. */
  at: number;
}

export interface FakeOpenAi {
  baseUrl: string;
  calls: ChatCall[];
  /** Sets what the next requests get; `script(call)` is asked once per request. */
  behave(script: (call: ChatCall) => Behaviour): void;
  close(): Promise<void>;
}

export async function startFakeOpenAi(
  script: (call: ChatCall) => Behaviour = () => ({ kind: 'ok' }),
): Promise<FakeOpenAi> {
  let behaviour = script;
  const calls: ChatCall[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer(async (req, res) => {
    const body = await readBody(req);
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
      return;
    }
    const parsed = JSON.parse(body) as { model: string; messages: ChatCall['messages']; max_tokens?: number };
    const call: ChatCall = {
      n: calls.length + 1,
      model: parsed.model,
      messages: parsed.messages,
      maxTokens: parsed.max_tokens,
      authorization: req.headers.authorization,
      at: performance.now(),
    };
    calls.push(call);
    const b = behaviour(call);
    if (b.kind === 'ok' && b.delayMs) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        answer(res, call, b);
      }, b.delayMs);
      timers.add(timer);
      // A client that gave up (timeout, abort) closes; do not answer into the void.
      res.on('close', () => clearTimeout(timer));
      return;
    }
    answer(res, call, b);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const close = () =>
    new Promise<void>((resolve) => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  onTestFinished(close);
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    calls,
    behave: (s) => {
      behaviour = s;
    },
    close,
  };
}

function answer(res: ServerResponse, call: ChatCall, b: Behaviour): void {
  if (res.destroyed) return;
  switch (b.kind) {
    case 'ok': {
      const promptTokens = b.promptTokens ?? 10;
      const completionTokens = b.completionTokens ?? 5;
      const text = b.text ?? `answer to: ${call.messages.at(-1)?.content ?? ''}`;
      json(res, 200, {
        id: `chatcmpl-${call.n}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: call.model,
        choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: completionTokens,
          total_tokens: promptTokens + completionTokens,
        },
      });
      return;
    }
    case 'status':
      json(res, b.status, { error: { message: b.message ?? `status ${b.status}`, type: 'test' } }, b.headers);
      return;
    case 'non-json':
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html><body>Bad gateway</body></html>');
      return;
    case 'truncated': {
      const full =
        '{"id":"x","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"cut';
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(full.length + 40) });
      res.write(full);
      // Close with bytes still owed: the client sees a short body.
      setImmediate(() => res.socket?.destroy());
      return;
    }
    case 'reset':
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.write('{"id":"x",');
      setImmediate(() => res.socket?.resetAndDestroy());
      return;
  }
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
