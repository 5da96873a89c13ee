import { describe, expect, it } from 'vitest';
import { backoffDelay } from '../../src/actors/backoff.js';

const policy = { baseMs: 100, maxMs: 10_000 };
const lowest = () => 0;
const highest = () => 1 - Number.EPSILON;

describe('backoffDelay', () => {
  it('doubles from the base: the lowest draw is half the ceiling, the highest the ceiling', () => {
    const ceilings = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
    ceilings.forEach((ceiling, i) => {
      expect(backoffDelay(i + 1, policy, lowest)).toBe(ceiling / 2);
      expect(backoffDelay(i + 1, policy, highest)).toBe(ceiling);
    });
  });

  it('keeps every delay within [d/2, d] of d = min(cap, base * 2^(n-1)) (equal jitter)', () => {
    for (let attempt = 1; attempt <= 40; attempt++) {
      const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const delay = backoffDelay(attempt, policy);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });

  it('never exceeds the cap, however many attempts', () => {
    for (const attempt of [20, 31, 64, 1000, Number.MAX_SAFE_INTEGER]) {
      const delay = backoffDelay(attempt, policy, highest);
      expect(delay).toBe(policy.maxMs);
      expect(Number.isFinite(delay)).toBe(true);
    }
  });

  it('treats an attempt below 1 as the first', () => {
    expect(backoffDelay(0, policy, highest)).toBe(100);
    expect(backoffDelay(-3, policy, lowest)).toBe(50);
  });

  it('spreads the delays of one attempt across its window', () => {
    const mid = backoffDelay(4, policy, () => 0.5);
    expect(mid).toBe(600);
  });
});
