/**
 * Live orders through the real ccxt binance client against the local exchange: nothing is ever
 * placed twice (client order ids, look-up after a timeout), and a restart reconciles with the
 * exchange before anything new is placed.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { openCcxtSource } from '../../../src/actors/trading/ccxt-source.js';
import { LiveBroker } from '../../../src/actors/trading/live-broker.js';
import { TRADING_MIGRATIONS } from '../../../src/actors/trading/migrations.js';
import { TradingStore } from '../../../src/actors/trading/store.js';
import { openDb } from '../../../src/store/db.js';
import { startFakeBinance } from '../../helpers/fake-binance.js';
import { silentLogger } from '../../helpers/logger.js';
import { tempDir } from '../../helpers/tmp.js';

const KEY = 'live-test-api-key-0123456789';
const SECRET = 'live-test-secret-abcdefghijklmnop';
const book = { symbol: 'BTC/USDT', bids: [], asks: [], timestamp: 0, sequence: 0 };

async function exchange() {
  const fake = await startFakeBinance({ apiKey: KEY, secret: SECRET });
  onTestFinished(() => fake.close());
  return fake;
}

async function broker(fakeUrl: string, dataDir = tempDir(), timeoutMs = 2_000, mayPlace?: () => boolean) {
  const source = await openCcxtSource({
    exchange: 'binance',
    apiUrl: fakeUrl,
    apiKey: KEY,
    secret: SECRET,
    timeoutMs,
    useWebSocket: false,
  });
  onTestFinished(() => source.close());
  const markets = await source.loadMarkets(['BTC/USDT']);
  const db = openDb(dataDir);
  onTestFinished(() => {
    db.close();
  });
  if (!db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'trading_account'").get()) {
    for (const m of TRADING_MIGRATIONS) db.exec(m.sql);
  }
  const store = new TradingStore(db, 'live:binance:test');
  const b = new LiveBroker({
    client: source.client,
    store,
    markets,
    quote: 'USDT',
    now: Date.now,
    logger: silentLogger(),
    secrets: [KEY, SECRET],
    ...(mayPlace ? { mayPlace } : {}),
  });
  return { broker: b, store, dataDir };
}

describe('live broker', () => {
  it('places a market order under our client id, books the fill and reads balances', async () => {
    const fake = await exchange();
    const { broker: b, store } = await broker(fake.url);
    await b.reconcile();
    expect(b.state.state.balances.USDT).toBe(100_000);
    const o = await b.place(
      { clientOrderId: 'qbtest1', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.01 },
      book,
    );
    expect(o).toMatchObject({ status: 'closed', filled: 0.01 });
    expect(fake.orders).toHaveLength(1);
    expect(fake.orders[0]?.clientOrderId).toBe('qbtest1');
    expect(store.fills(10)).toHaveLength(1);
    expect(b.state.state.positions['BTC/USDT']?.amount).toBeCloseTo(0.01);
    // The same decision again places nothing.
    await b.place(
      { clientOrderId: 'qbtest1', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.01 },
      book,
    );
    expect(fake.orders).toHaveLength(1);
  });

  it('looks a timed-out order up instead of sending it again', async () => {
    const fake = await exchange();
    const { broker: b } = await broker(fake.url, tempDir(), 500);
    await b.reconcile();
    fake.delayNextOrder(1_500);
    const o = await b.place(
      { clientOrderId: 'qbslow', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.01 },
      book,
    );
    expect(o.status).toBe('closed');
    expect(o.reason).toBeNull();
    expect(fake.orders.filter((x) => x.clientOrderId === 'qbslow')).toHaveLength(1);
    expect(fake.requests.filter((r) => r.method === 'POST' && r.path === '/api/v3/order')).toHaveLength(1);
  });

  it('marks an order the exchange never got as rejected after the look-up, and never resends it', async () => {
    const fake = await exchange();
    const { broker: b, store } = await broker(fake.url);
    await b.reconcile();
    await fake.down();
    await expect(
      b.place(
        { clientOrderId: 'qblost', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.01 },
        book,
      ),
    ).rejects.toThrow();
    expect(store.orderByClientId('qblost')).toMatchObject({ status: 'open' });
    await fake.up();
    await b.reconcile();
    expect(store.orderByClientId('qblost')).toMatchObject({
      status: 'rejected',
      reason: 'the exchange has no such order',
    });
    expect(fake.orders).toHaveLength(0);
  });

  it('a restart reconciles open orders, fills made meanwhile, and orders only the exchange knows', async () => {
    const fake = await exchange();
    const first = await broker(fake.url);
    await first.broker.reconcile();
    const resting = await first.broker.place(
      { clientOrderId: 'qbrest', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 0.02, price: 1_000 },
      book,
    );
    expect(resting.status).toBe('open');
    // While the bot is down, the exchange fills it, and an order of ours that the database lost is open.
    const remote = fake.orders[0];
    if (!remote) throw new Error('no order at the exchange');
    Object.assign(remote, { status: 'FILLED', executedQty: '0.02', cummulativeQuoteQty: '20' });
    fake.orders.push({
      ...remote,
      orderId: 99,
      clientOrderId: 'qborphan',
      status: 'NEW',
      executedQty: '0',
      cummulativeQuoteQty: '0',
    });
    const again = await broker(fake.url, first.dataDir);
    await again.broker.reconcile();
    expect(again.store.orderByClientId('qbrest')).toMatchObject({
      status: 'closed',
      filled: 0.02,
      average: 1_000,
    });
    expect(again.store.fills(10)).toHaveLength(1);
    expect(
      again.store.orderByClientId('qborphan'),
      JSON.stringify(again.store.orderByClientId('qborphan')),
    ).toMatchObject({ status: 'open', exchangeId: '99' });
    expect(await again.broker.cancelAll('kill switch')).toBe(1);
    expect(fake.orders.find((o) => o.clientOrderId === 'qborphan')?.status).toBe('CANCELED');
  });

  it('records a refusal by the exchange as rejected, with the keys scrubbed from the reason', async () => {
    const fake = await exchange();
    const { broker: b } = await broker(fake.url);
    const o = await b.place(
      { clientOrderId: 'qbbad', symbol: 'BTC/USDT', side: 'buy', type: 'limit', amount: 0.01, price: -5 },
      book,
    );
    expect(o.status).toBe('rejected');
    expect(o.reason).not.toContain(KEY);
    expect(o.reason).not.toContain(SECRET);
  });

  it('sends nothing when the account lease ran out while the order was being committed', async () => {
    const fake = await exchange();
    let leaseHeld = true;
    const { broker: b, store } = await broker(fake.url, tempDir(), 2_000, () => leaseHeld);
    await b.reconcile();
    leaseHeld = false;
    const o = await b.place(
      { clientOrderId: 'qblate', symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 0.01 },
      book,
    );
    expect(o).toMatchObject({ status: 'rejected', reason: expect.stringContaining('lease ran out') });
    expect(fake.orders).toHaveLength(0);
    expect(store.orderByClientId('qblate')?.status).toBe('rejected');
  });
});
