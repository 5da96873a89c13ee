import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { openPostgresQueue } from '../../src/queue/postgres.js';
import { startFreezableProxy } from '../helpers/freezable-proxy.js';
import { type PostgresServer, postgresUnavailable, startPostgres } from '../helpers/postgres.js';
import { at, FakeClock, queueConformance } from './conformance.js';

const unavailable = postgresUnavailable();
if (unavailable) console.warn(`skipping the PostgreSQL queue conformance suite: ${unavailable}`);

describe.skipIf(unavailable !== null)('postgres backend', () => {
  let server: PostgresServer;
  let n = 0;
  beforeAll(async () => {
    server = await startPostgres({ fsync: false });
  });
  afterAll(() => server?.stop());

  queueConformance({
    name: 'postgres',
    async store() {
      // A database per test: each one starts empty and runs the named migrations itself.
      const url = await server.createDatabase(`queue_test_${++n}`);
      return {
        open: (options) => openPostgresQueue({ ...options, connectionString: url, maxConnections: 4 }),
      };
    },
  });

  it('fails only the call whose connection is lost inside a transaction; the queue goes on', async () => {
    // Unhandled, the 'error' a checked-out pg client emits when its connection drops would be an
    // uncaught exception: the whole peer would crash (vitest reports it as an unhandled error).
    const url = await server.createDatabase(`queue_test_${++n}`);
    const proxy = await startFreezableProxy(server.port);
    const q = await openPostgresQueue({
      clock: new FakeClock(),
      maxConnections: 2,
      connectionString: url.replace(`:${server.port}/`, `:${proxy.port}/`),
    });
    onTestFinished(async () => {
      await proxy.close();
      await q.close();
    });
    const { item } = await q.enqueue('w', 1);
    const a = at(await q.claim('w', { owner: 'peer-a' }));
    const frozen = proxy.freezeOn('COMMIT');
    const failing = q.fail(a.claim, 'boom');
    await frozen;
    proxy.reset();
    // The cut transaction rolled back; an outcome is settled again on a new connection while its
    // lease is valid (see #settle), exactly once.
    await expect(failing).resolves.toMatchObject({ state: 'failed', lastError: 'boom', attempts: 1 });
    expect(await q.get(item.id)).toMatchObject({ state: 'failed', attempts: 1 });
    const other = at(await q.enqueue('w', 2).then(() => q.claim('w', { owner: 'peer-a' })));
    expect(await q.complete(other.claim, 'done')).toMatchObject({ state: 'completed', result: 'done' });
  });

  it('takes over the lease of a peer whose machine vanished in the middle of a transaction', async () => {
    // A lost machine sends no FIN: without a limit the server keeps its session idle in the
    // transaction, with the item's row locked, until TCP keepalive gives up (about 2 h on Linux);
    // every other peer's claim skips the locked row, so the item stays `running` all that time.
    const url = await server.createDatabase(`queue_test_${++n}`);
    const proxy = await startFreezableProxy(server.port);
    const clock = new FakeClock();
    const options = { clock, defaults: { leaseMs: 1_000 }, maxConnections: 2 };
    const lost = await openPostgresQueue({
      ...options,
      connectionString: url.replace(`:${server.port}/`, `:${proxy.port}/`),
      idleInTransactionTimeoutMs: 500,
    });
    const live = await openPostgresQueue({ ...options, connectionString: url });
    onTestFinished(async () => {
      // The lost host's sockets finally reset, so its pending call settles and close() returns.
      await proxy.close();
      await Promise.all([lost.close(), live.close()]);
    });
    const { item } = await lost.enqueue('w', 1);
    const a = at(await lost.claim('w', { owner: 'peer-a' }));
    // The machine vanishes after the failure's UPDATE, just before its COMMIT: the row stays locked.
    const frozen = proxy.freezeOn('COMMIT');
    lost.fail(a.claim, 'boom').catch(() => undefined);
    await frozen;
    clock.advance(1_000);
    await vi.waitFor(
      async () => {
        const taken = await live.claim('w', { owner: 'peer-b' });
        expect(taken.map((c) => c.id)).toEqual([item.id]);
        expect(taken[0]).toMatchObject({ attempts: 2, lastError: 'lease expired' });
      },
      { timeout: 15_000, interval: 100 },
    );
  });
});
