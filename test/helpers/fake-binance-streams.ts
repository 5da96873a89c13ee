/**
 * Binance's spot WebSocket market streams, as ccxt pro's binance class uses them (read from
 * ccxt/js/src/pro/binance.js 4.5): it connects to `<urls.api.ws.spot>/<n>` (wss://stream.binance.com:9443/ws/0,
 * rebased here to ws://127.0.0.1:PORT/ws/0), sends `{"method":"SUBSCRIBE","params":["btcusdt@miniTicker"],"id":1}`
 * and expects `{"result":null,"id":1}`, then raw events (no combined-stream wrapper):
 * `24hrMiniTicker` / `24hrTicker` for <symbol>@miniTicker / @ticker (watchTicker), `depthUpdate`
 * diffs for <symbol>@depth@100ms (watchOrderBook, which takes a REST snapshot and applies diffs by
 * update id), and `kline` for <symbol>@kline_1m (watchOHLCV). Every `intervalMs` the markets step
 * and every subscriber gets its streams' events. Faults for tests: drop every connection (and
 * refuse new ones until accepted again), and corrupt the next events (price 0, NaN, crossed book).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Candle } from '../../src/actors/trading/market.js';
import type { FakeMarket } from './fake-binance-market.js';

export type StreamCorruption = 'zero-price' | 'nan-price' | 'crossed-book';

export interface FakeBinanceStreams {
  /** Every stream name subscribed, in order, over all connections. */
  readonly subscriptions: string[];
  /** WebSocket connections accepted so far. */
  readonly connections: () => number;
  /** Connections open now. */
  readonly open: () => number;
  /** Events sent so far, by kind (ticker, depth, kline). */
  readonly sent: Record<'ticker' | 'depth' | 'kline', number>;
  /** Closes every connection; with `refuse`, new ones are refused (HTTP 503) until `accept()`. */
  drop(options?: { refuse?: boolean }): void;
  accept(): void;
  /** The next `count` events of the kind carry the fault. */
  corruptNext(kind: StreamCorruption, count?: number): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  close(): void;
}

export function startStreams(
  markets: ReadonlyMap<string, FakeMarket>,
  options: { intervalMs?: number } = {},
): FakeBinanceStreams {
  const wss = new WebSocketServer({ noServer: true });
  const subs = new Map<WebSocket, Set<string>>();
  const subscriptions: string[] = [];
  const sent = { ticker: 0, depth: 0, kline: 0 };
  const corrupt: Record<StreamCorruption, number> = { 'zero-price': 0, 'nan-price': 0, 'crossed-book': 0 };
  let refusing = false;
  let accepted = 0;

  wss.on('connection', (ws) => {
    accepted += 1;
    subs.set(ws, new Set());
    ws.on('close', () => subs.delete(ws));
    ws.on('message', (data) => {
      let msg: { method?: string; params?: unknown; id?: unknown };
      try {
        msg = JSON.parse(String(data));
      } catch {
        return ws.send(JSON.stringify({ error: { code: 3, msg: 'Invalid JSON' } }));
      }
      const mine = subs.get(ws);
      const params = Array.isArray(msg.params) ? msg.params.map(String) : [];
      if (msg.method === 'SUBSCRIBE' && mine) {
        for (const p of params) {
          mine.add(p);
          subscriptions.push(p);
        }
        return ws.send(JSON.stringify({ result: null, id: msg.id }));
      }
      if (msg.method === 'UNSUBSCRIBE' && mine) {
        for (const p of params) mine.delete(p);
        return ws.send(JSON.stringify({ result: null, id: msg.id }));
      }
      if (msg.method === 'LIST_SUBSCRIPTIONS')
        return ws.send(JSON.stringify({ result: [...(mine ?? [])], id: msg.id }));
      ws.send(JSON.stringify({ error: { code: 2, msg: `Invalid request: ${msg.method}` }, id: msg.id }));
    });
  });

  const take = (kind: StreamCorruption): boolean => {
    if (corrupt[kind] <= 0) return false;
    corrupt[kind] -= 1;
    return true;
  };

  const lastClosed = new Map<FakeMarket, number>();
  const klines = new Map<FakeMarket, Candle[]>();
  const tick = () => {
    if (subs.size === 0) return;
    const now = Date.now();
    for (const market of markets.values()) {
      market.advance();
      const lower = market.id.toLowerCase();
      const wanted = [...subs.values()].some((s) => [...s].some((p) => p.startsWith(`${lower}@`)));
      if (!wanted) continue;
      const depthSubs = [...subs].filter(([, s]) => s.has(`${lower}@depth@100ms`) || s.has(`${lower}@depth`));
      // As Binance does: the forming candle at every push, a closed one once (x: true) as it closes.
      const forming = market.sim.forming();
      const closed = market.sim.candles(1)[0];
      const fresh = closed && closed[0] !== lastClosed.get(market) ? [closed] : [];
      if (closed) lastClosed.set(market, closed[0]);
      klines.set(market, [...fresh, forming]);
      const bestAsk = market.book.asks[0]?.[0] ?? 0;
      const event =
        depthSubs.length > 0
          ? market.depthEvent(take('crossed-book') ? [Math.round(bestAsk * 1.01 * 100) / 100, 1] : undefined)
          : undefined;
      for (const [ws, s] of subs) {
        if (event && (s.has(`${lower}@depth@100ms`) || s.has(`${lower}@depth`))) {
          sent.depth += 1;
          ws.send(
            JSON.stringify({
              e: 'depthUpdate',
              E: now,
              s: market.id,
              U: event.U,
              u: event.u,
              b: event.bids,
              a: event.asks,
            }),
          );
        }
        for (const channel of ['miniTicker', 'ticker'] as const) {
          if (!s.has(`${lower}@${channel}`)) continue;
          sent.ticker += 1;
          ws.send(JSON.stringify(tickerEvent(market, channel, now, take)));
        }
        if (s.has(`${lower}@kline_1m`)) {
          for (const [t, o, h, l, c, v] of klines.get(market) ?? []) {
            sent.kline += 1;
            ws.send(
              JSON.stringify({
                e: 'kline',
                E: now,
                s: market.id,
                k: {
                  t,
                  T: t + 59_999,
                  s: market.id,
                  i: '1m',
                  f: 1,
                  L: 2,
                  o: String(o),
                  c: String(c),
                  h: String(h),
                  l: String(l),
                  v: String(v),
                  n: 2,
                  x: t !== forming[0],
                  q: String(v * c),
                  V: '0',
                  Q: '0',
                  B: '0',
                },
              }),
            );
          }
        }
      }
    }
  };
  const timer = setInterval(tick, options.intervalMs ?? 100);

  return {
    subscriptions,
    connections: () => accepted,
    open: () => subs.size,
    sent,
    drop(o = {}) {
      refusing = o.refuse ?? false;
      for (const ws of wss.clients) ws.terminate();
    },
    accept() {
      refusing = false;
    },
    corruptNext(kind, count = 1) {
      corrupt[kind] = count;
    },
    handleUpgrade(req, socket, head) {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (refusing || !/^\/ws(\/\d+)?$/.test(path)) {
        socket.end(
          `HTTP/1.1 ${refusing ? '503 Service Unavailable' : '404 Not Found'}\r\nContent-Length: 0\r\n\r\n`,
        );
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    close() {
      clearInterval(timer);
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

function tickerEvent(
  market: FakeMarket,
  channel: 'miniTicker' | 'ticker',
  now: number,
  take: (kind: StreamCorruption) => boolean,
) {
  const t = market.sim.ticker();
  const last = take('zero-price') ? '0' : take('nan-price') ? 'NaN' : String(t.last);
  const base = {
    E: now,
    s: market.id,
    c: last,
    o: String(t.last),
    h: String(t.last),
    l: String(t.last),
    v: '100',
    q: String(100 * t.last),
  };
  if (channel === 'miniTicker') return { e: '24hrMiniTicker', ...base };
  const book = market.book;
  return {
    e: '24hrTicker',
    ...base,
    p: '0',
    P: '0',
    w: String(t.last),
    x: String(t.last),
    Q: '0.01',
    b: String(book.bids[0]?.[0] ?? t.bid),
    B: String(book.bids[0]?.[1] ?? 1),
    a: String(book.asks[0]?.[0] ?? t.ask),
    A: String(book.asks[0]?.[1] ?? 1),
    O: now - 86_400_000,
    C: now,
    F: 1,
    L: 2,
    n: 2,
  };
}
