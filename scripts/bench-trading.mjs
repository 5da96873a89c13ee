#!/usr/bin/env node
/**
 * Trading figures (npm run bench:trading):
 *   1. ticks per second through market data, strategy and ledger: the real engine (sim market, EMA
 *      crossover over 200 candles, paper broker, SQLite ledger in a temp folder) ticked back to back;
 *   2. a peer's start time (spawn to the first 200 from /health) and idle RSS with EXCHANGE=sim, and
 *      with a ccxt exchange (ccxt loaded; EXCHANGE_API_URL points at a closed local port, so nothing
 *      leaves the machine and the engine shows `reconnecting`). Medians of 3 runs each.
 * Needs the build. Binds only 127.0.0.1, uses temp folders, kills only what it started.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BOT_JS, freePort, HOST, killOnExit, requireBuild, rssBytes, sleep, until } from './lib/proc.mjs';

requireBuild();
const dist = (p) => new URL(`../dist/${p}`, import.meta.url).href;
const { TradingEngine } = await import(dist('actors/trading/engine.js'));
const { SimSource } = await import(dist('actors/trading/sim-source.js'));
const { PaperBroker } = await import(dist('actors/trading/paper-broker.js'));
const { TradingStore } = await import(dist('actors/trading/store.js'));
const { TRADING_MIGRATIONS } = await import(dist('actors/trading/migrations.js'));
const { EmaCrossover } = await import(dist('actors/trading/strategy.js'));
const { DEFAULT_LIMITS } = await import(dist('actors/trading/protections.js'));
const { openDb } = await import(dist('store/db.js'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const silent = { info() {}, warn() {}, error() {}, debug() {}, child: () => silent };

async function ticksPerSecond(ticks) {
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

const children = new Set();
killOnExit(() => {
  for (const c of children) c.kill('SIGKILL');
});

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

async function peer(extraEnv) {
  const dir = mkdtempSync(join(tmpdir(), 'qb-bench-trading-peer-'));
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(process.execPath, [BOT_JS], {
    cwd: dir,
    env: {
      PATH: process.env.PATH,
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
  children.add(child);
  await until('first /health', () => health(port), { timeoutMs: 30_000, intervalMs: 10 });
  const startMs = performance.now() - t0;
  // Let the trading subsystem start (and load ccxt where configured) and settle.
  await sleep(8_000);
  const rss = rssBytes(child.pid);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  children.delete(child);
  rmSync(dir, { recursive: true, force: true });
  return { startMs, rssMiB: rss / 2 ** 20 };
}

const rates = [];
let orders = 0;
for (let i = 0; i < 3; i++) {
  const r = await ticksPerSecond(3_000);
  rates.push(r.rate);
  orders = r.orders;
}
console.log(
  `ticks/s through strategy and ledger (sim, EMA 12/26 over 200 candles, SQLite ledger): ${Math.round(median(rates))} (median of 3 x 3000 ticks; ${orders} orders per run)`,
);

const rows = [];
for (const [label, env] of [
  ['EXCHANGE=sim', { EXCHANGE: 'sim' }],
  ['EXCHANGE=binance (ccxt loaded)', { EXCHANGE: 'binance', EXCHANGE_API_URL: 'http://127.0.0.1:9' }],
]) {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await peer(env));
  rows.push({
    label,
    startMs: median(runs.map((r) => r.startMs)),
    rssMiB: median(runs.map((r) => r.rssMiB)),
  });
}
console.log('\n| peer | start to /health | RSS after 8 s |');
console.log('| --- | --- | --- |');
for (const r of rows)
  console.log(`| ${r.label} | ${Math.round(r.startMs)} ms | ${r.rssMiB.toFixed(1)} MiB |`);
