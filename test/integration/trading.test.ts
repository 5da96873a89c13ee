/**
 * Trading in real peer processes (static discovery on 127.0.0.1): a fresh peer trades on paper out
 * of the box against the built-in sim exchange; two peers on one account over the mesh leave
 * exactly one trading, and the other takes over when the trader is killed; three peers sharing a
 * PostgreSQL leave exactly one trading under the account lease, and when it is SIGKILLed another
 * takes over within the lease from the persisted ledger, no order lost or duplicated; the kill
 * switch halts trading on every peer and survives a restart; a peer on a ccxt exchange (the local
 * Binance) takes its market data over the exchange's WebSocket streams.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { startFakeBinance } from '../helpers/fake-binance.js';
import { newSecret, startMesh } from '../helpers/mesh.js';
import { type PostgresServer, postgresUnavailable, startPostgres } from '../helpers/postgres.js';
import { type BotProcess, http, startBot } from '../helpers/process.js';

const TOKEN = 'trading-test-token-0123456789';

async function trading(
  bot: BotProcess,
): Promise<{ state: string; reason: string | null; [k: string]: unknown }> {
  const res = await bot.get('/status');
  return JSON.parse(res.body).trading;
}

describe('trading in real peers', () => {
  it('trades on paper out of the box (sim), shows the account only with the token', async () => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false', API_TOKEN: TOKEN } });
    await vi.waitFor(async () => expect((await trading(bot)).state).toBe('running'), { timeout: 20_000 });
    expect((await bot.get('/trading')).status).toBe(401);
    const res = await http(`${bot.url}/trading`, { token: TOKEN });
    expect(res.status).toBe(200);
    const account = JSON.parse(res.body);
    expect(account).toMatchObject({ mode: 'paper', exchange: 'sim', strategy: 'ema-crossover' });
    expect(account.balances.USDT).toBeGreaterThan(0);
    expect(account.protections.map((p: { name: string }) => p.name)).toContain('max-daily-loss');
  });

  it('two peers on one paper account: exactly one trades; kill it and the other takes over', async () => {
    const members = await startMesh({ peerIds: ['peer-a', 'peer-b'], secret: newSecret(), token: TOKEN });
    const states = async () => Promise.all(members.map(async (m) => (await trading(m.bot)).state));
    await vi.waitFor(async () => expect((await states()).sort()).toEqual(['running', 'standby']), {
      timeout: 30_000,
      interval: 250,
    });
    const [a, b] = members;
    if (!a || !b) throw new Error('two members');
    const holder = (await trading(a.bot)).state === 'running' ? a : b;
    const other = holder === a ? b : a;
    expect((await trading(other.bot)).reason).toContain(`traded by peer ${holder.peerId}`);
    await holder.bot.kill();
    await vi.waitFor(async () => expect((await trading(other.bot)).state).toBe('running'), {
      timeout: 20_000,
      interval: 250,
    });
  });

  it('the kill switch halts trading, and it stays halted across a restart', async () => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false', API_TOKEN: TOKEN } });
    await vi.waitFor(async () => expect((await trading(bot)).state).toBe('running'), { timeout: 20_000 });
    const res = await bot.post('/kill-switch', { activate: true, reason: 'test' }, TOKEN);
    expect(res.status).toBe(200);
    const subsystemState = async (b: BotProcess) =>
      JSON.parse((await b.get('/status')).body).subsystems.trading.state;
    await vi.waitFor(async () => expect(await subsystemState(bot)).toBe('halted'), { timeout: 10_000 });
    await bot.stop('SIGTERM');
    const again = await startBot({ env: { CONTINUOUS_MODE: 'false', API_TOKEN: TOKEN }, dirs: bot.dirs });
    await vi.waitFor(async () => expect(await subsystemState(again)).toBe('halted'), { timeout: 10_000 });
  });

  it('on a ccxt exchange, market data comes over its WebSocket streams, not REST polling', async () => {
    const fake = await startFakeBinance();
    onTestFinished(() => fake.close());
    const bot = await startBot({
      env: { CONTINUOUS_MODE: 'false', API_TOKEN: TOKEN, EXCHANGE: 'binance', EXCHANGE_API_URL: fake.url },
    });
    const account = async () => JSON.parse((await http(`${bot.url}/trading`, { token: TOKEN })).body);
    await vi.waitFor(
      async () =>
        expect(await account()).toMatchObject({
          exchange: 'binance',
          state: 'running',
          feed: { transport: 'websocket', stream: 'streaming' },
        }),
      { timeout: 30_000, interval: 250 },
    );
    expect(fake.streams.subscriptions).toEqual(
      expect.arrayContaining(['btcusdt@miniTicker', 'btcusdt@depth@100ms', 'btcusdt@kline_1m']),
    );
    const ticks = (await account()).counters.ticks;
    await vi.waitFor(async () => expect((await account()).counters.ticks).toBeGreaterThan(ticks + 2), {
      timeout: 15_000,
    });
    expect(fake.requests.filter((r) => r.path.startsWith('/api/v3/ticker'))).toEqual([]);
  });
});

const pgMissing = postgresUnavailable();
if (pgMissing) console.warn(`skipping the PostgreSQL account lease test: ${pgMissing}`);

describe.skipIf(pgMissing)('one trader per account with a shared PostgreSQL', () => {
  let server: PostgresServer;
  beforeAll(async () => {
    server = await startPostgres({ fsync: false });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('3 peers, one paper account: exactly one trades; SIGKILL it and another takes over within the lease, no order lost or duplicated', async () => {
    const url = await server.createDatabase('lease_fleet');
    const leaseMs = 3_000;
    const members = await startMesh({
      peerIds: ['peer-a', 'peer-b', 'peer-c'],
      secret: newSecret(),
      token: TOKEN,
      env: {
        DATABASE_URL: url,
        TRADING_LEASE: String(leaseMs),
        // A fast market on three symbols: a candle closes every tick, so orders come every few seconds.
        TRADING_SIM_SPEED: '60',
        TRADING_SYMBOLS: 'BTC/USDT,ETH/USDT,SOL/USDT',
        TRADING_MAX_ORDERS_PER_MINUTE: '1000',
        TRADING_TICK_INTERVAL: '1000',
      },
    });
    const db = new pg.Pool({ connectionString: url, max: 2 });
    db.on('error', () => undefined);
    try {
      const views = async () => Promise.all(members.map(async (m) => ({ m, t: await trading(m.bot) })));
      await vi.waitFor(
        async () =>
          expect((await views()).map((v) => v.t.state).sort()).toEqual(['running', 'standby', 'standby']),
        { timeout: 40_000, interval: 250 },
      );
      const first = (await views()).find((v) => v.t.state === 'running')?.m;
      if (!first) throw new Error('no holder');
      // The others say who trades the account (once their lease loop has seen the holder's row).
      await vi.waitFor(
        async () => {
          for (const v of await views()) {
            if (v.m !== first) expect(v.t.standby).toMatchObject({ holder: first.peerId });
          }
        },
        { timeout: 20_000, interval: 250 },
      );
      // The holder trades; remember how many orders it said it placed, until it is killed.
      let placedByFirst = 0;
      await vi.waitFor(
        async () => {
          placedByFirst = ((await trading(first.bot)).counters as { ordersPlaced: number }).ordersPlaced;
          expect(placedByFirst).toBeGreaterThanOrEqual(3);
        },
        { timeout: 60_000, interval: 200 },
      );
      await first.bot.kill();
      const killedAt = Date.now();
      const rest = members.filter((m) => m !== first);
      let second: (typeof members)[number] | undefined;
      await vi.waitFor(
        async () => {
          const states = await Promise.all(rest.map(async (m) => ({ m, t: await trading(m.bot) })));
          second = states.find((v) => v.t.state === 'running')?.m;
          expect(second).toBeDefined();
        },
        { timeout: 30_000, interval: 100 },
      );
      const takeoverMs = Date.now() - killedAt;
      console.log(`account lease takeover after SIGKILL: ${takeoverMs} ms (lease ${leaseMs} ms)`);
      expect(takeoverMs).toBeLessThan(leaseMs + 5_000);
      if (!second) throw new Error('no new holder');
      const third = rest.find((m) => m !== second);
      expect((await trading(third?.bot as BotProcess)).state).toBe('standby');
      // The new holder trades on from the shared ledger.
      await vi.waitFor(
        async () =>
          expect(
            ((await trading(second?.bot as BotProcess)).counters as { ordersPlaced: number }).ordersPlaced,
          ).toBeGreaterThanOrEqual(2),
        { timeout: 60_000, interval: 250 },
      );
      for (const m of rest) await m.bot.kill();

      // From the ledger: no order lost (every order the first holder reported is there), none
      // duplicated (client order ids unique), and the holders never overlap in time.
      const orders = (
        await db.query<{ client_order_id: string; holder: string; lease_token: string; written_ms: number }>(
          `SELECT client_order_id, holder, lease_token, extract(epoch FROM written_at) * 1000 AS written_ms
           FROM trading_order ORDER BY written_at, id`,
        )
      ).rows;
      const ids = orders.map((o) => o.client_order_id);
      expect(new Set(ids).size).toBe(ids.length);
      const byPeer = (peer: string) => orders.filter((o) => o.holder.startsWith(`${peer}/`));
      expect(byPeer(first.peerId).length).toBeGreaterThanOrEqual(placedByFirst);
      expect(byPeer(second.peerId).length).toBeGreaterThanOrEqual(2);
      expect(byPeer(third?.peerId as string)).toEqual([]);
      const tokens = orders.map((o) => Number(o.lease_token));
      expect(tokens).toEqual([...tokens].sort((x, y) => x - y));
      const spans = new Map<number, { holder: string; from: number; to: number }>();
      for (const o of orders) {
        const t = Number(o.lease_token);
        const span = spans.get(t) ?? {
          holder: o.holder,
          from: Number(o.written_ms),
          to: Number(o.written_ms),
        };
        expect(span.holder).toBe(o.holder);
        span.to = Number(o.written_ms);
        spans.set(t, span);
      }
      const ordered = [...spans.entries()].sort((x, y) => x[0] - y[0]).map(([, v]) => v);
      for (let i = 1; i < ordered.length; i++) {
        expect((ordered[i] as { from: number }).from).toBeGreaterThan((ordered[i - 1] as { to: number }).to);
      }

      // The lease log: each acquisition comes after every earlier lease's last expiry (by the
      // database's clock), so two peers never held the account at once.
      const log = (
        await db.query<{
          event: string;
          holder_peer: string;
          token: string;
          at_ms: number;
          expires_ms: number | null;
        }>(
          `SELECT event, holder_peer, token, extract(epoch FROM at) * 1000 AS at_ms,
             extract(epoch FROM expires_at) * 1000 AS expires_ms
           FROM trading_lease_log ORDER BY seq`,
        )
      ).rows;
      let expiresBefore = 0;
      let lastToken = 0;
      let lastHolder = '';
      for (const row of log) {
        if (row.event === 'acquired') {
          expect(Number(row.token)).toBeGreaterThan(lastToken);
          if (row.holder_peer !== lastHolder) expect(Number(row.at_ms)).toBeGreaterThanOrEqual(expiresBefore);
          lastToken = Number(row.token);
          lastHolder = row.holder_peer;
        }
        if (row.event !== 'lost' && row.expires_ms !== null)
          expiresBefore = Math.max(expiresBefore, Number(row.expires_ms));
      }
      expect(log.filter((r) => r.event === 'acquired').map((r) => r.holder_peer)).toEqual([
        first.peerId,
        second.peerId,
      ]);

      // The new holder continued from the persisted ledger: replaying every fill from the opening
      // balance gives exactly the account's balances (a lost or doubled fill would not add up).
      const fills = (
        await db.query<{ symbol: string; side: string; price: number; amount: number; fee: number }>(
          'SELECT symbol, side, price, amount, fee FROM trading_fill ORDER BY seq',
        )
      ).rows;
      const replay: Record<string, number> = { USDT: 10_000 };
      for (const f of fills) {
        const base = f.symbol.split('/')[0] as string;
        const sign = f.side === 'buy' ? 1 : -1;
        replay.USDT = (replay.USDT ?? 0) - sign * f.price * f.amount - f.fee;
        replay[base] = (replay[base] ?? 0) + sign * f.amount;
      }
      const { balances } = JSON.parse((await db.query('SELECT state FROM trading_account')).rows[0].state);
      for (const [currency, amount] of Object.entries(replay)) {
        expect(balances[currency] ?? 0).toBeCloseTo(amount, 6);
      }
    } finally {
      await db.end();
    }
  }, 240_000);
});
