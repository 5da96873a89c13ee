#!/usr/bin/env node
// Makes docs/dashboard.png: 5 peers on 127.0.0.1 (static discovery), one of them SIGKILLed, the
// dashboard of peer-1 in headless Chromium. Bounded: everything it started is killed (by PID) at
// the end, on failure too. Needs Debian's chromium (/usr/bin/chromium) and playwright-core.
//   node scripts/screenshot-dashboard.mjs [output.png]
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './lib/chromium.mjs';
import { BOT_JS, freePort, HOST, sleep, staticPeers, until } from './lib/proc.mjs';

const out = process.argv[2] ?? new URL('../docs/dashboard.png', import.meta.url).pathname;
const COUNT = 5;
const DEADLINE_MS = 90_000;
const root = mkdtempSync(join(tmpdir(), 'qb-shot-'));
const children = [];

const getJson = async (port, path) => (await fetch(`http://${HOST}:${port}${path}`)).json();

async function main() {
  const ports = [];
  for (let i = 0; i < COUNT; i++) ports.push(await freePort());
  const secret = randomBytes(24).toString('hex');
  ports.forEach((port, i) => {
    const env = {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST,
      DATA_DIR: join(root, `peer-${i + 1}`),
      LOG_DIR: join(root, `peer-${i + 1}`, 'logs'),
      PEER_ID: `peer-${i + 1}`,
      MESH_SECRET: secret,
      MESH_DISCOVERY: 'static',
      MESH_PEERS: staticPeers(ports, port),
      CONTINUOUS_MODE: 'false',
      LOG_LEVEL: 'warn',
    };
    children.push(spawn(process.execPath, [BOT_JS], { env, stdio: 'ignore' }));
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
  await sleep(1500);

  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(`http://${HOST}:${ports[0]}/`);
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
