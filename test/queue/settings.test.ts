import { describe, expect, it } from 'vitest';
import { backoffDelayMs, errorMessage, QueueSettingsTable } from '../../src/queue/settings.js';
import { DEFAULT_QUEUE_SETTINGS } from '../../src/queue/types.js';

describe('backoffDelayMs', () => {
  const s = { ...DEFAULT_QUEUE_SETTINGS, backoffBaseMs: 100, backoffMaxMs: 1_000, jitter: 0.5 };

  it('doubles from the base per attempt up to the cap (jitter factor 1 at random 0.5)', () => {
    expect([1, 2, 3, 4, 5, 6, 60].map((n) => backoffDelayMs(s, n, () => 0.5))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
  });

  it('keeps the jittered delay inside [1 - jitter, 1 + jitter] of the nominal one', () => {
    expect(backoffDelayMs(s, 3, () => 0)).toBe(200);
    expect(backoffDelayMs(s, 3, () => 0.999_999)).toBe(600);
    expect(backoffDelayMs({ ...s, jitter: 0 }, 3, Math.random)).toBe(400);
  });
});

describe('QueueSettingsTable', () => {
  it('merges defaults, per-queue settings and later definitions', () => {
    const t = new QueueSettingsTable({ defaults: { maxAttempts: 3 }, queues: { ai: { concurrency: 2 } } });
    expect(t.get('other')).toMatchObject({ maxAttempts: 3, concurrency: Number.POSITIVE_INFINITY });
    expect(t.get('ai')).toMatchObject({ maxAttempts: 3, concurrency: 2 });
    t.define('ai', { leaseMs: 5_000 });
    expect(t.get('ai')).toMatchObject({ concurrency: 2, leaseMs: 5_000 });
    expect(t.defined()).toEqual(['ai']);
  });

  it('refuses settings that would break the queue', () => {
    expect(() => new QueueSettingsTable({ defaults: { maxAttempts: 0 } })).toThrow(/maxAttempts/);
    expect(() => new QueueSettingsTable({ queues: { x: { jitter: 2 } } })).toThrow(/jitter/);
    expect(() => new QueueSettingsTable({ defaults: { retentionMs: -1 } })).toThrow(/retentionMs/);
  });
});

describe('errorMessage', () => {
  it('keeps a message for errors, strings and plain values', () => {
    expect(errorMessage(new Error('boom'))).toBe('boom');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage({ status: 503 })).toBe('{"status":503}');
  });
});
