#!/usr/bin/env node
/**
 * Measures one peer (`node bot.js`, continuous mode, defaults) and prints:
 *   1. time from spawning `node bot.js` to the first 200 from GET /health, and to the first 200 from
 *      GET /status (the whole app up), median of 5 starts, each with a fresh DATA_DIR (identity,
 *      token and SQLite are created as on a first boot): cold (an empty compile cache: a fresh HOME
 *      each time) and warm (one HOME whose cache an unmeasured start filled first);
 *   2. time from SIGKILL of the worker to GET /health answering 200 again (median of 5, each the
 *      first crash of a fresh peer, so the respawn backoff is its first step: 125-250 ms; warm cache);
 *   3. idle RSS (supervisor + worker, VmRSS of /proc/<pid>/status) and CPU % (utime + stime of
 *      /proc/<pid>/stat, delta over the window; 100 % = one core) over a window, 60 s by default;
 *   4. GET /health and GET /status throughput against a bare fastify hello-world in the same run
 *      (autocannon, 3 s each, scripts/lib/http-bench.mjs), as ratios.
 *
 * Usage: node scripts/measure-peer.mjs [idle-seconds]      (npm run bench:peer)
 * Needs the build (npm run build) and Linux /proc. It binds only 127.0.0.1 (a free port), uses temp
 * directories, runs without MESH_SECRET (no discovery), and kills only the processes it started.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compareHttp, formatComparison, startHelloWorld } from './lib/http-bench.mjs';
import {
  BOT_JS,
  childPids,
  cpuPercent as cpuBetween,
  freePort,
  HOST,
  isAlive,
  killOnExit,
  readStat,
  requireBuild,
  rssBytes,
  signalOurs,
  sleep,
  until,
} from './lib/proc.mjs';

const RUNS = 5;
const POLL_MS = 10;
/** After the first 200, let start-up work (JIT, first health sample) settle before the idle window. */
const IDLE_WARMUP_MS = 5_000;

const idleSeconds = Number(process.argv[2] ?? 60);
if (!Number.isFinite(idleSeconds) || idleSeconds <= 0) {
  console.error('usage: node scripts/measure-peer.mjs [idle-seconds > 0]');
  process.exit(2);
}
requireBuild();

// ----------------------------------------------------------------------------------------------
// Processes we started, each known by PID and start time, so nothing else is ever signalled.

/** @type {Map<number, string>} pid -> starttime */
const started = new Map();

/** Runs (a zombie counts as gone) and, when we started it, is still that same process. */
const isOurs = (pid) => isAlive(pid, started.get(pid));

function remember(pid) {
  const s = readStat(pid);
  if (s) started.set(pid, s.startTime);
}

function killOurs() {
  for (const [pid, startTime] of started) signalOurs(pid, startTime, 'SIGKILL');
}
killOnExit(killOurs);

// ----------------------------------------------------------------------------------------------

/** One GET on a fresh connection; resolves to the status code, or 0 when nothing answered. */
function probe(url) {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 2_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

async function untilHealthy(url, bot, timeoutMs = 60_000, path = '/health') {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (bot.exit) throw new Error(`node bot.js exited (${JSON.stringify(bot.exit)}):\n${bot.output()}`);
    if ((await probe(`${url}${path}`)) === 200) return performance.now();
    await sleep(POLL_MS);
  }
  throw new Error(`${url}${path} did not answer within ${timeoutMs} ms:\n${bot.output()}`);
}

/** @param {string} [home] HOME (where the compile cache lives); the run's own temp dir by default. */
async function startBot(home) {
  const root = mkdtempSync(join(tmpdir(), 'qb-bench-'));
  const port = await freePort();
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home ?? root,
    HOST,
    PORT: String(port),
    DATA_DIR: join(root, 'data'),
    LOG_DIR: join(root, 'logs'),
    LOG_LEVEL: 'info',
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, [BOT_JS], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  remember(child.pid);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s) => {
    out += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s) => {
    out += s;
  });
  const bot = {
    pid: child.pid,
    url: `http://${HOST}:${port}`,
    root,
    t0,
    exit: undefined,
    output: () => out,
    exited: new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        bot.exit = { code, signal };
        resolve(bot.exit);
      });
    }),
  };
  return bot;
}

async function worker(bot, not) {
  const pid = await until('the worker process', () => childPids(bot.pid, isOurs).find((p) => p !== not), {
    timeoutMs: 30_000,
    intervalMs: 5,
  });
  remember(pid);
  return pid;
}

async function stopBot(bot) {
  if (!bot.exit) {
    process.kill(bot.pid, 'SIGTERM');
    const timer = setTimeout(killOurs, 10_000);
    await bot.exited;
    clearTimeout(timer);
  }
  rmSync(bot.root, { recursive: true, force: true });
  return bot.exit;
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const ms = (x) => `${x.toFixed(0)} ms`;
const mib = (b) => `${(b / 1024 / 1024).toFixed(1)} MiB`;

async function main() {
  console.log(
    `quantum-bot peer measurements: node ${process.version}, ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${new Date().toISOString()}`,
  );

  /** One start: ms to the first /health 200 and to the first /status 200; the bot is stopped. */
  const timeStart = async (home) => {
    const bot = await startBot(home);
    const healthy = await untilHealthy(bot.url, bot);
    const up = await untilHealthy(bot.url, bot, 60_000, '/status');
    await stopBot(bot);
    return { health: healthy - bot.t0, status: up - bot.t0 };
  };
  const cold = [];
  for (let run = 1; run <= RUNS; run++) {
    const home = mkdtempSync(join(tmpdir(), 'qb-bench-home-'));
    cold.push(await timeStart(home));
    rmSync(home, { recursive: true, force: true });
    console.log(
      `  cold start ${run}: /health 200 ${ms(cold.at(-1).health)}, /status 200 ${ms(cold.at(-1).status)}`,
    );
  }
  const warmHome = mkdtempSync(join(tmpdir(), 'qb-bench-home-'));
  await timeStart(warmHome); // fills the compile cache
  const warm = [];
  for (let run = 1; run <= RUNS; run++) {
    warm.push(await timeStart(warmHome));
    console.log(
      `  warm start ${run}: /health 200 ${ms(warm.at(-1).health)}, /status 200 ${ms(warm.at(-1).status)}`,
    );
  }

  const recoveries = [];
  const backoffs = [];
  for (let run = 1; run <= RUNS; run++) {
    const bot = await startBot(warmHome);
    await untilHealthy(bot.url, bot);

    const first = await worker(bot);
    const killedAt = performance.now();
    process.kill(first, 'SIGKILL');
    // Once the old worker is gone its socket is closed: any 200 now comes from the new one.
    await until('the killed worker to be gone', () => !isOurs(first), { timeoutMs: 10_000, intervalMs: 5 });
    const back = await untilHealthy(bot.url, bot);
    recoveries.push(back - killedAt);
    await worker(bot, first);
    const delay = /"delayMs":(\d+)[^\n]*worker died; respawning/.exec(bot.output());
    backoffs.push(delay ? Number(delay[1]) : Number.NaN);

    const exit = await stopBot(bot);
    console.log(
      `  respawn ${run}: worker SIGKILL -> /health 200 ${ms(recoveries.at(-1))} (respawn backoff ${backoffs.at(
        -1,
      )} ms); SIGTERM exit ${exit.code}`,
    );
  }

  for (const [name, runs] of [
    ['cold', cold],
    ['warm', warm],
  ]) {
    console.log(
      `\n(1) node bot.js -> first 200, ${name} compile cache, median of ${RUNS}: /health ${ms(
        median(runs.map((r) => r.health)),
      )}, /status ${ms(median(runs.map((r) => r.status)))}`,
    );
    console.log(`    /health all: ${runs.map((r) => ms(r.health)).join(', ')}`);
    console.log(`    /status all: ${runs.map((r) => ms(r.status)).join(', ')}`);
  }
  console.log(
    `(2) worker SIGKILL -> /health 200 again: median ${ms(median(recoveries))} of ${RUNS}` +
      ` (of which respawn backoff median ${median(backoffs)} ms)`,
  );
  console.log(`    all: ${recoveries.map(ms).join(', ')}`);

  // Idle: a fresh peer with defaults, nobody calling it.
  const bot = await startBot(warmHome);
  await untilHealthy(bot.url, bot);
  const w = await worker(bot);
  await sleep(IDLE_WARMUP_MS);
  const pids = { supervisor: bot.pid, worker: w };
  const t0 = performance.now();
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, readStat(p)]));
  const rssSamples = { supervisor: [], worker: [] };
  const sampleEveryMs = Math.min(5_000, (idleSeconds * 1000) / 4);
  while (performance.now() - t0 < idleSeconds * 1000) {
    for (const [k, p] of Object.entries(pids)) rssSamples[k].push(rssBytes(p));
    await sleep(Math.min(sampleEveryMs, idleSeconds * 1000 - (performance.now() - t0)));
  }
  const elapsedS = (performance.now() - t0) / 1000;
  const cpu1 = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, readStat(p)]));
  if (!isOurs(w) || !isOurs(bot.pid)) throw new Error('a process died during the idle window');
  const rssEnd = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, rssBytes(p)]));
  const cpuPercent = (k) => cpuBetween(cpu0[k], cpu1[k], elapsedS);
  const avg = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

  console.log(
    `(3) idle over ${elapsedS.toFixed(1)} s (after ${IDLE_WARMUP_MS / 1000} s warm-up; CPU 100 % = one core):`,
  );
  for (const k of ['supervisor', 'worker']) {
    console.log(
      `    ${k.padEnd(10)} pid ${String(pids[k]).padEnd(7)} RSS ${mib(rssEnd[k])} (mean ${mib(
        avg(rssSamples[k]),
      )}), CPU ${cpuPercent(k).toFixed(2)} %`,
    );
  }
  console.log(
    `    total                 RSS ${mib(rssEnd.supervisor + rssEnd.worker)}, CPU ${(
      cpuPercent('supervisor') + cpuPercent('worker')
    ).toFixed(2)} %`,
  );

  // Throughput of the same peer against a bare fastify hello-world, measured in the same run.
  const hello = await startHelloWorld();
  try {
    const rows = await compareHttp(
      [
        { name: 'hello-world', url: hello.url, pid: hello.pid },
        { name: '/health', url: `${bot.url}/health`, pid: w },
        { name: '/status', url: `${bot.url}/status`, pid: w },
      ],
      { durationS: 3, rounds: 1 },
    );
    console.log('(4) HTTP throughput (autocannon, 10 connections, 3 s each):');
    for (const line of formatComparison(rows, 'hello-world')) console.log(line);
  } finally {
    await hello.stop();
  }
  await stopBot(bot);
  rmSync(warmHome, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  killOurs();
  process.exit(1);
});
