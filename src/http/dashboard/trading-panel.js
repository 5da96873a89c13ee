// The trading panel: this peer's account (GET /trading, token required), the price of the first
// symbol as candles with the bot's fills on it, the equity curve, and the protections with a reset
// button for a tripped one. The chart library is served by the peer itself (/vendor), no CDN.
import { authorizedGet, authorizedPost, hasToken } from './app.js';

const REFRESH_MS = 5_000;
const $ = (id) => document.getElementById(id);
let charts = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

const num = (n, digits = 2) => (typeof n === 'number' ? n.toFixed(digits) : '—');

async function makeCharts() {
  const lib = await import('/vendor/lightweight-charts.mjs');
  const price = lib.createChart($('trading-price'), { autoSize: true, timeScale: { timeVisible: true } });
  const candles = price.addSeries(lib.CandlestickSeries, {});
  const markers = lib.createSeriesMarkers(candles, []);
  const equityChart = lib.createChart($('trading-equity'), {
    autoSize: true,
    timeScale: { timeVisible: true },
  });
  const equity = equityChart.addSeries(lib.LineSeries, { lineWidth: 2 });
  return { candles, markers, equity };
}

function render(t, candles, fills, equity) {
  $('trading-title').textContent = `${t.mode} on ${t.exchange} · ${t.strategy} · ${t.account}`;
  const state = $('trading-state');
  state.dataset.state = t.state;
  // How the market data arrives (ccxt exchanges): over the streams, or REST while one reconnects.
  const feed = t.feed
    ? ` · data over ${t.feed.transport === 'websocket' ? 'WebSocket' : 'REST polling'}${t.feed.stream === 'reconnecting' ? ' (stream reconnecting)' : ''}`
    : '';
  state.dataset.feed = t.feed?.stream ?? '';
  state.textContent = `${t.state}${t.reason ? `: ${t.reason}` : ''}${feed}`;
  const p = t.pnl ?? {};
  $('trading-pnl').replaceChildren(
    ...[
      ['equity', num(p.equity)],
      ['realised', num(p.realised)],
      ['unrealised', num(p.unrealised)],
      ['today', num(p.daily)],
      ['max drawdown', p.maxDrawdown === undefined ? '—' : `${num(p.maxDrawdown * 100, 1)} %`],
      ['win rate', p.winRate === null || p.winRate === undefined ? '—' : `${num(p.winRate * 100, 0)} %`],
      ['fees', num(p.fees)],
      ['open orders', String(t.openOrders?.length ?? 0)],
    ].flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]),
  );
  $('trading-positions').replaceChildren(
    ...(t.positions.length
      ? t.positions.map((x) =>
          el(
            'li',
            {},
            `${x.symbol}: ${x.amount} at ${num(x.averageCost)} (mark ${num(x.mark)}, PnL ${num(x.unrealisedPnl)})`,
          ),
        )
      : [el('li', { class: 'muted' }, 'none')]),
  );
  $('trading-protections').replaceChildren(
    ...t.protections.map((x) =>
      el(
        'li',
        { 'data-protection': x.name, 'data-protection-state': x.state },
        `${x.name}: ${x.state} (limit ${x.limit})${x.reason ? `: ${x.reason}` : ''} `,
        x.state === 'tripped'
          ? (() => {
              const b = el('button', { type: 'button', 'data-reset': x.name }, 'reset');
              b.onclick = async () => {
                if (await authorizedPost(`/trading/protections/${x.name}/reset`)) refresh();
              };
              return b;
            })()
          : null,
      ),
    ),
  );
  if (!charts) return;
  const toTime = (ms) => Math.floor(ms / 1000);
  charts.candles.setData(
    candles.map(([time, open, high, low, close]) => ({ time: toTime(time), open, high, low, close })),
  );
  const first = candles[0]?.[0] ?? 0;
  const symbol = t.symbols[0];
  // One marker per order: a market order that walked the book has a fill per level.
  const orders = new Map();
  for (const f of fills) {
    if (f.symbol !== symbol || f.at < first) continue;
    const o = orders.get(f.orderId) ?? { side: f.side, at: f.at, amount: 0 };
    o.amount += f.amount;
    o.at = Math.min(o.at, f.at);
    orders.set(f.orderId, o);
  }
  const markers = [...orders.values()]
    .sort((a, b) => a.at - b.at)
    .map((o) => ({
      time: toTime(Math.floor(o.at / 60_000) * 60_000),
      position: o.side === 'buy' ? 'belowBar' : 'aboveBar',
      color: o.side === 'buy' ? '#2e7d32' : '#c0392b',
      shape: o.side === 'buy' ? 'arrowUp' : 'arrowDown',
      text: `${o.side} ${Number(o.amount.toPrecision(6))}`,
    }));
  charts.markers.setMarkers(markers);
  // For tests and tools: the markers are drawn on a canvas, so the count is kept in the DOM too.
  $('trading-price').dataset.markers = String(markers.length);
  charts.equity.setData(equity.map((e) => ({ time: toTime(e.at), value: e.equity })));
}

async function refresh(interactive = false) {
  const panel = $('trading-panel');
  if (!hasToken() && !interactive) {
    // Without the token the panel says how to see the account, if this peer trades at all.
    const probe = await fetch('/trading').catch(() => null);
    panel.hidden = !probe || probe.status === 404;
    $('trading-locked').hidden = false;
    $('trading-body').hidden = true;
    return;
  }
  const t = await authorizedGet('/trading', { interactive });
  if (!t || t.error) {
    panel.hidden = t?.error === 404;
    return;
  }
  panel.hidden = false;
  $('trading-locked').hidden = true;
  $('trading-body').hidden = false;
  const symbol = encodeURIComponent(t.symbols[0] ?? '');
  const [c, f, e] = await Promise.all([
    authorizedGet(`/trading/candles?symbol=${symbol}`),
    authorizedGet('/trading/fills?limit=500'),
    authorizedGet('/trading/equity?limit=1440'),
  ]);
  charts ??= await makeCharts().catch(() => null);
  render(t, c?.candles ?? [], f?.fills ?? [], e?.equity ?? []);
}

$('trading-unlock').onclick = () => refresh(true);
refresh();
setInterval(() => refresh().catch(() => {}), REFRESH_MS);
