#!/usr/bin/env node
/**
 * Trading figures (npm run bench:trading):
 *   1. ticks per second through market data, strategy and ledger: the real engine (sim market, EMA
 *      crossover over 200 candles, paper broker, SQLite ledger in a temp folder) ticked back to back;
 *   2. a peer's start time (spawn to the first 200 from /health), idle RSS and idle CPU with
 *      EXCHANGE=sim, and with a ccxt exchange (ccxt loaded; EXCHANGE_API_URL points at a closed local
 *      port, so nothing leaves the machine and the engine shows `reconnecting`). Medians of 3 runs.
 * `benchTicks()` and `benchPeerResources()` return the figures (npm run bench composes them).
 * Needs the build. Binds only 127.0.0.1, uses temp folders, kills only what it started.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  BOT_JS,
  cpuPercent,
  freePort,
  HOST,
  killOnExit,
  readStat,
  requireBuild,
  rssBytes,
  sleep,
  until,
} from './lib/proc.mjs';

const dist = (p) => import(new URL(`../dist/${p}`, import.meta.url).href);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent };

/** One run: `ticks` engine ticks back to back; resolves to `{rate, orders}`. */
export async function ticksPerSecond(ticks) {
  const [{ TradingEngine }, { SimSource }, { PaperBroker }, { TradingStore }, { TRADING_MIGRATIONS }] =
    await Promise.all([
      dist('actors/trading/engine.js'),
      dist('actors/trading/sim-source.js'),
      dist('actors/trading/paper-broker.js'),
      dist('actors/trading/store.js'),
      dist('actors/trading/migrations.js'),
    ]);
  const [{ EmaCrossover }, { DEFAULT_LIMITS }, { openDb }] = await Promise.all([
    dist('actors/trading/strategy.js'),
    dist('actors/trading/protections.js'),
    dist('store/db.js'),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'qb-bench-trading-'));
  const db = openDb(dir);
  for (const m of TRADING_MIGRATIONS) db.exec(m.sql);
  const store = new TradingStore(db, 'bench');
  // Simulated time advances one second per tick, so the data is never stale.
  let now = Date.now();
  const clock = () => now;
  const engine = new TradingEngine({
    openSource: async () => new SimSource(clock, { seed: 7 }),
    broker: (markets) => new PaperBroker(store, markets, 'USDT', 100_000, { maxSlippage: 0.01 }, clock),
    store,
    strategy: new EmaCrossover({ fast: 12, slow: 26, allocation: 0.02 }),
    limits: { ...DEFAULT_LIMITS, maxOrdersPerMinute: 1_000 },
    symbols: ['BTC/USDT'],
    killSwitchActive: () => false,
    now: clock,
    logger: silent,
  });
  await engine.start();
  const t0 = performance.now();
  for (let i = 0; i < ticks; i++) {
    now += 1_000;
    await engine.tick();
  }
  const seconds = (performance.now() - t0) / 1000;
  const orders = engine.view().counters.ordersPlaced;
  engine.stop();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  return { rate: ticks / seconds, orders };
}

/** `runs` runs of `ticks` ticks: `{median, runs: [rate...], orders}`. */
export async function benchTicks({ runs = 3, ticks = 3_000 } = {}) {
  const rates = [];
  let orders = 0;
  for (let i = 0; i < runs; i++) {
    const r = await ticksPerSecond(ticks);
    rates.push(r.rate);
    orders = r.orders;
  }
  return { median: median(rates), runs: rates, orders, ticks };
}

const children = new Set();
let exitHook = false;
function track(child) {
  if (!exitHook) {
    exitHook = true;
    killOnExit(() => {
      for (const c of children) c.kill('SIGKILL');
    });
  }
  children.add(child);
}

function health(port) {
  return new Promise((resolve) => {
    const req = get({ host: HOST, port, path: '/health', timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

/**
 * One peer (CONTINUOUS_MODE=false: one process) with `extraEnv`: ms from spawn to the first /health
 * 200, then after `settleMs` (the trading subsystem starts, ccxt loads where configured) its RSS,
 * and its CPU % over the next `idleMs` with nobody calling it (100 % = one core).
 */
export async function peerResources(extraEnv, { settleMs = 8_000, idleMs = 5_000 } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'qb-bench-trading-peer-'));
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [BOT_JS], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? dir,
      HOST,
      PORT: String(port),
      CONTINUOUS_MODE: 'false',
      LOG_LEVEL: 'warn',
      DATA_DIR: join(dir, 'data'),
      LOG_DIR: join(dir, 'logs'),
      ...extraEnv,
    },
    stdio: 'ignore',
  });
  track(child);
  const exited = new Promise((r) => child.once('exit', r));
  try {
    await until('first /health', () => health(port), { timeoutMs: 60_000, intervalMs: 10 });
    const startMs = performance.now() - t0;
    await sleep(settleMs);
    const rss = rssBytes(child.pid);
    const a = readStat(child.pid);
    const i0 = performance.now();
    await sleep(idleMs);
    const b = readStat(child.pid);
    const cpu = a && b ? cpuPercent(a, b, (performance.now() - i0) / 1000) : Number.NaN;
    return { startMs, rssMiB: rss / 2 ** 20, cpuPercent: cpu };
  } finally {
    child.kill('SIGTERM');
    await exited;
    children.delete(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

export const EXCHANGES = [
  { key: 'sim', label: 'EXCHANGE=sim', env: { EXCHANGE: 'sim' } },
  {
    key: 'ccxt',
    label: 'EXCHANGE=binance (ccxt loaded)',
    env: { EXCHANGE: 'binance', EXCHANGE_API_URL: 'http://127.0.0.1:9' },
  },
];

/**
 * Each of EXCHANGES `runs` times; one row each: `{key, label, startMs, rssMiB, cpuPercent}` (medians)
 * with the single runs in `runs`.
 */
export async function benchPeerResources({ runs = 3, settleMs, idleMs } = {}) {
  const rows = [];
  for (const { key, label, env } of EXCHANGES) {
    const all = [];
    for (let i = 0; i < runs; i++) all.push(await peerResources(env, { settleMs, idleMs }));
    rows.push({
      key,
      label,
      startMs: median(all.map((r) => r.startMs)),
      rssMiB: median(all.map((r) => r.rssMiB)),
      cpuPercent: median(all.map((r) => r.cpuPercent)),
      runs: all,
    });
  }
  return rows;
}

if (import.meta.main) {
  requireBuild();
  const ticks = await benchTicks();
  console.log(
    `ticks/s through strategy and ledger (sim, EMA 12/26 over 200 candles, SQLite ledger): ${Math.round(ticks.median)} (median of 3 x 3000 ticks; ${ticks.orders} orders per run)`,
  );
  const rows = await benchPeerResources();
  console.log('\n| peer | start to /health | RSS after 8 s | idle CPU over 5 s |');
  console.log('| --- | --- | --- | --- |');
  for (const r of rows)
    console.log(
      `| ${r.label} | ${Math.round(r.startMs)} ms | ${r.rssMiB.toFixed(1)} MiB | ${r.cpuPercent.toFixed(2)} % |`,
    );
}
