#!/usr/bin/env node
/**
 * GET /health against a bare fastify hello-world, in the same run: starts a real peer (`node bot.js`,
 * defaults, no MESH_SECRET so no discovery, temp dirs, a free 127.0.0.1 port) and the hello-world,
 * then runs autocannon against the hello-world, GET /health and GET /status, interleaved, and prints
 * req/s, p99 and each ratio to the hello-world. /health is a liveness probe hit often: it should
 * cost about what a bare route costs (goal: at least 0.8x).
 *
 * Usage: node scripts/bench-http.mjs [seconds-per-run] [rounds]      (npm run bench:http)
 * Defaults: 5 s per run, 2 rounds: 30 s of load in all. Needs the build (npm run build).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareHttp, formatComparison, startHelloWorld } from './lib/http-bench.mjs';
import { BOT_JS, childPids, freePort, HOST, killOnExit, requireBuild, until } from './lib/proc.mjs';

/** PIDs of the peers started here and still running. */
const spawned = new Set();

/**
 * Starts `node bot.js` and resolves to `{ url, stop }` once GET /status answers 200 (fully up).
 * @param {Record<string, string>} [env] added to the peer's environment
 */
export async function startPeer(env = {}) {
  const root = mkdtempSync(join(tmpdir(), 'qb-bench-http-'));
  const port = await freePort();
  const child = spawn(process.execPath, [BOT_JS], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? root,
      HOST,
      PORT: String(port),
      DATA_DIR: join(root, 'data'),
      LOG_DIR: join(root, 'logs'),
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  spawned.add(child.pid);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.once('exit', () => spawned.delete(child.pid));
  const url = `http://${HOST}:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    rmSync(root, { recursive: true, force: true });
  };
  try {
    await until('the peer to answer GET /status', async () => (await fetch(`${url}/status`)).ok, {
      timeoutMs: 60_000,
      intervalMs: 50,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  // Continuous mode: the worker, a child of `node bot.js`, serves the API.
  const worker = childPids(child.pid)[0] ?? child.pid;
  return { url, pid: child.pid, worker, stop };
}

/** Starts both servers, compares, stops both; resolves to the comparison rows. */
export async function benchHealth({ durationS = 5, rounds = 2 } = {}) {
  const peer = await startPeer();
  const hello = await startHelloWorld().catch(async (err) => {
    await peer.stop();
    throw err;
  });
  const stopAll = () => Promise.all([peer.stop(), hello.stop()]);
  try {
    return await compareHttp(
      [
        { name: 'hello-world', url: hello.url, pid: hello.pid },
        { name: '/health', url: `${peer.url}/health`, pid: peer.worker },
        { name: '/status', url: `${peer.url}/status`, pid: peer.worker },
      ],
      { durationS, rounds },
    );
  } finally {
    await stopAll();
  }
}

if (import.meta.main) {
  const durationS = Number(process.argv[2] ?? 5);
  const rounds = Number(process.argv[3] ?? 2);
  if (!(durationS > 0 && rounds > 0)) {
    console.error('usage: node scripts/bench-http.mjs [seconds-per-run > 0] [rounds > 0]');
    process.exit(2);
  }
  requireBuild();
  // The peer we spawned dies with us, even on Ctrl-C (its worker follows its supervisor).
  killOnExit(() => {
    for (const pid of spawned) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  });
  console.log(
    `quantum-bot HTTP: node ${process.version}, ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, autocannon 10 connections, ${durationS} s x ${rounds} rounds per target`,
  );
  const rows = await benchHealth({ durationS, rounds });
  for (const line of formatComparison(rows, 'hello-world')) console.log(line);
  const health = rows.find((r) => r.name === '/health');
  const hello = rows.find((r) => r.name === 'hello-world');
  console.log(
    `/health / hello-world: ${(health.reqPerSec / hello.reqPerSec).toFixed(2)} in req/s (goal >= 0.80), ` +
      `${(hello.cpuUsPerRequest / health.cpuUsPerRequest).toFixed(2)} in requests per CPU second`,
  );
}
