/**
 * Delivery of an approved job by Standard Webhooks (standardwebhooks.com): the `standardwebhooks`
 * package signs `${id}.${timestamp}.${body}` with HMAC-SHA256 under the whsec_ secret. The webhook
 * id is fixed per job, so every retry carries the same one and the receiver can drop repeats.
 */
import type { Job } from './jobs.js';

export const WEBHOOK_EVENT = 'freelance.job.approved';

export interface DeliveryOutcome {
  ok: boolean;
  status?: number;
  message: string;
}

export function webhookIdFor(jobId: string): string {
  return `msg_freelance_${jobId}`;
}

export function deliveryBody(job: Job, approvedBy: 'operator' | 'auto', now: Date): string {
  return JSON.stringify({
    type: WEBHOOK_EVENT,
    timestamp: now.toISOString(),
    data: {
      approvedBy,
      job: {
        id: job.id,
        title: job.title,
        description: job.description,
        url: job.url,
        budget: job.budget,
        currency: job.currency,
        tags: job.tags,
        source: job.source,
      },
      proposal: job.proposal,
    },
  });
}

export async function deliver(
  url: string,
  secret: string,
  id: string,
  body: string,
  o: { timeoutMs: number; signal: AbortSignal; now?: Date },
): Promise<DeliveryOutcome> {
  const at = o.now ?? new Date();
  // Loaded with the first delivery: a peer that delivers nothing never pays for it.
  const { Webhook } = await import('standardwebhooks');
  const signature = new Webhook(secret).sign(id, at, body);
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': id,
        'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
        'webhook-signature': signature,
      },
      body,
      redirect: 'error',
      signal: AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs)]),
    });
    await res.body?.cancel();
    if (res.ok) return { ok: true, status: res.status, message: `acknowledged with ${res.status}` };
    return { ok: false, status: res.status, message: `receiver answered ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: { message?: string } };
    const reason =
      e.name === 'TimeoutError' ? `timed out after ${o.timeoutMs} ms` : (e.cause?.message ?? e.message);
    return { ok: false, message: `delivery failed: ${reason}` };
  }
}
