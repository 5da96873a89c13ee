import { describe, expect, it } from 'vitest';
import { checkSpend } from '../../../src/actors/ai/guard.js';

const caps = { maxRequestsPerHour: 10, maxTokensPerHour: 1_000 };
const now = Date.parse('2026-03-01T10:20:00Z');

describe('spending guard', () => {
  it('allows calls under both caps', () => {
    expect(checkSpend({ requests: 9, tokens: 999 }, caps, now)).toEqual({ allowed: true });
  });

  it('stops at the request cap until the next clock hour, and says why', () => {
    const v = checkSpend({ requests: 10, tokens: 0 }, caps, now);
    expect(v).toMatchObject({
      allowed: false,
      cap: 'requests',
      resumesAt: Date.parse('2026-03-01T11:00:00Z'),
    });
    if (!v.allowed) expect(v.reason).toContain('AI_MAX_REQUESTS_PER_HOUR');
  });

  it('stops at the token cap', () => {
    const v = checkSpend({ requests: 1, tokens: 1_000 }, caps, now);
    expect(v).toMatchObject({ allowed: false, cap: 'tokens' });
    if (!v.allowed) expect(v.reason).toContain('1000/1000 tokens');
  });
});
