/**
 * The most peers this machine holds in a full mesh with every peer healthy: starts N peers (one
 * process each, CONTINUOUS_MODE=false, as bench-mesh; static discovery on 127.0.0.1) and calls N
 * held when, within a bound from the last spawn, every peer answers GET /health and GET /ready 200
 * and sees the N-1 others `connected`, and still does `holdMs` later. N grows (doubling from
 * `from`) until a step fails, the `max` is reached, or the memory the next step needs (the last
 * step's RSS per peer) is not available; then the gap between the last N held and the first that
 * failed is halved `refine` times. Every step is bounded; its processes are stopped (by PID) and its
 * folder removed before the next.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFleet } from './fleet.mjs';
import { call } from './http-call.mjs';
import { rssBytes, sleep } from './proc.mjs';

/** Bound for one N, ms: start-up of N processes on two shared cores, plus the mesh itself. */
export const boundMs = (n) => 60_000 + n * 2_000;
/** Memory left free for everything else on the machine when deciding whether a step fits. */
const MEMORY_MARGIN_BYTES = 1024 ** 3;

function memAvailable() {
  const m = /^MemAvailable:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.POSITIVE_INFINITY;
}

/** True when every peer is healthy, ready and linked to every other one. */
async function fullAndHealthy(peers) {
  const answers = await Promise.all(
    peers.map(async (p) => {
      const [health, ready, mesh] = [
        await call(`${p.url}/health`),
        await call(`${p.url}/ready`),
        await call(`${p.url}/mesh`),
      ];
      const linked = mesh.json?.peers?.filter((x) => x.state === 'connected').length ?? 0;
      return health.status === 200 && ready.status === 200 && linked === peers.length - 1;
    }),
  );
  return answers.every(Boolean);
}

/**
 * One step: resolves to `{n, held, ms?, rssPerPeer?, reason?}`; `ms` is last spawn to full+healthy.
 * @param {number} n
 * @param {{holdMs?: number, bound?: (n: number) => number}} [o]
 */
export async function tryMesh(n, { holdMs = 10_000, bound = boundMs } = {}) {
  const root = mkdtempSync(join(tmpdir(), `qb-capacity-${n}-`));
  const fleet = await startFleet({ count: n, root, continuous: false });
  const t0 = performance.now();
  const deadline = t0 + bound(n);
  // Light polling: a round of 3 requests per peer, at most every 1 s (every 2 s above 30 peers).
  const every = n > 30 ? 2_000 : 1_000;
  try {
    for (;;) {
      const dead = fleet.peers.find((p) => p.exit);
      if (dead) return { n, held: false, reason: `${dead.name} exited (${JSON.stringify(dead.exit)})` };
      if (await fullAndHealthy(fleet.peers)) break;
      if (performance.now() > deadline) {
        return { n, held: false, reason: `no full, healthy mesh within ${bound(n) / 1000} s` };
      }
      await sleep(every);
    }
    const ms = performance.now() - t0;
    await sleep(holdMs);
    const rssPerPeer = fleet.peers.reduce((sum, p) => sum + rssBytes(p.pid), 0) / n;
    if (!(await fullAndHealthy(fleet.peers))) {
      return { n, held: false, reason: `full mesh lost within ${holdMs / 1000} s`, ms };
    }
    return { n, held: true, ms, rssPerPeer };
  } finally {
    await fleet.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * @param {{from?: number, max?: number, refine?: number, holdMs?: number,
 *   bound?: (n: number) => number, onStep?: (step: object) => void}} [o]
 * @returns {Promise<{held: number, steps: object[], limit: string}>} `held` is 0 when even `from`
 *   failed; `limit` says what ended the search.
 */
export async function meshCapacity({ from = 10, max = 80, refine = 2, holdMs, bound, onStep } = {}) {
  const steps = [];
  const step = async (n) => {
    const s = await tryMesh(n, { holdMs, bound });
    steps.push(s);
    onStep?.(s);
    return s;
  };
  let good = 0;
  let bad;
  let limit = `reached the maximum searched (${max})`;
  let perPeer = 0;
  for (let n = Math.min(from, max); ; n = Math.min(n * 2, max)) {
    const need = perPeer * n + MEMORY_MARGIN_BYTES;
    if (perPeer > 0 && need > memAvailable()) {
      limit = `memory: ${n} peers need about ${(need / 1024 ** 3).toFixed(1)} GiB, not available`;
      bad = n;
      break;
    }
    const s = await step(n);
    if (!s.held) {
      bad = n;
      limit = `${n} peers: ${s.reason}`;
      break;
    }
    good = n;
    perPeer = s.rssPerPeer;
    if (n >= max) break;
  }
  // Halve the gap between the last N held and the first that failed (not for a memory stop).
  for (let i = 0; i < refine && bad !== undefined && bad - good > 1 && !limit.startsWith('memory'); i++) {
    const mid = Math.floor((good + bad) / 2);
    if (mid <= good) break;
    const s = await step(mid);
    if (s.held) good = mid;
    else {
      bad = mid;
      limit = `${mid} peers: ${s.reason}`;
    }
  }
  return { held: good, steps, limit };
}
