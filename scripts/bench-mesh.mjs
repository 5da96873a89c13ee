#!/usr/bin/env node
/**
 * Measures meshes of N peer processes (`node bot.js`) on 127.0.0.1 and prints, for each N:
 *   up          last spawn -> every peer answers GET /health 200;
 *   full mesh   last spawn -> every peer sees the N-1 others `connected` (GET /mesh);
 *   down        SIGKILL of one peer -> every other peer sees it `down`;
 *   relink      respawn of that peer (same DATA_DIR, PEER_ID, port) -> every other peer sees it
 *               `connected` again with its new boot id (from the spawn; from its first /health 200
 *               in brackets);
 *   kill switch POST /kill-switch on one peer -> every other peer's GET /kill-switch is active;
 *   down and kill switch are given twice: as polled (the bench's view, accurate to a poll period and
 *               slowed by the polling itself: /mesh at N=50 is a large answer) and as the peers
 *               logged them (the `time` of each observer's 'peer down' or 'kill switch adopted from
 *               the mesh' warn line in its stdout, against the bench's wall clock at the SIGKILL or
 *               POST: same machine, same clock);
 *   idle        CPU (utime + stime of /proc/<pid>/stat over the window; 100 % = one core) and RSS
 *               (VmRSS) per peer, mean and max, with nobody polling, after the mesh settled.
 *
 * Peers run with CONTINUOUS_MODE=false (one process each, no supervisor), LOG_LEVEL=warn, static
 * discovery (MESH_PEERS = every other peer), one generated MESH_SECRET, and the default mesh timers
 * (heartbeat 1 s, status sync 5 s, reconnect sweep 5 s). Ports are a free consecutive range; data in
 * temp directories. Each N has a deadline; whatever happens, its processes are killed by PID and its
 * directories removed before the next N. Polling is light: at most one request in flight per peer,
 * every 100 ms (200 ms above 12 peers), and a peer that met the condition is no longer asked; the
 * figures are therefore accurate to about one poll period.
 *
 * Usage: node scripts/bench-mesh.mjs [--sizes 3,10,25] [--idle-seconds 10] [--env K=V,...]   (npm run bench:mesh)
 *   --env adds variables to every peer (MESH_HEARTBEAT_INTERVAL=200, for one): compare settings in one run.
 * Needs the build (npm run build) and Linux /proc. Never uses mDNS (root network namespace).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import {
  BOT_JS,
  cpuPercent,
  HOST,
  killOnExit,
  portIsFree,
  readStat,
  requireBuild,
  rssBytes,
  signalOurs,
  sleep,
  staticPeers,
} from './lib/proc.mjs';

/** Poll period per peer: finer for small meshes, lighter for 25 processes on 2 cores. */
const pollMs = (n) => (n > 12 ? 200 : 100);
const SETTLE_MS = 3_000;
/**
 * Whole-run deadline per N, ms: start, mesh, idle window, kill switch, kill and relink. A safety net
 * only: on a 2-core machine shared with other test runs (load above 50), 25 peers took over 240 s
 * to answer /health.
 */
const DEADLINE_MS = (n) => 120_000 + n * 10_000;

const { values } = parseArgs({
  // Imported (npm run bench): the defaults; benchMesh() takes its own sizes.
  args: import.meta.main ? process.argv.slice(2) : [],
  options: {
    sizes: { type: 'string', default: '3,10,25' },
    'idle-seconds': { type: 'string', default: '10' },
    env: { type: 'string', default: '' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log('usage: node scripts/bench-mesh.mjs [--sizes 3,10,25] [--idle-seconds 10] [--env K=V,...]');
  process.exit(0);
}
const sizes = values.sizes.split(',').map(Number);
let idleSeconds = Number(values['idle-seconds']);
if (sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 100) || !(idleSeconds > 0)) {
  console.error('--sizes must list whole numbers from 2 to 100, --idle-seconds a number > 0');
  process.exit(2);
}
/** --env: extra variables for every peer. */
const extraEnv = Object.fromEntries(
  values.env
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const eq = kv.indexOf('=');
      if (eq < 1) {
        console.error(`--env takes K=V pairs separated by commas; got "${kv}"`);
        process.exit(2);
      }
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
);
requireBuild();

/** A sleep that does not keep the process alive (for timeouts raced against something else). */
const backstop = (ms) => new Promise((r) => setTimeout(r, ms).unref());

// ----------------------------------------------------------------------------------------------
// Processes we started, each known by PID and start time, so nothing else is ever signalled.

/** Every peer process alive now, across sizes: for the exit and signal handlers. */
const running = new Set();

function signal(peer, sig) {
  if (!peer.exit) signalOurs(peer.pid, peer.startTime, sig);
}

killOnExit(() => {
  for (const peer of running) signal(peer, 'SIGKILL');
});

// ----------------------------------------------------------------------------------------------
// Ports and HTTP

/**
 * The first port the kernel hands out to outgoing connections. Our ports must lie below it: at N=50
 * the peers open 1,225 connections while the later ones are still starting, and an ephemeral port
 * taken in our range failed a start with EADDRINUSE.
 */
function ephemeralLow() {
  try {
    return (
      Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768
    );
  } catch {
    return 32_768;
  }
}

/** `count` consecutive free ports, from a random base in 20000 up to the ephemeral range. */
async function freeRange(count) {
  const span = Math.max(count + 1, ephemeralLow() - 20_000);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (span - count));
    let free = true;
    for (let p = base; p < base + count && free; p++) free = await portIsFree(p);
    if (free) return Array.from({ length: count }, (_, i) => base + i);
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** One socket per peer, kept alive: one request in flight per peer, no connection churn. */
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function call(port, path, { method = 'GET', body, token } = {}) {
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers = {};
    if (payload) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const req = request({ host: HOST, port, path, method, headers, agent, timeout: 2_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s) => {
        text += s;
      });
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, json: JSON.parse(text) });
        } catch {
          resolve({ status: res.statusCode, json: undefined });
        }
      });
      res.on('error', () => resolve({ status: 0 }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0 }));
    req.end(payload);
  });
}

/**
 * Polls every peer of `peers` (one request in flight each, every pollMs) until `met(peer)` is true
 * for all; a peer is not asked again once it met it. Returns performance.now() of the last one.
 */
async function pollAll(peers, met, what, deadline) {
  const doneAt = new Map();
  const every = pollMs(currentSize);
  await Promise.all(
    peers.map(async (peer) => {
      while (!doneAt.has(peer)) {
        if (performance.now() > deadline) throw new Error(`deadline passed waiting for ${what}`);
        if (peer.exit)
          throw new Error(`${peer.id} exited (${JSON.stringify(peer.exit)}) waiting for ${what}`);
        if (await met(peer)) doneAt.set(peer, performance.now());
        else await sleep(every);
      }
    }),
  );
  return Math.max(...doneAt.values());
}

async function meshStates(peer) {
  const answer = await call(peer.port, '/mesh');
  if (answer.status !== 200 || !answer.json) return undefined;
  return new Map(answer.json.peers.map((p) => [p.peerId, p]));
}

// ----------------------------------------------------------------------------------------------
// One mesh

function spawnPeer(peer) {
  const out = openSync(join(peer.dataDir, 'out.log'), 'a');
  const child = spawn(process.execPath, [BOT_JS], {
    cwd: peer.dataDir,
    env: peer.env,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  peer.pid = child.pid;
  peer.startTime = readStat(child.pid)?.startTime;
  peer.exit = undefined;
  peer.exited = new Promise((resolve) => {
    child.once('exit', (code, sig) => {
      peer.exit = { code, signal: sig };
      running.delete(peer);
      resolve(peer.exit);
    });
  });
  running.add(peer);
  return performance.now();
}

async function stopAll(peers) {
  const alive = peers.filter((p) => !p.exit);
  for (const peer of alive) signal(peer, 'SIGTERM');
  const timeout = backstop(10_000).then(() => 'timeout');
  const result = await Promise.race([Promise.all(alive.map((p) => p.exited)), timeout]);
  if (result === 'timeout') {
    for (const peer of alive) signal(peer, 'SIGKILL');
    await Promise.race([Promise.all(alive.map((p) => p.exited)), backstop(5_000)]);
  }
}

/**
 * Wall-clock ms of each peer's first stdout log line (pino JSON) at or after `since` that `match`es,
 * or undefined for a peer that has none yet. pino writes asynchronously: read again for up to 2 s.
 */
async function loggedAt(peers, since, match) {
  const found = new Map();
  for (let attempt = 0; attempt < 20 && found.size < peers.length; attempt++) {
    if (attempt > 0) await sleep(100);
    for (const peer of peers) {
      if (found.has(peer)) continue;
      let text = '';
      try {
        text = readFileSync(join(peer.dataDir, 'out.log'), 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        if (!line.startsWith('{')) continue;
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        // The peers' logger writes ISO times; a number is epoch ms (pino's default).
        const time = typeof entry.time === 'string' ? Date.parse(entry.time) : entry.time;
        if (typeof time === 'number' && time >= since && match(entry)) {
          found.set(peer, time);
          break;
        }
      }
    }
  }
  return found.size === peers.length ? Math.max(...found.values()) : undefined;
}

function tail(peer, lines = 15) {
  try {
    return readFileSync(join(peer.dataDir, 'out.log'), 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** The N being measured, for the poll period. */
let currentSize = 0;

async function benchOne(n) {
  currentSize = n;
  const deadline = performance.now() + DEADLINE_MS(n);
  const root = mkdtempSync(join(tmpdir(), `qb-bench-mesh-${n}-`));
  const ports = await freeRange(n);
  const secret = randomBytes(32).toString('base64url');
  const token = randomBytes(24).toString('base64url');
  const peers = ports.map((port, i) => {
    const id = `bench-${String(i + 1).padStart(2, '0')}`;
    const dataDir = join(root, id);
    mkdirSync(dataDir, { recursive: true });
    return {
      id,
      port,
      dataDir,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dataDir,
        HOST,
        PORT: String(port),
        DATA_DIR: join(dataDir, 'data'),
        LOG_DIR: join(dataDir, 'logs'),
        LOG_LEVEL: 'warn',
        PEER_ID: id,
        API_TOKEN: token,
        MESH_SECRET: secret,
        MESH_DISCOVERY: 'static',
        MESH_PEERS: staticPeers(ports, port),
        CONTINUOUS_MODE: 'false',
        ...extraEnv,
      },
    };
  });
  const result = { n };
  try {
    // 1. Start everyone; full mesh.
    let lastSpawn = 0;
    for (const peer of peers) lastSpawn = spawnPeer(peer);
    const upAt = await pollAll(
      peers,
      async (p) => (await call(p.port, '/health')).status === 200,
      'every /health',
      deadline,
    );
    result.upMs = upAt - lastSpawn;
    const fullAt = await pollAll(
      peers,
      async (p) => {
        const states = await meshStates(p);
        return !!states && peers.every((o) => o === p || states.get(o.id)?.state === 'connected');
      },
      'a full mesh',
      deadline,
    );
    result.fullMeshMs = fullAt - lastSpawn;

    // 2. Idle: nobody asks anything while CPU and RSS are sampled.
    await sleep(SETTLE_MS);
    const before = new Map(peers.map((p) => [p, readStat(p.pid)]));
    const t0 = performance.now();
    await sleep(idleSeconds * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = [];
    const rss = [];
    for (const p of peers) {
      const a = before.get(p);
      const b = readStat(p.pid);
      if (!a || !b || p.exit) throw new Error(`${p.id} died during the idle window:\n${tail(p)}`);
      cpu.push(cpuPercent(a, b, seconds));
      rss.push(rssBytes(p.pid));
    }
    result.cpu = { mean: mean(cpu), max: Math.max(...cpu) };
    result.rss = { mean: mean(rss), max: Math.max(...rss) };
    result.idleSeconds = seconds;
    result.load = loadavg()[0];

    // 3. Kill switch: set on the first peer, seen by all the others.
    const [first, ...rest] = peers;
    const postWall = Date.now();
    const postAt = performance.now();
    const posted = await call(first.port, '/kill-switch', {
      method: 'POST',
      body: { activate: true, reason: 'bench-mesh' },
      token,
    });
    if (posted.status !== 200) throw new Error(`POST /kill-switch answered ${posted.status}`);
    const epoch = posted.json.epoch;
    const seenAt = await pollAll(
      rest,
      async (p) => {
        const ks = await call(p.port, '/kill-switch');
        return ks.json?.active === true && ks.json.epoch === epoch;
      },
      'the kill switch everywhere',
      deadline,
    );
    result.killSwitchMs = seenAt - postAt;
    const adoptedAt = await loggedAt(
      rest,
      postWall,
      (e) => e.msg === 'kill switch adopted from the mesh' && e.epoch === epoch,
    );
    result.killSwitchLoggedMs = adoptedAt === undefined ? undefined : adoptedAt - postWall;
    const cleared = await call(first.port, '/kill-switch', {
      method: 'POST',
      body: { activate: false, reason: 'bench-mesh done' },
      token,
    });
    await pollAll(
      rest,
      async (p) => (await call(p.port, '/kill-switch')).json?.epoch === cleared.json?.epoch,
      'the kill switch cleared everywhere',
      deadline,
    );

    // 4. SIGKILL the last peer; everyone else sees it down.
    const victim = peers.at(-1);
    const observers = peers.slice(0, -1);
    const oldBoot = (await call(victim.port, '/status')).json?.bootId;
    const killedWall = Date.now();
    const killedAt = performance.now();
    signal(victim, 'SIGKILL');
    const downAt = await pollAll(
      observers,
      async (p) => (await meshStates(p))?.get(victim.id)?.state === 'down',
      'the killed peer down everywhere',
      deadline,
    );
    result.downMs = downAt - killedAt;
    const downLoggedAt = await loggedAt(
      observers,
      killedWall,
      (e) => e.msg === 'peer down' && e.peer === victim.id,
    );
    result.downLoggedMs = downLoggedAt === undefined ? undefined : downLoggedAt - killedWall;
    await victim.exited;

    // 5. Respawn it on the same DATA_DIR, PEER_ID and port; everyone relinks it.
    const respawnAt = spawnPeer(victim);
    const healthyAt = await pollAll(
      [victim],
      async (p) => (await call(p.port, '/health')).status === 200,
      'the respawned peer /health',
      deadline,
    );
    const relinkAt = await pollAll(
      observers,
      async (p) => {
        const seen = (await meshStates(p))?.get(victim.id);
        return seen?.state === 'connected' && !!seen.status?.bootId && seen.status.bootId !== oldBoot;
      },
      'the respawned peer connected everywhere',
      deadline,
    );
    result.relinkMs = relinkAt - respawnAt;
    result.relinkFromHealthMs = relinkAt - healthyAt;
  } catch (err) {
    result.error = err.message;
    const dead = peers.filter((p) => p.exit);
    for (const p of dead.slice(0, 3))
      result.error += `\n  ${p.id} exited ${JSON.stringify(p.exit)}:\n${tail(p)}`;
  } finally {
    await stopAll(peers);
    agent.destroy();
    rmSync(root, { recursive: true, force: true });
  }
  return result;
}

const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
const ms = (x) => (x === undefined ? '-' : `${Math.round(x)} ms`);
const mib = (b) => `${(b / 1024 / 1024).toFixed(1)}`;

async function main() {
  console.log(
    `quantum-bot mesh measurements: node ${process.version}, ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}, ${new Date().toISOString()}`,
  );
  console.log(
    `peers: node bot.js, CONTINUOUS_MODE=false, LOG_LEVEL=warn, static discovery on 127.0.0.1, ${values.env ? `with ${values.env}` : 'default mesh timers'}`,
  );
  const results = [];
  for (const n of sizes) {
    const started = performance.now();
    process.stdout.write(`N=${n}: running (deadline ${DEADLINE_MS(n) / 1000} s)... `);
    const r = await benchOne(n);
    results.push(r);
    console.log(
      r.error ? `FAILED: ${r.error}` : `done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }

  const header = [
    'N',
    'up',
    'full mesh',
    'down (SIGKILL) polled / logged',
    'relink (from /health)',
    'kill switch polled / logged',
    'idle CPU %/peer mean (max)',
    'RSS MiB/peer mean (max)',
    'load (1 min, idle)',
  ];
  const rows = results.map((r) => [
    String(r.n),
    ms(r.upMs),
    ms(r.fullMeshMs),
    `${ms(r.downMs)} / ${ms(r.downLoggedMs)}`,
    r.relinkMs === undefined ? '-' : `${ms(r.relinkMs)} (${ms(r.relinkFromHealthMs)})`,
    `${ms(r.killSwitchMs)} / ${ms(r.killSwitchLoggedMs)}`,
    r.cpu ? `${r.cpu.mean.toFixed(2)} (${r.cpu.max.toFixed(2)})` : '-',
    r.rss ? `${mib(r.rss.mean)} (${mib(r.rss.max)})` : '-',
    r.load === undefined ? '-' : r.load.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  console.log(`\n${line(header)}`);
  console.log(`| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`);
  for (const row of rows) console.log(line(row));
  console.log(
    `\nup and full mesh: from the last spawn. relink: from the respawn (in brackets: from its first /health 200).` +
      `\npolled: when the bench's poll saw it; logged: the last observer's own log line (- when a peer did not log it).` +
      `\nresolution: one poll period per peer (${sizes.map((n) => `N=${n}: ${pollMs(n)} ms`).join(', ')}).` +
      `\nidle: ${idleSeconds} s window after ${SETTLE_MS / 1000} s settle, nobody polling; CPU 100 % = one core.`,
  );
  await printSealingShare(results);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

/**
 * What sealing costs on the two paths issue 11 bounds (at most 10 % of kill-switch propagation and of
 * relink time), measured in this process after the peers are gone, as a share of this run's figures.
 * Kill switch: the origin seals N-1 frames and each receiver opens one, all on the critical path if
 * nothing overlapped. Relink: the restarted peer seals and opens about 3 frames per link (ready, kill
 * switch, whole status) with each of N-1 peers. Upper bounds: the peers do this work in parallel.
 */
async function printSealingShare(results) {
  const [{ SealedChannel }, { encode, message }] = await Promise.all([
    import(new URL('../dist/mesh/seal.js', import.meta.url).href),
    import(new URL('../dist/mesh/protocol.js', import.meta.url).href),
  ]);
  const key = randomBytes(32);
  const out = new SealedChannel(key);
  const back = new SealedChannel(key);
  const state = {
    active: true,
    reason: 'bench',
    since: new Date().toISOString(),
    origin: 'bench-01',
    epoch: 7,
  };
  const frame = Buffer.from(encode(message('killswitch', { state })));
  const rounds = 20_000;
  const sealed = [];
  let t = performance.now();
  for (let i = 0; i < rounds; i++) sealed.push(out.seal(frame));
  const sealUs = ((performance.now() - t) * 1000) / rounds;
  t = performance.now();
  for (const f of sealed) back.open(f);
  const openUs = ((performance.now() - t) * 1000) / rounds;
  console.log(
    `\nsealing (AES-256-GCM, a ${frame.length}-byte kill-switch frame, this process): seal ${sealUs.toFixed(1)} us, open ${openUs.toFixed(1)} us per frame`,
  );
  for (const r of results) {
    if (r.error) continue;
    const killMs = ((r.n - 1) * sealUs + openUs) / 1000;
    const relinkMs = ((r.n - 1) * 3 * (sealUs + openUs)) / 1000;
    const pct = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(2)} %` : '-');
    console.log(
      `  N=${r.n}: kill switch ${killMs.toFixed(2)} ms of sealing = ${pct(killMs, r.killSwitchLoggedMs ?? r.killSwitchMs)} of its propagation; relink ${relinkMs.toFixed(2)} ms = ${pct(relinkMs, r.relinkMs)} of its time`,
    );
  }
}

/**
 * For npm run bench: measures each N of `sizes` in turn and resolves to one result per N (`{n,
 * upMs, fullMeshMs, downMs, relinkMs, relinkFromHealthMs, killSwitchMs, cpu, rss}`, or `{n, error}`).
 */
export async function benchMesh({ sizes: only = sizes, idleSeconds: idle = idleSeconds } = {}) {
  idleSeconds = idle;
  const results = [];
  for (const n of only) results.push(await benchOne(n));
  return results;
}

if (import.meta.main) {
  main().catch((err) => {
    console.error(err);
    for (const peer of running) signal(peer, 'SIGKILL');
    process.exit(1);
  });
}
