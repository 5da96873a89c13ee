#!/usr/bin/env node
// Makes docs/dashboard.png: 5 peers on 127.0.0.1 (static discovery), one of them SIGKILLed, the
// dashboard of peer-1 in headless Chromium. Bounded: everything it started is killed (by PID) at
// the end, on failure too. Needs Debian's chromium (/usr/bin/chromium) and playwright-core.
//   node scripts/screenshot-dashboard.mjs [output.png]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const out = process.argv[2] ?? new URL('../docs/dashboard.png', import.meta.url).pathname;
const COUNT = 5;
const DEADLINE_MS = 90_000;
const bot = new URL('../bot.js', import.meta.url).pathname;
const root = mkdtempSync(join(tmpdir(), 'qb-shot-'));
const children = [];

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function until(what, check, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const getJson = async (port, path) => (await fetch(`http://127.0.0.1:${port}${path}`)).json();

async function main() {
  const ports = [];
  for (let i = 0; i < COUNT; i++) ports.push(await freePort());
  const secret = randomBytes(24).toString('hex');
  ports.forEach((port, i) => {
    const env = {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: join(root, `peer-${i + 1}`),
      LOG_DIR: join(root, `peer-${i + 1}`, 'logs'),
      PEER_ID: `peer-${i + 1}`,
      MESH_SECRET: secret,
      MESH_DISCOVERY: 'static',
      MESH_PEERS: ports
        .filter((p) => p !== port)
        .map((p) => `127.0.0.1:${p}`)
        .join(','),
      CONTINUOUS_MODE: 'false',
      LOG_LEVEL: 'warn',
    };
    children.push(spawn(process.execPath, [bot], { env, stdio: 'ignore' }));
  });
  await until('a full mesh', async () => {
    const views = await Promise.all(ports.map((p) => getJson(p, '/mesh')));
    return views.every((v) => v.peers.filter((x) => x.state === 'connected').length === COUNT - 1);
  });
  children[COUNT - 1].kill('SIGKILL');
  await until('peer-5 down on peer-1', async () => {
    const v = await getJson(ports[0], '/mesh');
    return v.peers.find((p) => p.peerId === `peer-${COUNT}`)?.state === 'down';
  });
  // Let the other peers' link lists (sent on change) reach peer-1, so the picture is complete.
  await new Promise((r) => setTimeout(r, 1500));

  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--no-first-run',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(`http://127.0.0.1:${ports[0]}/`);
    await page.waitForSelector(`[data-peer-id="peer-${COUNT}"][data-peer-state="down"]`);
    await page.waitForTimeout(500);
    await page.screenshot({ path: out });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
  }
}

const timer = setTimeout(() => {
  console.error('screenshot: deadline passed');
  cleanup();
  process.exit(1);
}, DEADLINE_MS);

function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
}

main()
  .then(() => {
    clearTimeout(timer);
    cleanup();
  })
  .catch((err) => {
    console.error(err);
    clearTimeout(timer);
    cleanup();
    process.exit(1);
  });
