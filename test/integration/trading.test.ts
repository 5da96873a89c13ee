/**
 * Trading in real peer processes (static discovery on 127.0.0.1): a fresh peer trades on paper out
 * of the box against the built-in sim exchange; two peers on one account over the mesh leave
 * exactly one trading, and the other takes over when the trader is killed; the kill switch halts
 * trading on every peer and survives a restart; a peer on a ccxt exchange (the local Binance)
 * takes its market data over the exchange's WebSocket streams.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { startFakeBinance } from '../helpers/fake-binance.js';
import { newSecret, startMesh } from '../helpers/mesh.js';
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
