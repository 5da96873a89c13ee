/**
 * A Standard Webhooks receiver on 127.0.0.1 for tests: verifies every delivery's signature with
 * the `standardwebhooks` package, answers 500 to the first `failFirst` attempts, then 204, and
 * keeps what it accepted keyed by webhook-id (the idempotency key), counting repeats.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { onTestFinished } from 'vitest';

export interface Received {
  id: string;
  body: unknown;
}

export interface WebhookReceiver {
  url: string;
  /** Every attempt, verified or not. */
  attempts: { id: string | undefined; verified: boolean; status: number }[];
  /** Deliveries accepted, one per webhook id. */
  accepted: Map<string, Received>;
  /** Set how many attempts are refused before the receiver acknowledges. */
  failFirst(n: number): void;
}

export const TEST_WEBHOOK_SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

export async function startWebhookReceiver(
  secret = TEST_WEBHOOK_SECRET,
  failFirst = 0,
): Promise<WebhookReceiver> {
  const wh = new Webhook(secret);
  let refuse = failFirst;
  const attempts: WebhookReceiver['attempts'] = [];
  const accepted = new Map<string, Received>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const payload = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'] as string | undefined;
      let body: unknown;
      try {
        body = wh.verify(payload, {
          'webhook-id': id ?? '',
          'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
        });
      } catch {
        attempts.push({ id, verified: false, status: 401 });
        return void res.writeHead(401).end();
      }
      if (refuse > 0) {
        refuse--;
        attempts.push({ id, verified: true, status: 500 });
        return void res.writeHead(500).end();
      }
      attempts.push({ id, verified: true, status: 204 });
      if (id && !accepted.has(id)) accepted.set(id, { id, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/jobs`,
    attempts,
    accepted,
    failFirst: (n) => {
      refuse = n;
    },
  };
}
