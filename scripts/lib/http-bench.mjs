/**
 * HTTP throughput measurement shared by the benchmark scripts (bench-http, measure-peer, and a later
 * `npm run bench`): autocannon against loopback URLs for a bounded time, and a bare fastify
 * hello-world in a process of its own as the yardstick. A ratio to the hello-world measured in the
 * same run says more than a req/s figure, which moves with the machine's load.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { CLK_TCK, freePort, HOST, readStat } from './proc.mjs';

/** Per measured URL; short enough for a shared machine, long enough for a stable average. */
export const DEFAULT_DURATION_S = 5;
export const DEFAULT_CONNECTIONS = 10;

/**
 * Hammers one URL and returns `{ url, reqPerSec, p99Ms, requests, non2xx, errors }`. Only loopback
 * URLs are accepted: a benchmark must never load someone else's server.
 * @param {string} url
 * @param {{ durationS?: number, connections?: number, headers?: Record<string, string> }} [options]
 */
export async function measureHttp(url, options = {}) {
  const { hostname } = new URL(url);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
    throw new Error(`measureHttp: ${url} is not a loopback address`);
  }
  const result = await autocannon({
    url,
    connections: options.connections ?? DEFAULT_CONNECTIONS,
    duration: options.durationS ?? DEFAULT_DURATION_S,
    headers: options.headers ?? {},
  });
  return {
    url,
    reqPerSec: result.requests.average,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

const HELLO_WORLD = fileURLToPath(new URL('./hello-world.mjs', import.meta.url));

/**
 * Starts a bare fastify hello-world (GET / -> {hello: 'world'}) in a child process on a free
 * loopback port; resolves to `{ url, pid, stop }` once it listens.
 */
export async function startHelloWorld() {
  const port = await freePort();
  const child = spawn(process.execPath, [HELLO_WORLD, String(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').once('data', resolve);
    child.once('exit', (code) => reject(new Error(`hello-world exited with ${code} before listening`)));
  });
  return {
    url: `http://${HOST}:${port}/`,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Measures each target in turn, `rounds` times interleaved (so a change of load on the machine
 * touches all of them alike), and returns per target the mean req/s and the worst p99, and, for a
 * target given with the `pid` of its server process, the CPU that process spent per request (utime +
 * stime from /proc): a figure a busy machine disturbs far less than req/s. Each target
 * first gets `warmupS` seconds of unrecorded load, so a process started just now (its JIT cold) is
 * not measured against warm ones.
 * @param {Array<{ name: string, url: string, pid?: number, headers?: Record<string, string> }>} targets
 * @param {{ rounds?: number, durationS?: number, connections?: number, warmupS?: number }} [options]
 */
export async function compareHttp(targets, options = {}) {
  const rounds = options.rounds ?? 2;
  const warmupS = options.warmupS ?? 1;
  const runs = new Map(targets.map((t) => [t.name, []]));
  for (const t of targets) {
    if (warmupS > 0) await measureHttp(t.url, { ...options, durationS: warmupS, headers: t.headers });
  }
  const cpuTicks = (pid) => {
    const s = pid === undefined ? undefined : readStat(pid);
    return s ? s.utime + s.stime : Number.NaN;
  };
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      const before = cpuTicks(t.pid);
      const run = await measureHttp(t.url, { ...options, headers: t.headers });
      run.cpuMs = ((cpuTicks(t.pid) - before) * 1000) / CLK_TCK;
      runs.get(t.name).push(run);
    }
  }
  return targets.map((t) => {
    const rs = runs.get(t.name);
    return {
      name: t.name,
      url: t.url,
      reqPerSec: rs.reduce((a, x) => a + x.reqPerSec, 0) / rs.length,
      p99Ms: Math.max(...rs.map((x) => x.p99Ms)),
      // Per round, for callers that take a median (npm run bench).
      reqPerSecRuns: rs.map((x) => x.reqPerSec),
      p99MsRuns: rs.map((x) => x.p99Ms),
      // NaN without a pid.
      cpuUsPerRequest: (rs.reduce((a, x) => a + x.cpuMs, 0) * 1000) / rs.reduce((a, x) => a + x.requests, 0),
      non2xx: rs.reduce((a, x) => a + x.non2xx, 0),
      errors: rs.reduce((a, x) => a + x.errors, 0),
    };
  });
}

/** The lines of a comparison table, each target's req/s also as a ratio to `baseline`'s. */
export function formatComparison(results, baseline) {
  const base = results.find((r) => r.name === baseline);
  return results.map((r) => {
    const ratio = base ? ` (${(r.reqPerSec / base.reqPerSec).toFixed(2)}x ${baseline})` : '';
    const bad = r.non2xx + r.errors > 0 ? `, ${r.non2xx} non-2xx, ${r.errors} errors` : '';
    const cpu = Number.isFinite(r.cpuUsPerRequest)
      ? `, server CPU ${r.cpuUsPerRequest.toFixed(0)} us/request${
          base && Number.isFinite(base.cpuUsPerRequest)
            ? ` (${(r.cpuUsPerRequest / base.cpuUsPerRequest).toFixed(2)}x)`
            : ''
        }`
      : '';
    return `  ${r.name.padEnd(12)} ${r.reqPerSec.toFixed(0).padStart(7)} req/s${ratio}, p99 ${r.p99Ms} ms${cpu}${bad}`;
  });
}
