/**
 * A worker that dies right after the delivery's queue item completed must not leave the job
 * `approved` for ever. Found by `npm run chaos -- --peers 5 --minutes 6 --seed 8 --store postgres`:
 * the webhook was received, the item completed, the job stayed `approved`, and reconcile() could not
 * repair it (re-enqueueing with the job's key returns the completed item). The job (SQLite) and the
 * queue (SQLite connection of its own, or PostgreSQL) are two commits; the job must move first.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { DeliveryWorker } from '../../../src/actors/freelance/delivery.js';
import { SqliteExecutionCounter } from '../../../src/actors/freelance/executions.js';
import { SqliteJobStore } from '../../../src/actors/freelance/jobs.js';
import { FREELANCE_MIGRATIONS } from '../../../src/actors/freelance/migrations.js';
import { deliveryQueue, FreelancePipeline } from '../../../src/actors/freelance/pipeline.js';
import type { Queue } from '../../../src/queue/index.js';
import { openSqliteQueue } from '../../../src/queue/sqlite.js';
import { openDb } from '../../../src/store/db.js';
import { applyNamedMigrations } from '../../../src/store/migrations.js';
import { silentLogger } from '../../helpers/logger.js';
import { startWebhookReceiver, TEST_WEBHOOK_SECRET } from '../../helpers/webhook-receiver.js';

const OWNER = 'peer-1';

/** The queue of a process that dies right after `complete` commits: the call never returns. */
function dyingAfterComplete(queue: Queue): Queue {
  return new Proxy(queue, {
    get(target, key, receiver) {
      if (key === 'complete') {
        return async (...args: Parameters<Queue['complete']>) => {
          await target.complete(...args);
          return new Promise<never>(() => {});
        };
      }
      const value = Reflect.get(target, key, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('freelance delivery', () => {
  it('a job whose delivery completed is delivered, even when the worker died right after the queue commit', async () => {
    const db = openDb(':memory:');
    applyNamedMigrations(db, FREELANCE_MIGRATIONS);
    const queue = openSqliteQueue(':memory:');
    onTestFinished(() => queue.close());
    const receiver = await startWebhookReceiver();
    const jobs = new SqliteJobStore(db);
    const executions = new SqliteExecutionCounter(db);
    const logger = silentLogger();
    const worker = (q: Queue) =>
      new DeliveryWorker({
        queue: q,
        jobs,
        executions,
        queueName: deliveryQueue(OWNER),
        webhookUrl: receiver.url,
        webhookSecret: TEST_WEBHOOK_SECRET,
        maxAttempts: 8,
        maxExecutionsPerHour: 100,
        owner: OWNER,
        logger,
      });
    const pipeline = new FreelancePipeline({
      jobs,
      queue,
      rules: { keywords: [], excludeWords: [], minBudget: undefined },
      autoExecute: true,
      deliveryQueue: deliveryQueue(OWNER),
      wakeAi: () => {},
      wakeDelivery: () => {},
      logger,
    });
    const { job } = await jobs.add({ title: 'TypeScript API', source: 'api' }, 'awaiting-approval', null);

    // The first life of the worker: it delivers, the queue commits, and the process is gone.
    const first = worker(dyingAfterComplete(queue));
    first.start();
    onTestFinished(() => first.stop());
    await pipeline.approve(job.id, 'auto');
    await vi.waitFor(
      async () => {
        const items = await queue.list({ queue: deliveryQueue(OWNER) });
        expect(items.items.map((i) => i.state)).toEqual(['completed']);
      },
      { timeout: 10_000 },
    );
    expect(receiver.accepted.size).toBe(1);
    first.stop();

    // The next life: reconcile() and a fresh worker, as a respawned worker runs them.
    await pipeline.reconcile();
    const second = worker(queue);
    second.start();
    onTestFinished(() => second.stop());
    await vi.waitFor(async () => expect((await jobs.get(job.id))?.status).toBe('delivered'), {
      timeout: 5_000,
    });
    expect((await jobs.get(job.id))?.deliveryId).toBe([...receiver.accepted.keys()][0]);
  });
});
