import { describe, expect, it, onTestFinished } from 'vitest';
import { openSqliteQueue } from '../../src/queue/sqlite.js';
import { tempDir } from '../helpers/tmp.js';
import { FakeClock, queueConformance } from './conformance.js';

queueConformance({
  name: 'sqlite',
  async store() {
    const dir = tempDir('qb-queue-');
    // Each open() is its own connection to the same file, like a second process.
    return { open: async (options) => openSqliteQueue(dir, options) };
  },
});

describe('sqlite queue: group commit', () => {
  it('commits concurrent operations together and resolves each only after the commit', async () => {
    const q = openSqliteQueue(tempDir('qb-queue-'), { clock: new FakeClock() });
    onTestFinished(() => q.close());
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => q.enqueue('g', i)));
    expect(results).toHaveLength(500);
    expect(q.maxBatch).toBeGreaterThan(1);
  });

  it('keeps synchronous=FULL on its connection by default', async () => {
    const dir = tempDir('qb-queue-');
    const q = openSqliteQueue(dir);
    onTestFinished(() => q.close());
    const other = openSqliteQueue(dir, { synchronous: 'NORMAL' });
    onTestFinished(() => other.close());
    // Read the pragma through the queue's own connection (test-only reach-in).
    expect(q.synchronousMode()).toBe('FULL');
    expect(other.synchronousMode()).toBe('NORMAL');
  });
});
