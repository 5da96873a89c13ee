import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { openSqliteQueue } from '../../src/queue/sqlite.js';
import { QueueSummary, summariseDepths } from '../../src/queue/summary.js';
import { tempDir } from '../helpers/tmp.js';

const zero = { queued: 0, running: 0, completed: 0, failed: 0, dead: 0, cancelled: 0 };

describe('queue summary for the mesh', () => {
  it('gives the backlog per queue and the dead count, within the protocol limits', () => {
    expect(
      summariseDepths({
        ai: { ...zero, queued: 2, running: 1, failed: 1, completed: 9, dead: 3 },
        freelance: { ...zero, completed: 4 },
        [`x${'y'.repeat(40)}`]: { ...zero, queued: 1 },
      }),
    ).toEqual({ ai: 4, 'ai.dead': 3, freelance: 0 });
  });

  it('answers at once from a snapshot that refreshes in the background', async () => {
    const q = openSqliteQueue(tempDir('qb-summary-'));
    onTestFinished(() => q.close());
    const depths = vi.spyOn(q, 'depths');
    const summary = new QueueSummary(q, 50);
    expect(summary.current()).toEqual({});
    await q.enqueue('ai', 1);
    await vi.waitFor(() => expect(summary.current()).toEqual({ ai: 1 }));
    // Asked in a burst, it counts at most once per interval.
    const before = depths.mock.calls.length;
    for (let i = 0; i < 100; i++) summary.current();
    expect(depths.mock.calls.length - before).toBeLessThanOrEqual(1);
  });
});
