/**
 * Process and port helpers shared by the measurement scripts (bench-mesh, measure-peer,
 * screenshot-dashboard): the built entry point, Linux /proc readings (state, CPU ticks, start time,
 * RSS, children), signals sent only to a process that /proc still shows as the one we started (no
 * PID-reuse accidents), free ports on 127.0.0.1, and small waits. Plain ESM, no dependencies.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const HOST = '127.0.0.1';
export const BOT_JS = fileURLToPath(new URL('../../bot.js', import.meta.url));
const MAIN_JS = fileURLToPath(new URL('../../dist/main.js', import.meta.url));

/** Exits with a hint when the build (dist/main.js, which bot.js runs) is missing. */
export function requireBuild() {
  if (!existsSync(MAIN_JS)) {
    console.error('dist/main.js is missing: run `npm run build` first');
    process.exit(1);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (sync or async; a throw counts as "not yet") until it returns a truthy value. */
export async function until(what, check, { timeoutMs = 30_000, intervalMs = 200 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ----------------------------------------------------------------------------------------------
// /proc

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export function readStat(pid) {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // f[0] is field 3 (state); utime, stime, starttime are fields 14, 15, 22.
    return { state: f[0], utime: Number(f[11]), stime: Number(f[12]), startTime: f[19] };
  } catch {
    return undefined;
  }
}

/** CPU % (100 % = one core) between two readStat() samples `seconds` apart. */
export const cpuPercent = (a, b, seconds) =>
  ((b.utime + b.stime - a.utime - a.stime) / CLK_TCK / seconds) * 100;

export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs (a zombie counts as gone) and, when `startTime` is given, is still that same process: a PID
 * with its start time names one process for its whole life.
 */
export function isAlive(pid, startTime) {
  const s = readStat(pid);
  return !!s && s.state !== 'Z' && s.state !== 'X' && (startTime === undefined || s.startTime === startTime);
}

/** Sends `signal` only while /proc shows the process started at `startTime`; nothing without one. */
export function signalOurs(pid, startTime, signal) {
  if (startTime === undefined || !isAlive(pid, startTime)) return;
  try {
    process.kill(pid, signal);
  } catch {
    // Gone meanwhile.
  }
}

/** Calls `killAll` when this process exits, and on SIGINT/SIGTERM before exiting with 130. */
export function killOnExit(killAll) {
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** The children of `pid` (every thread's list, as the kernel keeps them per thread) that `alive` keeps. */
export function childPids(pid, alive = (p) => isAlive(p)) {
  const pids = new Set();
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  for (const tid of tasks) {
    try {
      for (const w of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/)) {
        if (w) pids.add(Number(w));
      }
    } catch {}
  }
  return [...pids].filter((p) => alive(p));
}

// ----------------------------------------------------------------------------------------------
// Ports

/** A port on HOST that was free a moment ago (the kernel picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

export function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

/** MESH_PEERS for the peer on `port` of a static mesh on HOST: every other port. */
export const staticPeers = (ports, port) =>
  ports
    .filter((p) => p !== port)
    .map((p) => `${HOST}:${p}`)
    .join(',');
