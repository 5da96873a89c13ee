#!/usr/bin/env node
/**
 * Floods one peer's /mesh endpoint with unauthenticated WebSockets and reports its memory: VmRSS
 * before the flood (idle, settled) and the highest VmRSS sampled every 50 ms during it, plus what
 * the sockets got (HTTP 503 before any upgrade, close codes) and whether GET /health kept answering.
 *
 * The flood: --sockets (default 2000) clients from --sources local addresses (127.0.0.1,
 * 127.0.0.2, ...: loopback is a /8, so per-address and overall caps both show), opened as fast as
 * the loop allows, each doing one of: stay silent (until the 5 s handshake timeout), send one
 * frame of almost 1 MiB, stream fragments that never end, send garbage. Loopback only; the peer
 * runs with CONTINUOUS_MODE=false, static discovery and no peers. It stops by itself: every socket
 * is abandoned after --seconds (default 15) and the peer is killed by PID, its data removed.
 *
 * Usage: node scripts/flood-mesh.mjs [--sockets 2000] [--sources 16] [--seconds 15]
 * Needs the build (npm run build) and Linux /proc.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import {
  BOT_JS,
  freePort,
  HOST,
  killOnExit,
  readStat,
  requireBuild,
  rssBytes,
  signalOurs,
  sleep,
  until,
} from './lib/proc.mjs';

const { values } = parseArgs({
  options: {
    sockets: { type: 'string', default: '2000' },
    sources: { type: 'string', default: '16' },
    seconds: { type: 'string', default: '15' },
  },
});
const SOCKETS = Math.min(10_000, Number(values.sockets));
const SOURCES = Math.min(200, Math.max(1, Number(values.sources)));
const SECONDS = Math.min(60, Number(values.seconds));
requireBuild();

const dataDir = mkdtempSync(join(tmpdir(), 'qb-flood-'));
const port = await freePort();
const out = openSync(join(dataDir, 'out.log'), 'a');
const child = spawn(process.execPath, [BOT_JS], {
  cwd: dataDir,
  env: {
    ...process.env,
    PORT: String(port),
    HOST,
    DATA_DIR: join(dataDir, 'data'),
    LOG_DIR: join(dataDir, 'logs'),
    CONTINUOUS_MODE: 'false',
    LOG_LEVEL: 'warn',
    MESH_SECRET: randomBytes(32).toString('base64url'),
    MESH_DISCOVERY: 'static',
    MESH_PEERS: '',
    BOT_ENABLED: 'false',
    FREELANCE_ENABLED: 'false',
    AI_ENABLED: 'false',
  },
  stdio: ['ignore', out, out],
});
closeSync(out);
const startTime = readStat(child.pid)?.startTime;
const stop = () => signalOurs(child.pid, startTime, 'SIGKILL');
killOnExit(() => {
  stop();
  rmSync(dataDir, { recursive: true, force: true });
});

function health() {
  return new Promise((resolve) => {
    const req = request({ host: HOST, port, path: '/health', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

await until('the peer answers /health', async () => (await health()) === 200, { timeoutMs: 30_000 });
await sleep(2_000);
const idle = [];
for (let i = 0; i < 10; i++) {
  idle.push(rssBytes(child.pid));
  await sleep(100);
}
const before = idle.sort((a, b) => a - b)[5];

const outcomes = new Map();
const count = (what) => outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
const sockets = [];
const big = Buffer.alloc(1024 * 1024 - 64, 0x61);
const fragment = Buffer.alloc(4096, 0x62);
const kinds = ['silent', 'big', 'fragments', 'garbage'];

function flood(i) {
  const kind = kinds[i % kinds.length];
  const localAddress = `127.0.0.${1 + (i % SOURCES)}`;
  const ws = new WebSocket(`ws://${HOST}:${port}/mesh`, { localAddress, perMessageDeflate: false });
  sockets.push(ws);
  ws.on('error', () => {});
  let refused = false;
  ws.once('unexpected-response', (_req, res) => {
    refused = true;
    count(`HTTP ${res.statusCode} before any upgrade`);
    ws.terminate();
  });
  ws.once('open', () => {
    if (kind === 'big') ws.send(big);
    if (kind === 'garbage') ws.send('{"type":"hello","v":"garbage"');
    if (kind === 'fragments') {
      for (let f = 0; f < 64 && ws.readyState === WebSocket.OPEN; f++) ws.send(fragment, { fin: false });
    }
  });
  ws.once('close', (code) => {
    if (!refused) count(`${kind}: close ${code}`);
  });
}

let peak = before;
let healthOk = 0;
let healthAsked = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, rssBytes(child.pid));
}, 50);
const prober = setInterval(async () => {
  healthAsked++;
  if ((await health()) === 200) healthOk++;
}, 500);

const startedAt = performance.now();
for (let i = 0; i < SOCKETS; i++) {
  flood(i);
  // Yield now and then so the flood is concurrent, not one burst the kernel backlog refuses.
  if (i % 50 === 49) await sleep(5);
}
const floodMs = Math.round(performance.now() - startedAt);
const end = Date.now() + SECONDS * 1000;
while (Date.now() < end && sockets.some((ws) => ws.readyState !== WebSocket.CLOSED)) await sleep(100);
clearInterval(sampler);
clearInterval(prober);
for (const ws of sockets) ws.terminate();
const after = (await health()) === 200;
const mb = (b) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
console.log(`flood of ${SOCKETS} unauthenticated sockets from ${SOURCES} addresses on ${HOST}:${port}/mesh`);
console.log(`  opened in ${floodMs} ms; settled or abandoned after ${SECONDS} s at most`);
console.log(`  RSS before: ${mb(before)}   peak during: ${mb(peak)}   growth: ${mb(peak - before)}`);
console.log(
  `  GET /health during the flood: ${healthOk}/${healthAsked} answered 200; after: ${after ? 200 : 'no'}`,
);
console.log('  outcomes:');
for (const [what, n] of [...outcomes].sort()) console.log(`    ${what}: ${n}`);
stop();
rmSync(dataDir, { recursive: true, force: true });
process.exit(after ? 0 : 1);
