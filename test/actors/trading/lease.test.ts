/**
 * The account lease against a real PostgreSQL: acquire, renew, takeover after expiry with a higher
 * token, the database's clock (not the peers') deciding expiry, the local deadline measured from
 * the renewal's send time, and a failed renewal stopping trading at once.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  AccountLease,
  acquireLease,
  type Fence,
  releaseLease,
  renewLease,
} from '../../../src/actors/trading/lease.js';
import { silentLogger } from '../../helpers/logger.js';
import { type PostgresServer, postgresUnavailable, startPostgres } from '../../helpers/postgres.js';
import { tradingPool } from '../../helpers/trading-pg.js';

const pgMissing = postgresUnavailable();
if (pgMissing) console.warn(`skipping account lease tests: ${pgMissing}`);

let server: PostgresServer;
let databases = 0;

const A = { peerId: 'peer-a', bootId: 'boot-a' };
const B = { peerId: 'peer-b', bootId: 'boot-b' };
const ACCOUNT = 'paper:sim:test';

async function log(pool: pg.Pool) {
  const { rows } = await pool.query<{ event: string; holder_peer: string; token: number }>(
    'SELECT event, holder_peer, token FROM trading_lease_log ORDER BY seq',
  );
  return rows.map((r) => `${r.event} ${r.holder_peer} ${r.token}`);
}

describe.skipIf(pgMissing)('account lease in PostgreSQL', () => {
  beforeAll(async () => {
    server = await startPostgres({ fsync: false });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  const pool = () => tradingPool(server, `lease_${++databases}`);

  it('one holder at a time; renewal keeps the token; the log records each step', async () => {
    const db = await pool();
    const a = await acquireLease(db, ACCOUNT, A, 30_000);
    expect(a).toEqual({ acquired: true, token: 1 });
    const b = await acquireLease(db, ACCOUNT, B, 30_000);
    expect(b.acquired).toBe(false);
    if (b.acquired) throw new Error('unreachable');
    expect(b.holder).toMatchObject({ peerId: 'peer-a', bootId: 'boot-a', token: 1 });
    expect(b.remainingMs).toBeGreaterThan(25_000);
    expect(b.remainingMs).toBeLessThanOrEqual(30_000);
    const fence: Fence = { token: 1, ...A };
    expect(await renewLease(db, ACCOUNT, fence, 30_000)).toBe(true);
    // A renewal is not an acquisition: the token stays; another boot of the same peer is another holder.
    expect(await renewLease(db, ACCOUNT, { ...fence, bootId: 'other-boot' }, 30_000)).toBe(false);
    expect(await releaseLease(db, ACCOUNT, fence)).toBe(true);
    expect(await acquireLease(db, ACCOUNT, B, 30_000)).toEqual({ acquired: true, token: 2 });
    expect(await renewLease(db, ACCOUNT, fence, 30_000)).toBe(false);
    expect(await log(db)).toEqual([
      'acquired peer-a 1',
      'renewed peer-a 1',
      'released peer-a 1',
      'acquired peer-b 2',
    ]);
  });

  it('an expired lease is taken over with a higher token, and the old holder can no longer renew', async () => {
    const db = await pool();
    const first = await acquireLease(db, ACCOUNT, A, 300);
    if (!first.acquired) throw new Error('A should acquire a free lease');
    let taken: Awaited<ReturnType<typeof acquireLease>> | undefined;
    await vi.waitFor(
      async () => {
        taken = await acquireLease(db, ACCOUNT, B, 30_000);
        expect(taken.acquired).toBe(true);
      },
      { timeout: 10_000, interval: 50 },
    );
    if (!taken?.acquired) throw new Error('B should take the expired lease');
    expect(taken.token).toBeGreaterThan(first.token);
    expect(await renewLease(db, ACCOUNT, { token: first.token, ...A }, 30_000)).toBe(false);
    // A re-acquiring after losing it waits for B's lease like anyone else.
    expect((await acquireLease(db, ACCOUNT, A, 300)).acquired).toBe(false);
  });

  it('expiry is computed by the database clock: a peer whose wall clock is years off changes nothing', async () => {
    const db = await pool();
    const year = new Date().getUTCFullYear();
    vi.useFakeTimers({ toFake: ['Date'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    vi.setSystemTime(new Date('2045-01-01T00:00:00Z'));
    const lease = new AccountLease({ db, account: ACCOUNT, ...A, leaseMs: 20_000, logger: silentLogger() });
    lease.start();
    onTestFinished(() => lease.stop());
    await vi.waitFor(() => expect(lease.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    const { rows } = await db.query<{ left_ms: number; year: number }>(
      `SELECT extract(epoch FROM (expires_at - now())) * 1000 AS left_ms, extract(year FROM expires_at) AS year
       FROM trading_lease WHERE account = $1`,
      [ACCOUNT],
    );
    expect(Number(rows[0]?.year)).toBe(year);
    expect(Number(rows[0]?.left_ms)).toBeGreaterThan(15_000);
    expect(Number(rows[0]?.left_ms)).toBeLessThanOrEqual(20_000);
  });

  it('the local deadline counts from the SEND time of the renewal: a slow answer shortens it', async () => {
    const db = await pool();
    const clock = { t: 1_000 };
    const slowMs = 4_000;
    // Every statement "takes" 4 s of monotonic time: the answer arrives late.
    const slow = {
      query: (async (text: string, values?: unknown[]) => {
        const result = await db.query(text, values);
        clock.t += slowMs;
        return result;
      }) as unknown as pg.Pool['query'],
    };
    const leaseMs = 12_000;
    const lease = new AccountLease({
      db: slow,
      account: ACCOUNT,
      ...A,
      leaseMs,
      logger: silentLogger(),
      monotonic: () => clock.t,
    });
    lease.start();
    onTestFinished(() => lease.stop());
    await vi.waitFor(() => expect(lease.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    // Sent at t, answered at t + 4 s: orders may go until t + lease - margin, i.e. 4 s less from now.
    expect(lease.view().placeForMs).toBe(leaseMs - lease.marginMs - slowMs);
    // No renewal answered since (the loop renews in 4 s of real time): past the deadline, no order,
    // although the row in the database is still valid.
    clock.t += leaseMs - lease.marginMs - slowMs;
    expect(lease.verdict()).toMatchObject({ mayTrade: false });
    expect(lease.verdict().reason).toContain('could not be renewed in time');
  });

  it('a renewal that fails stops trading at once and is logged as lost', async () => {
    const db = await pool();
    let broken = false;
    const flaky = {
      query: (async (text: string, values?: unknown[]) => {
        if (broken) throw new Error('connection reset');
        return db.query(text, values);
      }) as unknown as pg.Pool['query'],
    };
    const lease = new AccountLease({
      db: flaky,
      account: ACCOUNT,
      ...A,
      leaseMs: 1_500,
      logger: silentLogger(),
    });
    lease.start();
    onTestFinished(() => lease.stop());
    await vi.waitFor(() => expect(lease.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    const token = lease.currentFence()?.token;
    broken = true;
    // The next renewal (a third of the lease later) fails: no more orders, long before the expiry.
    await vi.waitFor(() => expect(lease.verdict().mayTrade).toBe(false), { timeout: 1_400, interval: 20 });
    expect(lease.currentFence()).toBeNull();
    broken = false;
    // It comes back with a NEW token (the engine reloads the ledger under it).
    await vi.waitFor(() => expect(lease.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    expect(lease.currentFence()?.token).toBeGreaterThan(token ?? 0);
    expect(await log(db)).toContain(`acquired peer-a ${(token ?? 0) + 1}`);
  });

  it('a peer waiting for the lease takes it right after the holder stops renewing', async () => {
    const db = await pool();
    const leaseMs = 1_200;
    const a = new AccountLease({ db, account: ACCOUNT, ...A, leaseMs, logger: silentLogger() });
    const b = new AccountLease({ db, account: ACCOUNT, ...B, leaseMs, logger: silentLogger() });
    a.start();
    await vi.waitFor(() => expect(a.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    b.start();
    onTestFinished(() => b.stop());
    await vi.waitFor(() => expect(b.view().standby?.holder).toBe('peer-a'), { timeout: 10_000 });
    expect(b.verdict()).toMatchObject({ mayTrade: false, holder: { peerId: 'peer-a' } });
    // A dies without releasing: its loop just stops.
    (a as unknown as { running: boolean }).running = false;
    const stoppedAt = performance.now();
    await vi.waitFor(() => expect(b.verdict().mayTrade).toBe(true), { timeout: 10_000, interval: 20 });
    // Within the lease (plus scheduling slack on a loaded machine).
    expect(performance.now() - stoppedAt).toBeLessThan(leaseMs + 2_000);
    expect(b.currentFence()?.token).toBe(2);
  });

  it('a graceful stop releases the lease: the next peer takes it at once, not at the expiry', async () => {
    const db = await pool();
    const leaseMs = 60_000;
    const a = new AccountLease({ db, account: ACCOUNT, ...A, leaseMs, logger: silentLogger() });
    a.start();
    await vi.waitFor(() => expect(a.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    await a.stop();
    expect(a.verdict().mayTrade).toBe(false);
    expect(await acquireLease(db, ACCOUNT, B, leaseMs)).toEqual({ acquired: true, token: 2 });
    expect(await log(db)).toEqual(['acquired peer-a 1', 'released peer-a 1', 'acquired peer-b 2']);
  });
});
