import { describe, expect, it } from 'vitest';
import { decodeTolerant, encode, MAX_SUMMARY_LINKS, message, type Summary } from '../../src/mesh/protocol.js';
import { advanceUptime, applyDelta, diffSummary } from '../../src/mesh/summary-delta.js';

const base: Summary = {
  peerId: 'a',
  bootId: 'a-boot',
  version: '1.0.0',
  uptime: 10,
  apiPort: 9001,
  killSwitch: { active: false, reason: '', since: '', origin: '', epoch: 0 },
  subsystems: [{ name: 'health', state: 'running', restarts: 0 }],
  queues: { work: 0 },
  links: [
    { peerId: 'b', state: 'connected' },
    { peerId: 'c', state: 'connected' },
  ],
};

describe('status summary deltas', () => {
  it('finds no change when only uptime moved', () => {
    expect(diffSummary(base, { ...base, uptime: 99 })).toBeUndefined();
  });

  it('carries only the fields and link entries that changed, and rebuilds the whole summary', () => {
    const next: Summary = {
      ...base,
      uptime: 15,
      queues: { work: 3 },
      extra: { trading: { pnl: 1 } },
      links: [
        { peerId: 'b', state: 'suspect' },
        { peerId: 'd', state: 'connected' },
      ],
    };
    const delta = diffSummary(base, next);
    expect(delta).toEqual({
      uptime: 15,
      set: { queues: { work: 3 }, extra: { trading: { pnl: 1 } } },
      links: {
        set: [
          { peerId: 'b', state: 'suspect' },
          { peerId: 'd', state: 'connected' },
        ],
        removed: ['c'],
      },
    });
    expect(applyDelta(base, delta ?? { uptime: 0 })).toEqual(next);
    // The base the receiver holds is not changed.
    expect(base.links).toHaveLength(2);
  });

  it('removes an optional field the sender no longer has', () => {
    const withExtra: Summary = { ...base, extra: { trading: { pnl: 1 } } };
    const delta = diffSummary(withExtra, base);
    expect(delta).toEqual({ uptime: 10, set: {}, unset: ['extra'] });
    expect(applyDelta(withExtra, delta ?? { uptime: 0 })).toEqual(base);
  });

  it('never lets a delta change the peer id or remove a required field', () => {
    const applied = applyDelta(base, { uptime: 11, set: { peerId: 'z' } as never, unset: ['bootId'] });
    expect(applied.peerId).toBe('a');
    expect(applied.bootId).toBe('a-boot');
  });

  it('keeps at most MAX_SUMMARY_LINKS links', () => {
    const many = Array.from({ length: MAX_SUMMARY_LINKS + 5 }, (_, i) => ({
      peerId: `p${i}`,
      state: 'connected' as const,
    }));
    const applied = applyDelta(base, { uptime: 1, links: { set: many, removed: [] } });
    expect(applied.links).toHaveLength(MAX_SUMMARY_LINKS);
  });

  it('round-trips a sequence of deltas through the wire format', () => {
    let held = base;
    let sent = base;
    const steps: Array<(s: Summary) => Summary> = [
      (s) => ({ ...s, uptime: 20, links: [...(s.links ?? []), { peerId: 'e', state: 'connected' }] }),
      (s) => ({ ...s, uptime: 25, subsystems: [{ name: 'health', state: 'failed', restarts: 1 }] }),
      (s) => ({ ...s, uptime: 30, killSwitch: { ...s.killSwitch, active: true, epoch: 1, origin: 'a' } }),
      (s) => ({ ...s, uptime: 35, links: s.links?.filter((l) => l.peerId !== 'b') }),
    ];
    steps.forEach((step, i) => {
      const next = step(sent);
      const delta = diffSummary(sent, next);
      expect(delta).toBeDefined();
      const decoded = decodeTolerant(
        encode(message('status-delta', { seq: i + 1, ...(delta ?? { uptime: 0 }) })),
      );
      if (decoded.kind !== 'message' || decoded.msg.type !== 'status-delta') throw new Error('not a delta');
      held = applyDelta(held, decoded.msg);
      sent = next;
      expect(held).toEqual(next);
    });
  });

  it('drops link states a newer peer sends and an invalid extra, keeping the delta', () => {
    const raw = JSON.stringify({
      type: 'status-delta',
      seq: 2,
      uptime: 3,
      set: { extra: 'not a record' },
      links: { set: [{ peerId: 'b', state: 'hibernating' }], removed: [] },
    });
    const decoded = decodeTolerant(raw);
    expect(decoded.kind).toBe('message');
    if (decoded.kind !== 'message' || decoded.msg.type !== 'status-delta') return;
    expect(decoded.ignored).toBe(1);
    expect(decoded.msg.links?.set).toEqual([]);
    expect(decoded.msg.set?.extra).toBeUndefined();
  });

  it('advances a held uptime by whole seconds since it was received', () => {
    expect(advanceUptime(base, 1_000, 1_500).uptime).toBe(10);
    expect(advanceUptime(base, 1_000, 4_200).uptime).toBe(13);
  });
});
