/**
 * HTTP throughput measurement shared by the benchmark scripts (bench-http, measure-peer, and a later
 * `npm run bench`): autocannon against loopback URLs for a bounded time, and a bare fastify
 * hello-world in a process of its own as the yardstick. A ratio to the hello-world measured in the
 * same run says more than a req/s figure, which moves with the machine's load.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { freePort, HOST } from './proc.mjs';

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
 * touches all of them alike), and returns per target the mean req/s and the worst p99.
 * @param {Array<{ name: string, url: string, headers?: Record<string, string> }>} targets
 * @param {{ rounds?: number, durationS?: number, connections?: number }} [options]
 */
export async function compareHttp(targets, options = {}) {
  const rounds = options.rounds ?? 2;
  const runs = new Map(targets.map((t) => [t.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (const t of targets) {
      runs.get(t.name).push(await measureHttp(t.url, { ...options, headers: t.headers }));
    }
  }
  return targets.map((t) => {
    const rs = runs.get(t.name);
    return {
      name: t.name,
      url: t.url,
      reqPerSec: rs.reduce((a, x) => a + x.reqPerSec, 0) / rs.length,
      p99Ms: Math.max(...rs.map((x) => x.p99Ms)),
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
    return `  ${r.name.padEnd(12)} ${r.reqPerSec.toFixed(0).padStart(7)} req/s${ratio}, p99 ${r.p99Ms} ms${bad}`;
  });
}
