/**
 * The spending guard, a pure function: given this clock hour's usage and the caps, may another
 * provider call start? Requests are counted when a call starts, tokens when it answers, so a cap
 * is never passed by more than the calls already in flight.
 */
import { HOUR_MS } from './usage.js';

export interface SpendCaps {
  maxRequestsPerHour: number;
  maxTokensPerHour: number;
}

export type SpendVerdict =
  | { allowed: true }
  | { allowed: false; reason: string; resumesAt: number; cap: 'requests' | 'tokens' };

export function checkSpend(
  usage: { requests: number; tokens: number },
  caps: SpendCaps,
  now: number,
): SpendVerdict {
  const resumesAt = (Math.floor(now / HOUR_MS) + 1) * HOUR_MS;
  const at = new Date(resumesAt).toISOString();
  if (usage.requests >= caps.maxRequestsPerHour) {
    return {
      allowed: false,
      cap: 'requests',
      resumesAt,
      reason: `spending cap reached: ${usage.requests}/${caps.maxRequestsPerHour} requests this hour (AI_MAX_REQUESTS_PER_HOUR); resumes at ${at}`,
    };
  }
  if (usage.tokens >= caps.maxTokensPerHour) {
    return {
      allowed: false,
      cap: 'tokens',
      resumesAt,
      reason: `spending cap reached: ${usage.tokens}/${caps.maxTokensPerHour} tokens this hour (AI_MAX_TOKENS_PER_HOUR); resumes at ${at}`,
    };
  }
  return { allowed: true };
}
