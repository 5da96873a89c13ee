/**
 * A local exchange that speaks Binance's spot REST API (the parts ccxt's binance class uses for
 * markets, tickers, books, candles, balances and orders) and its WebSocket market streams
 * (fake-binance-streams.ts) on one port, so the real ccxt client runs against it through
 * EXCHANGE_API_URL. Prices come from the seeded sim market. Faults for tests: go down
 * (connections refused), answer 429 or 418, hold an order request past the client's timeout (the
 * order is still placed, as a real exchange may), reject an API key, and the streams' own faults.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeMarket } from './fake-binance-market.js';
import { type FakeBinanceStreams, startStreams } from './fake-binance-streams.js';

export interface FakeOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  side: 'BUY' | 'SELL';
  type: 'MARKET' | 'LIMIT';
  price: string;
  origQty: string;
  executedQty: string;
  cummulativeQuoteQty: string;
  status: 'NEW' | 'FILLED' | 'CANCELED';
  timeInForce: string;
  time: number;
  updateTime: number;
}

export interface FakeBinance {
  readonly url: string;
  readonly requests: { method: string; path: string; at: number }[];
  readonly orders: FakeOrder[];
  /** The WebSocket market streams on the same port. */
  readonly streams: FakeBinanceStreams;
  /** Refuse connections (the exchange is down) until `up()`. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** The next `count` requests answer `status` (429 rate limit, 418 IP ban). */
  failNext(status: 429 | 418, count: number): void;
  /** The next order placement is placed, but its answer waits `ms` (longer than the client's timeout). */
  delayNextOrder(ms: number): void;
  close(): Promise<void>;
}

const SYMBOLS: Record<string, { base: string; quote: string; price: number }> = {
  BTCUSDT: { base: 'BTC', quote: 'USDT', price: 60_000 },
  ETHUSDT: { base: 'ETH', quote: 'USDT', price: 3_000 },
};

export async function startFakeBinance(
  options: { secret?: string; apiKey?: string; streamIntervalMs?: number } = {},
): Promise<FakeBinance> {
  const markets = new Map(
    Object.entries(SYMBOLS).map(([id, s]) => [id, new FakeMarket(id, `${s.base}/${s.quote}`, s.price)]),
  );
  const streams = startStreams(markets, { intervalMs: options.streamIntervalMs });
  const requests: FakeBinance['requests'] = [];
  const orders: FakeOrder[] = [];
  const balances: Record<string, number> = { USDT: 100_000, BTC: 1, ETH: 10 };
  let failures: { status: number; count: number } = { status: 0, count: 0 };
  let orderDelayMs = 0;
  let nextOrderId = 1;

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      requests.push({ method: req.method ?? 'GET', path: url.pathname, at: Date.now() });
      const params = new URLSearchParams(url.search);
      for (const [k, v] of new URLSearchParams(body)) params.set(k, v);
      if (failures.count > 0) {
        failures.count -= 1;
        return send(res, failures.status, {
          code: -1003,
          msg: 'Too many requests; current limit is 1200 request weight per 1 MINUTE.',
        });
      }
      for (const m of markets.values()) m.advance();
      try {
        route(req.method ?? 'GET', url.pathname, params, req, res);
      } catch (err) {
        send(res, 400, { code: -1100, msg: (err as Error).message });
      }
    });
  };

  const route = (
    method: string,
    path: string,
    p: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
  ) => {
    const market = (id: string | null) => {
      const m = markets.get(id ?? '');
      if (!m) throw new Error('Invalid symbol.');
      return m;
    };
    if (path === '/api/v3/ping') return send(res, 200, {});
    if (path === '/api/v3/time') return send(res, 200, { serverTime: Date.now() });
    if (path === '/api/v3/exchangeInfo') return send(res, 200, exchangeInfo());
    if (path === '/api/v3/depth') {
      const m = market(p.get('symbol'));
      const book = m.book;
      const limit = Number(p.get('limit') ?? 100);
      return send(res, 200, {
        lastUpdateId: m.updateId,
        bids: book.bids.slice(0, limit).map(([px, q]) => [String(px), String(q)]),
        asks: book.asks.slice(0, limit).map(([px, q]) => [String(px), String(q)]),
      });
    }
    if (path === '/api/v3/ticker/24hr' || path === '/api/v3/ticker/bookTicker') {
      const m = market(p.get('symbol'));
      const t = m.sim.ticker();
      const b = m.book;
      return send(res, 200, {
        symbol: p.get('symbol'),
        priceChange: '0',
        priceChangePercent: '0',
        weightedAvgPrice: String(t.last),
        prevClosePrice: String(t.last),
        lastPrice: String(t.last),
        lastQty: '0.01',
        bidPrice: String(t.bid),
        bidQty: String(b.bids[0]?.[1] ?? 1),
        askPrice: String(t.ask),
        askQty: String(b.asks[0]?.[1] ?? 1),
        openPrice: String(t.last),
        highPrice: String(t.last),
        lowPrice: String(t.last),
        volume: '100',
        quoteVolume: String(100 * t.last),
        openTime: Date.now() - 86_400_000,
        closeTime: Date.now(),
        firstId: 1,
        lastId: 2,
        count: 2,
      });
    }
    if (path === '/api/v3/klines') {
      const limit = Number(p.get('limit') ?? 500);
      // As Binance does, the last candle is the one still forming.
      const sim = market(p.get('symbol')).sim;
      const candles = [...sim.candles(limit - 1), sim.forming()];
      return send(
        res,
        200,
        candles.map(([t, o, h, l, c, v]) => [
          t,
          String(o),
          String(h),
          String(l),
          String(c),
          String(v),
          t + 59_999,
          String(v * c),
          10,
          '0',
          '0',
          '0',
        ]),
      );
    }
    // Signed endpoints.
    if (options.apiKey && req.headers['x-mbx-apikey'] !== options.apiKey) {
      return send(res, 401, { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' });
    }
    if (options.secret) {
      const signature = p.get('signature');
      const unsigned = [...p.entries()]
        .filter(([k]) => k !== 'signature')
        .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
        .join('&');
      const expected = createHmac('sha256', options.secret).update(unsigned).digest('hex');
      if (signature !== expected)
        return send(res, 400, { code: -1022, msg: 'Signature for this request is not valid.' });
    }
    if (path === '/api/v3/account') {
      return send(res, 200, {
        makerCommission: 10,
        takerCommission: 10,
        canTrade: true,
        canWithdraw: true,
        canDeposit: true,
        updateTime: Date.now(),
        accountType: 'SPOT',
        balances: Object.entries(balances).map(([asset, free]) => ({
          asset,
          free: String(free),
          locked: '0',
        })),
        permissions: ['SPOT'],
      });
    }
    if (path === '/api/v3/order' && method === 'POST') {
      const clientOrderId = p.get('newClientOrderId') ?? `x-${nextOrderId}`;
      const existing = orders.find((o) => o.clientOrderId === clientOrderId && o.status !== 'CANCELED');
      if (existing) return send(res, 400, { code: -2010, msg: 'Duplicate order sent.' });
      const m = market(p.get('symbol'));
      const t = m.sim.ticker();
      const type = p.get('type') as 'MARKET' | 'LIMIT';
      const side = p.get('side') as 'BUY' | 'SELL';
      const qty = Number(p.get('quantity'));
      const price = type === 'LIMIT' ? Number(p.get('price')) : side === 'BUY' ? t.ask : t.bid;
      if (!(price > 0) || !(qty > 0))
        return send(res, 400, { code: -1013, msg: 'Filter failure: PRICE_FILTER' });
      const fills = type === 'MARKET' || (side === 'BUY' ? price >= t.ask : price <= t.bid);
      const order: FakeOrder = {
        symbol: p.get('symbol') ?? '',
        orderId: nextOrderId++,
        clientOrderId,
        side,
        type,
        price: type === 'LIMIT' ? String(price) : '0.00000000',
        origQty: String(qty),
        executedQty: fills ? String(qty) : '0',
        cummulativeQuoteQty: fills ? String(qty * price) : '0',
        status: fills ? 'FILLED' : 'NEW',
        timeInForce: 'GTC',
        time: Date.now(),
        updateTime: Date.now(),
      };
      orders.push(order);
      const answer = () => send(res, 200, { ...order, transactTime: order.time, fills: [] });
      if (orderDelayMs > 0) {
        const ms = orderDelayMs;
        orderDelayMs = 0;
        setTimeout(() => {
          if (!res.destroyed) answer();
        }, ms);
        return;
      }
      return answer();
    }
    const findOrder = () =>
      orders.find(
        (o) => String(o.orderId) === p.get('orderId') || o.clientOrderId === p.get('origClientOrderId'),
      );
    if (path === '/api/v3/order' && method === 'GET') {
      const o = findOrder();
      return o ? send(res, 200, o) : send(res, 400, { code: -2013, msg: 'Order does not exist.' });
    }
    if (path === '/api/v3/order' && method === 'DELETE') {
      const o = findOrder();
      if (o?.status !== 'NEW') return send(res, 400, { code: -2011, msg: 'Unknown order sent.' });
      o.status = 'CANCELED';
      o.updateTime = Date.now();
      return send(res, 200, o);
    }
    if (path === '/api/v3/openOrders' && method === 'GET') {
      return send(
        res,
        200,
        orders.filter((o) => o.status === 'NEW' && (!p.get('symbol') || o.symbol === p.get('symbol'))),
      );
    }
    return send(res, 404, { code: -1, msg: `not served by the fake exchange: ${method} ${path}` });
  };

  let server: Server = createServer(handler);
  await listen(server, 0);
  const port = (server.address() as AddressInfo).port;
  const sockets = new Set<import('node:net').Socket>();
  const track = (s: Server) =>
    s
      .on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      })
      .on('upgrade', (req, socket, head) => streams.handleUpgrade(req, socket, head));
  track(server);

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    orders,
    streams,
    async down() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
    async up() {
      server = createServer(handler);
      track(server);
      await listen(server, port);
    },
    failNext(status, count) {
      failures = { status, count };
    },
    delayNextOrder(ms) {
      orderDelayMs = ms;
    },
    async close() {
      streams.close();
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function listen(server: Server, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json;charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function exchangeInfo() {
  return {
    timezone: 'UTC',
    serverTime: Date.now(),
    rateLimits: [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 }],
    exchangeFilters: [],
    symbols: Object.entries(SYMBOLS).map(([symbol, s]) => ({
      symbol,
      status: 'TRADING',
      baseAsset: s.base,
      baseAssetPrecision: 8,
      quoteAsset: s.quote,
      quotePrecision: 8,
      quoteAssetPrecision: 8,
      baseCommissionPrecision: 8,
      quoteCommissionPrecision: 8,
      orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET', 'STOP_LOSS_LIMIT', 'TAKE_PROFIT_LIMIT'],
      icebergAllowed: true,
      ocoAllowed: true,
      otoAllowed: true,
      quoteOrderQtyMarketAllowed: true,
      allowTrailingStop: true,
      cancelReplaceAllowed: true,
      isSpotTradingAllowed: true,
      isMarginTradingAllowed: false,
      filters: [
        {
          filterType: 'PRICE_FILTER',
          minPrice: '0.01000000',
          maxPrice: '1000000.00000000',
          tickSize: '0.01000000',
        },
        { filterType: 'LOT_SIZE', minQty: '0.00001000', maxQty: '9000.00000000', stepSize: '0.00001000' },
        {
          filterType: 'NOTIONAL',
          minNotional: '5.00000000',
          applyMinToMarket: true,
          maxNotional: '9000000.00000000',
          applyMaxToMarket: false,
          avgPriceMins: 5,
        },
      ],
      permissions: [],
      permissionSets: [['SPOT']],
      defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
      allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
    })),
  };
}
