/**
 * The trading ledger in PostgreSQL: what one peer commits another loads; every write is fenced by
 * the account lease (a stale token writes nothing); and two engines sharing the ledger through the
 * lease: one trades, the other stands by, and when the holder is paused past its lease the other
 * takes over from the persisted ledger while the paused one, resumed, places and writes nothing.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { TradingEngine } from '../../../src/actors/trading/engine.js';
import { AccountLease, acquireLease, type Fence } from '../../../src/actors/trading/lease.js';
import type { MarketInfo } from '../../../src/actors/trading/market.js';
import { PaperBroker } from '../../../src/actors/trading/paper-broker.js';
import { DEFAULT_LIMITS } from '../../../src/actors/trading/protections.js';
import { SimSource } from '../../../src/actors/trading/sim-source.js';
import type { OrderRecord } from '../../../src/actors/trading/store.js';
import { PgTradingStore } from '../../../src/actors/trading/store-pg.js';
import { EmaCrossover } from '../../../src/actors/trading/strategy.js';
import { silentLogger } from '../../helpers/logger.js';
import { type PostgresServer, postgresUnavailable, startPostgres } from '../../helpers/postgres.js';
import { tradingPool } from '../../helpers/trading-pg.js';

const pgMissing = postgresUnavailable();
if (pgMissing) console.warn(`skipping PostgreSQL ledger tests: ${pgMissing}`);

const ACCOUNT = 'paper:sim:shared';
const A = { peerId: 'peer-a', bootId: 'boot-a' };
const B = { peerId: 'peer-b', bootId: 'boot-b' };

let server: PostgresServer;
let databases = 0;

function order(clientOrderId: string, at: number): OrderRecord {
  return {
    id: `paper-${clientOrderId}`,
    clientOrderId,
    exchangeId: null,
    symbol: 'BTC/USDT',
    side: 'buy',
    type: 'market',
    amount: 0.01,
    price: null,
    status: 'closed',
    filled: 0.01,
    average: 60_000,
    fee: 0.6,
    reason: null,
    createdAt: at,
    updatedAt: at,
  };
}

async function holdLease(
  db: pg.Pool,
  who: { peerId: string; bootId: string },
  leaseMs: number,
): Promise<Fence> {
  let fence: Fence | undefined;
  await vi.waitFor(
    async () => {
      const r = await acquireLease(db, ACCOUNT, who, leaseMs);
      expect(r.acquired).toBe(true);
      if (r.acquired) fence = { token: r.token, ...who };
    },
    { timeout: 10_000, interval: 50 },
  );
  return fence as Fence;
}

describe.skipIf(pgMissing)('trading ledger in PostgreSQL', () => {
  beforeAll(async () => {
    server = await startPostgres({ fsync: false });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });
  const pool = () => tradingPool(server, `ledger_${++databases}`);

  it('what the holder commits, another peer loads: account, orders, fills, protections, equity', async () => {
    const db = await pool();
    const fence = await holdLease(db, A, 30_000);
    const a = new PgTradingStore(db, ACCOUNT);
    await a.load(fence);
    const t = 1_700_000_000_000;
    const account = a.loadAccount('USDT', 10_000, t);
    a.transaction(() => {
      a.insertOrder(order('qb1', t));
      a.insertFill(
        'paper-qb1',
        'BTC/USDT',
        'buy',
        { price: 60_000, amount: 0.01, fee: 0.6, role: 'taker' },
        t,
      );
      a.saveAccount({ ...account, state: { ...account.state, balances: { USDT: 9_399.4, BTC: 0.01 } } }, t);
    });
    a.trip('max-drawdown', 'test', t);
    a.recordEquity(t, 9_999);
    await a.flush();

    const b = new PgTradingStore(db, ACCOUNT);
    await b.load();
    expect(b.orderByClientId('qb1')).toMatchObject({ status: 'closed', filled: 0.01 });
    expect(b.fills(10)).toMatchObject([{ orderId: 'paper-qb1', price: 60_000, amount: 0.01 }]);
    expect(b.loadAccount('USDT', 10_000, t).state.balances).toEqual({ USDT: 9_399.4, BTC: 0.01 });
    expect([...b.latchedProtections().keys()]).toEqual(['max-drawdown']);
    expect(b.equityCurve(10)).toEqual([{ at: Math.floor(t / 60_000) * 60_000, equity: 9_999 }]);
    // Written under the lease: each row says with which token and by whom.
    const rows = await db.query(
      'SELECT lease_token, holder FROM trading_order UNION ALL SELECT lease_token, holder FROM trading_fill',
    );
    expect(rows.rows).toEqual([
      { lease_token: fence.token, holder: 'peer-a/boot-a' },
      { lease_token: fence.token, holder: 'peer-a/boot-a' },
    ]);
  });

  it('a stale token writes nothing: the old holder, resumed after a takeover, is refused', async () => {
    const db = await pool();
    const old = await holdLease(db, A, 300);
    const a = new PgTradingStore(db, ACCOUNT);
    await a.load(old);
    a.insertOrder(order('qb-before', 1));
    await a.flush();
    // A "pauses"; its lease expires and B takes the account with a higher token.
    const fresh = await holdLease(db, B, 30_000);
    expect(fresh.token).toBeGreaterThan(old.token);
    a.insertOrder(order('qb-stale', 2));
    const refused = a.flush();
    await expect(refused).rejects.toMatchObject({ code: 'QB_ERR_TRADING_LEASE_LOST' });
    const { rows } = await db.query('SELECT client_order_id FROM trading_order ORDER BY created_at');
    expect(rows.map((r) => r.client_order_id)).toEqual(['qb-before']);
    // B continues from what A committed, and writes under its own token.
    const b = new PgTradingStore(db, ACCOUNT);
    await b.load(fresh);
    expect(b.orderByClientId('qb-before')).toBeDefined();
    expect(b.orderByClientId('qb-stale')).toBeUndefined();
    b.insertOrder(order('qb-after', 3));
    await b.flush();
    // A duplicate client order id is refused by the database, whoever writes it.
    b.insertOrder(order('qb-after', 4));
    await expect(b.flush()).rejects.toMatchObject({ code: '23505' });
  });

  it('without the lease nothing is written, and a reset is refused with the reason', async () => {
    const db = await pool();
    const s = new PgTradingStore(db, ACCOUNT);
    await s.load();
    s.insertOrder(order('qb-x', 1));
    await expect(s.flush()).rejects.toMatchObject({ code: 'QB_ERR_TRADING_LEASE_LOST' });
    expect(() => s.reset('max-drawdown')).toThrow(/holds the account lease/);
    expect((await db.query('SELECT count(*)::int AS n FROM trading_order')).rows[0].n).toBe(0);
  });

  it('two engines, one shared ledger: one trades; the paused holder is taken over and can no longer write', async () => {
    const db = await pool();
    const leaseMs = 1_500;
    // B's clock can be moved ahead (by less than the stale-data limit) to reach its refresh interval.
    const skew = { ms: 0 };
    const make = (who: { peerId: string; bootId: string }) => {
      const now = who === B ? () => Date.now() + skew.ms : Date.now;
      const store = new PgTradingStore(db, ACCOUNT);
      const lease = new AccountLease({ db, account: ACCOUNT, ...who, leaseMs, logger: silentLogger() });
      const engine = new TradingEngine({
        // Every snapshot closes a candle: the crossover strategy decides often.
        openSource: async () => new SimSource(Date.now, { seed: 7 }, 60),
        broker: (markets: ReadonlyMap<string, MarketInfo>) =>
          new PaperBroker(store, markets, 'USDT', 100_000, { maxSlippage: 0.01 }, Date.now),
        store,
        strategy: new EmaCrossover({ fast: 2, slow: 4, allocation: 0.25 }),
        limits: {
          ...DEFAULT_LIMITS,
          maxOrderValue: 1e9,
          maxPositionValue: 1e9,
          maxOrdersPerMinute: 10_000,
          maxDailyLoss: 1e9,
          maxDrawdown: 1,
        },
        symbols: ['BTC/USDT', 'ETH/USDT'],
        killSwitchActive: () => false,
        now,
        logger: silentLogger(),
        lease,
      });
      onTestFinished(() => engine.stop());
      return { engine, store, lease };
    };
    const a = make(A);
    await a.engine.start();
    await vi.waitFor(() => expect(a.lease.verdict().mayTrade).toBe(true), { timeout: 10_000 });
    const b = make(B);
    await b.engine.start();
    // A trades until it has placed a few orders; B, ticking too, stands by and writes nothing.
    await vi.waitFor(
      async () => {
        await a.engine.tick();
        await b.engine.tick();
        expect(a.engine.view().counters.ordersPlaced).toBeGreaterThanOrEqual(3);
      },
      { timeout: 20_000, interval: 10 },
    );
    expect(b.engine.view()).toMatchObject({ state: 'standby', standby: { holder: 'peer-a' } });
    expect(b.engine.view().counters.ordersPlaced).toBe(0);
    // Standing by, B re-reads the shared ledger every 10 s: its view shows the account A trades.
    skew.ms = 11_000;
    await b.engine.tick();
    expect(b.engine.view().balances).toEqual(a.engine.view().balances);
    expect(b.engine.view().balances).not.toEqual({ USDT: 100_000 });

    // A pauses (no tick, no renewal: a stopped process); B takes over after the lease expires.
    (a.lease as unknown as { running: boolean }).running = false;
    await vi.waitFor(
      async () => {
        await b.engine.tick();
        expect(b.engine.view().state).toBe('running');
      },
      { timeout: 10_000, interval: 20 },
    );
    const placedByA = a.engine.view().counters.ordersPlaced;
    const ordersOfA = await db.query(
      "SELECT count(*)::int AS n FROM trading_order WHERE holder LIKE 'peer-a/%'",
    );
    expect(ordersOfA.rows[0].n).toBe(placedByA);
    expect(b.store.recentOrders(1_000).length).toBeGreaterThanOrEqual(placedByA);

    // A wakes up: past its local deadline it places nothing, and its ledger writes are refused.
    for (let i = 0; i < 20; i++) await a.engine.tick();
    expect(a.engine.view().state).toBe('standby');
    expect(a.engine.view().counters.ordersPlaced).toBe(placedByA);
    a.store.insertOrder(order('qb-zombie', Date.now()));
    await expect(a.store.flush()).rejects.toMatchObject({ code: 'QB_ERR_TRADING_LEASE_LOST' });

    // B trades on; tokens never go back, and each token has one holder.
    await vi.waitFor(
      async () => {
        await b.engine.tick();
        expect(b.engine.view().counters.ordersPlaced).toBeGreaterThanOrEqual(1);
      },
      { timeout: 20_000, interval: 10 },
    );
    const { rows } = await db.query<{ lease_token: number; holder: string }>(
      'SELECT lease_token, holder FROM trading_order ORDER BY written_at',
    );
    const tokens = rows.map((r) => r.lease_token);
    expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
    const holders = new Map<number, Set<string>>();
    for (const r of rows) holders.set(r.lease_token, (holders.get(r.lease_token) ?? new Set()).add(r.holder));
    for (const set of holders.values()) expect(set.size).toBe(1);
    expect(rows.at(-1)?.holder).toBe('peer-b/boot-b');

    // B continued from A's ledger: replaying every fill (A's and B's) from the opening balance gives
    // exactly the balances in the account row. A fresh ledger for B would not add up.
    b.engine.stop();
    const fills = await db.query<{
      symbol: string;
      side: string;
      price: number;
      amount: number;
      fee: number;
    }>('SELECT symbol, side, price, amount, fee FROM trading_fill ORDER BY seq');
    const replay: Record<string, number> = { USDT: 100_000 };
    for (const f of fills.rows) {
      const base = f.symbol.split('/')[0] as string;
      const sign = f.side === 'buy' ? 1 : -1;
      replay.USDT = (replay.USDT ?? 0) - sign * f.price * f.amount - f.fee;
      replay[base] = (replay[base] ?? 0) + sign * f.amount;
    }
    const { balances } = JSON.parse((await db.query('SELECT state FROM trading_account')).rows[0].state);
    for (const [currency, amount] of Object.entries(replay))
      expect(balances[currency] ?? 0).toBeCloseTo(amount, 6);
    expect(new Set(fills.rows.map((f) => f.symbol)).size).toBeGreaterThan(0);
  });
});
