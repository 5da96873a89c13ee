/**
 * Restart delays: min(cap, base * 2^(attempt-1)), with "equal jitter": a delay lies in
 * [d/2, d], so restarts of many peers spread out while each keeps a guaranteed minimum wait.
 * Pure: the random source is injected.
 */

export interface BackoffPolicy {
  baseMs: number;
  maxMs: number;
}

/** @param attempt 1 for the first retry. @param random a number in [0, 1). */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
