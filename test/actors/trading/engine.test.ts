import { describe, expect, it } from 'vitest';
import { TradingEngine } from '../../../src/actors/trading/engine.js';
import type { MarketInfo } from '../../../src/actors/trading/market.js';
import { TRADING_MIGRATIONS } from '../../../src/actors/trading/migrations.js';
import { PaperBroker } from '../../../src/actors/trading/paper-broker.js';
import { DEFAULT_LIMITS, type ProtectionLimits } from '../../../src/actors/trading/protections.js';
import { SimSource } from '../../../src/actors/trading/sim-source.js';
import { type MarketSnapshot, type MarketSource, UnknownSymbol } from '../../../src/actors/trading/source.js';
import { TradingStore } from '../../../src/actors/trading/store.js';
import type { Strategy } from '../../../src/actors/trading/strategy.js';
import { openDb } from '../../../src/store/db.js';
import { silentLogger } from '../../helpers/logger.js';
import { tempDir } from '../../helpers/tmp.js';

/** A strategy that wants a fixed position (or throws). */
function wants(target: number | (() => number)): Strategy {
  return {
    name: 'fixed',
    warmup: 0,
    decide: () => ({ targetPosition: typeof target === 'number' ? target : target(), reason: 'test' }),
  };
}

class NetworkError extends Error {}
class AuthenticationError extends Error {}

interface Rig {
  engine: TradingEngine;
  store: TradingStore;
  clock: { t: number };
  kill: { on: boolean };
  dataDir: string;
}

function rig(
  opts: {
    strategy?: Strategy;
    source?: MarketSource;
    limits?: Partial<ProtectionLimits>;
    dataDir?: string;
    symbols?: string[];
  } = {},
): Rig {
  const dataDir = opts.dataDir ?? tempDir();
  const db = openDb(dataDir);
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'trading_account'").get()) {
    for (const m of TRADING_MIGRATIONS) db.exec(m.sql);
  }
  const store = new TradingStore(db, 'paper:default');
  const clock = { t: 1_700_000_000_000 };
  const kill = { on: false };
  const now = () => clock.t;
  const engine = new TradingEngine({
    openSource: async () => opts.source ?? new SimSource(now, { seed: 1 }),
    broker: (markets: ReadonlyMap<string, MarketInfo>) =>
      new PaperBroker(store, markets, 'USDT', 100_000, { maxSlippage: 0.01 }, now),
    store,
    strategy: opts.strategy ?? wants(0.05),
    limits: { ...DEFAULT_LIMITS, maxOrdersPerMinute: 1_000, ...opts.limits },
    symbols: opts.symbols ?? ['BTC/USDT'],
    killSwitchActive: () => kill.on,
    now,
    logger: silentLogger(),
    secrets: ['SECRETKEY123'],
  });
  return { engine, store, clock, kill, dataDir };
}

/** A source that answers what `next` returns, or throws it. */
function scripted(next: (symbol: string) => MarketSnapshot | Error): MarketSource {
  const sim = new SimSource(() => Date.now(), { seed: 3 });
  return {
    exchange: 'scripted',
    loadMarkets: (symbols) => sim.loadMarkets(symbols),
    snapshot: async (symbol) => {
      const r = next(symbol);
      if (r instanceof Error) throw r;
      return r;
    },
    close: async () => {},
  };
}

describe('trading engine on the sim exchange', () => {
  it('turns the strategy’s wish into one paper order, and a restart places no duplicate', async () => {
    const a = rig();
    await a.engine.start();
    await a.engine.tick();
    expect(a.engine.view().positions[0]?.amount).toBeCloseTo(0.05);
    await a.engine.tick();
    expect(a.store.recentOrders(10)).toHaveLength(1);
    // A restart with the position already held wants nothing new.
    const b = rig({ dataDir: a.dataDir });
    await b.engine.start();
    await b.engine.tick();
    expect(b.store.recentOrders(10)).toHaveLength(1);
    expect(b.engine.view().pnl?.equity).toBeGreaterThan(99_000);
  });

  it('places nothing while the kill switch is on, and cancels open orders when stopped under it', async () => {
    const r = rig();
    await r.engine.start();
    r.kill.on = true;
    await r.engine.tick();
    expect(r.store.recentOrders(10)).toHaveLength(0);
    r.kill.on = false;
    // A resting order from before.
    const view = r.engine.view();
    expect(view.state).toBe('running');
    r.store.insertOrder({
      id: 'paper-x',
      clientOrderId: 'rest',
      symbol: 'BTC/USDT',
      side: 'buy',
      type: 'limit',
      amount: 0.01,
      price: 1,
      status: 'open',
      filled: 0,
      average: null,
      fee: 0,
      reason: null,
      createdAt: r.clock.t,
      updatedAt: r.clock.t,
    });
    r.kill.on = true;
    r.engine.stop();
    expect(r.store.openOrders()).toEqual([]);
    expect(r.store.recentOrders(1)[0]).toMatchObject({ status: 'canceled', reason: 'kill switch' });
  });
});

describe('trading engine against bad data and a failing exchange', () => {
  it('drops an absurd book, counts it, and places nothing', async () => {
    const sim = new SimSource(() => Date.now(), { seed: 5 });
    await sim.loadMarkets(['BTC/USDT']);
    const source = scripted(() => ({
      book: { symbol: 'BTC/USDT', bids: [[101, 1]], asks: [[100, 1]], timestamp: Date.now(), sequence: 1 },
      ticker: { symbol: 'BTC/USDT', last: 100, bid: 100, ask: 100.5, timestamp: Date.now() },
      candles: [],
    }));
    const r = rig({ source });
    r.clock.t = Date.now();
    await r.engine.start();
    await r.engine.tick();
    expect(r.engine.view().counters.droppedTicks).toBe(1);
    expect(r.store.recentOrders(10)).toHaveLength(0);
  });

  it('refuses an order on stale prices', async () => {
    const sim = new SimSource(() => 0, { seed: 5 });
    await sim.loadMarkets(['BTC/USDT']);
    const r = rig({
      source: {
        ...sim,
        exchange: 'old',
        loadMarkets: (s) => sim.loadMarkets(s),
        snapshot: (s) => sim.snapshot(s),
        close: async () => {},
      },
    });
    await r.engine.start();
    await r.engine.tick();
    expect(r.store.recentOrders(10)).toHaveLength(0);
    expect(r.engine.view().counters.ordersRefused).toBe(1);
  });

  it('shows reconnecting with backoff on network errors, recovers, and opens the breaker after repeated failures', async () => {
    let failing = true;
    const sim = new SimSource(() => Date.now(), { seed: 2 });
    await sim.loadMarkets(['BTC/USDT']);
    const source = scripted(() => new NetworkError('unused'));
    source.snapshot = async (symbol) => {
      if (failing) throw new NetworkError('connect ECONNREFUSED');
      return sim.snapshot(symbol);
    };
    const r = rig({ source, limits: { maxExchangeFailures: 3 } });
    r.clock.t = Date.now();
    await r.engine.start();
    await r.engine.tick();
    expect(r.engine.view().state).toBe('reconnecting');
    // Within the backoff nothing is tried.
    await r.engine.tick();
    expect(r.engine.view().counters.exchangeErrors).toBe(1);
    r.clock.t += 1_000;
    await r.engine.tick();
    r.clock.t += 2_000;
    await r.engine.tick();
    expect(r.engine.view().counters.exchangeErrors).toBe(3);
    expect(r.store.latchedProtections().has('exchange-breaker')).toBe(true);
    failing = false;
    r.clock.t = Date.now() + 10_000;
    await r.engine.tick();
    expect(r.engine.view().state).toBe('running');
    // The breaker holds until an operator resets it.
    expect(r.store.recentOrders(10)).toHaveLength(0);
    expect(r.engine.resetProtection('exchange-breaker')).toBe(true);
    r.clock.t += 1_000;
    await r.engine.tick();
    expect(r.store.recentOrders(10)).toHaveLength(1);
  });

  it('stops trading with a clear, scrubbed reason when the key is refused', async () => {
    const source = scripted(
      () =>
        new AuthenticationError(
          'binance {"code":-2015} GET https://x/api/v3/account?timestamp=1&signature=abcdef SECRETKEY123',
        ),
    );
    const r = rig({ source });
    await r.engine.start();
    await r.engine.tick();
    const v = r.engine.view();
    expect(v.state).toBe('blocked');
    expect(v.reason).toContain('refused the API key');
    expect(v.reason).not.toContain('abcdef');
    expect(v.reason).not.toContain('SECRETKEY123');
  });

  it('stops with a clear reason for a symbol the exchange does not list', async () => {
    const source = scripted(() => new Error('unused'));
    source.loadMarkets = async () => {
      throw new UnknownSymbol('NOPE/USDT', 'scripted');
    };
    const r = rig({ source, symbols: ['NOPE/USDT'] });
    await r.engine.start();
    expect(r.engine.view()).toMatchObject({ state: 'blocked', reason: 'scripted does not list NOPE/USDT' });
  });

  it('lets a throwing strategy fail the tick (the supervisor restarts the subsystem)', async () => {
    const r = rig({
      strategy: wants(() => {
        throw new Error('strategy bug');
      }),
    });
    await r.engine.start();
    await expect(r.engine.tick()).rejects.toThrow('strategy bug');
  });

  it('trips the daily-loss protection, persists it, and halts new entries', async () => {
    const r = rig({ limits: { maxDailyLoss: 1 } });
    await r.engine.start();
    await r.engine.tick();
    // Fake a bad day: the day's starting equity is far above the equity now.
    r.store.saveAccount(
      { ...(r.engine as unknown as { broker: PaperBroker }).broker.state, dayEquity: 1_000_000 },
      r.clock.t,
    );
    const again = rig({ dataDir: r.dataDir, strategy: wants(0.5), limits: { maxDailyLoss: 1 } });
    again.clock.t = r.clock.t;
    await again.engine.start();
    await again.engine.tick();
    expect(again.store.latchedProtections().has('max-daily-loss')).toBe(true);
    const p = again.engine.view().protections.find((x) => x.name === 'max-daily-loss');
    expect(p).toMatchObject({ state: 'tripped', latching: true });
    expect(again.store.recentOrders(10)).toHaveLength(1);
  });

  it('an exit that trips the daily-loss protection goes through, and the trip says the daily PnL', async () => {
    const r = rig({ limits: { maxDailyLoss: 1 } });
    await r.engine.start();
    await r.engine.tick();
    r.store.saveAccount(
      { ...(r.engine as unknown as { broker: PaperBroker }).broker.state, dayEquity: 1_000_000 },
      r.clock.t,
    );
    const exit = rig({ dataDir: r.dataDir, strategy: wants(0), limits: { maxDailyLoss: 1 } });
    exit.clock.t = r.clock.t;
    await exit.engine.start();
    await exit.engine.tick();
    expect(exit.store.recentOrders(10)).toHaveLength(2);
    expect(exit.engine.view().protections.find((x) => x.name === 'max-daily-loss')).toMatchObject({
      state: 'tripped',
      reason: expect.stringMatching(/^daily PnL -\d/),
    });
  });
});

describe('trading engine: one trader per account', () => {
  it('stands down while another peer holds the account, says why, and resumes when it is gone', async () => {
    let other = true;
    const dataDir = tempDir();
    const db = openDb(dataDir);
    for (const m of TRADING_MIGRATIONS) db.exec(m.sql);
    const store = new TradingStore(db, 'paper:sim:abc');
    const now = () => Date.now();
    const engine = new TradingEngine({
      openSource: async () => new SimSource(now, { seed: 1 }),
      broker: (markets) => new PaperBroker(store, markets, 'USDT', 100_000, { maxSlippage: 0.01 }, now),
      store,
      strategy: wants(0.05),
      limits: DEFAULT_LIMITS,
      symbols: ['BTC/USDT'],
      killSwitchActive: () => false,
      now,
      logger: silentLogger(),
      accountGuard: () =>
        other
          ? {
              mayTrade: false,
              holder: { peerId: 'peer-early', account: 'paper:sim:abc', since: 1 },
              contenders: [],
            }
          : { mayTrade: true, holder: null, contenders: [] },
    });
    await engine.start();
    await engine.tick();
    expect(engine.view()).toMatchObject({
      state: 'standby',
      reason: expect.stringContaining('traded by peer peer-early'),
      standby: { holder: 'peer-early', since: new Date(1).toISOString() },
    });
    expect(store.recentOrders(10)).toHaveLength(0);
    other = false;
    await engine.tick();
    expect(engine.view().state).toBe('running');
    expect(store.recentOrders(10)).toHaveLength(1);
  });

  it('serves the view from memory between ticks: /status does not read the ledger every time', async () => {
    const r = rig();
    await r.engine.start();
    await r.engine.tick();
    let reads = 0;
    for (const method of ['openOrders', 'latchedProtections'] as const) {
      const original = r.store[method].bind(r.store);
      r.store[method] = ((...args: never[]) => {
        reads += 1;
        return (original as (...a: never[]) => unknown)(...args);
      }) as never;
    }
    const first = r.engine.view();
    const readsForOneView = reads;
    expect(readsForOneView).toBeGreaterThan(0);
    for (let i = 0; i < 100; i++) expect(r.engine.view().positions).toEqual(first.positions);
    expect(reads).toBe(readsForOneView);
    // A tick (or an operator's reset) makes the next view fresh.
    r.clock.t += 1_000;
    await r.engine.tick();
    expect(r.engine.view().lastTickAt).toBe(new Date(r.clock.t).toISOString());
    expect(reads).toBeGreaterThan(readsForOneView);
  });

  it('counts an order placed a moment into the tick (real clocks): placed is placed', async () => {
    // The broker's clock runs ahead of the tick's time, as Date.now does during a tick.
    const r = rig();
    const later = () => r.clock.t + 7;
    const engine = new TradingEngine({
      openSource: async () => new SimSource(() => r.clock.t, { seed: 1 }),
      broker: (markets) => new PaperBroker(r.store, markets, 'USDT', 100_000, { maxSlippage: 0.01 }, later),
      store: r.store,
      strategy: wants(0.05),
      limits: { ...DEFAULT_LIMITS, maxOrdersPerMinute: 1_000 },
      symbols: ['BTC/USDT'],
      killSwitchActive: () => false,
      now: () => r.clock.t,
      logger: silentLogger(),
    });
    await engine.start();
    await engine.tick();
    expect(r.store.recentOrders(10)).toHaveLength(1);
    expect(engine.view().counters.ordersPlaced).toBe(1);
    // The same decision again is not a new order.
    await engine.tick();
    expect(engine.view().counters.ordersPlaced).toBe(1);
  });
});
