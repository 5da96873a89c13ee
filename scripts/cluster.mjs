#!/usr/bin/env node
// Local mesh without Docker: `npm run cluster -- --peers N` starts N peers on 127.0.0.1, ports
// BASE..BASE+N-1 (default 9001..), each with its own DATA_DIR under ./data/cluster, one generated
// MESH_SECRET and API_TOKEN (kept in ./data/cluster/cluster.env, mode 0600, so a rerun keeps them),
// static discovery (never mDNS: this runs in the root network namespace). Ctrl-C stops them all.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { HOST, portIsFree, requireBuild } from './lib/proc.mjs';

const { values } = parseArgs({
  options: {
    peers: { type: 'string', default: '3' },
    'base-port': { type: 'string', default: '9001' },
    'data-dir': { type: 'string', default: './data/cluster' },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(
    'usage: npm run cluster -- [--peers N] [--base-port 9001] [--data-dir ./data/cluster] [--verbose]',
  );
  process.exit(0);
}
const count = Number(values.peers);
const basePort = Number(values['base-port']);
if (!Number.isInteger(count) || count < 1 || count > 200) {
  console.error(`--peers must be a whole number from 1 to 200; got "${values.peers}"`);
  process.exit(2);
}
if (!Number.isInteger(basePort) || basePort < 1 || basePort + count - 1 > 65535) {
  console.error(`--base-port must leave room for ${count} ports below 65536; got "${values['base-port']}"`);
  process.exit(2);
}

requireBuild();
const root = resolve(values['data-dir']);
mkdirSync(root, { recursive: true });
const ports = Array.from({ length: count }, (_, i) => basePort + i);
// Checked before anything is written or started: a second run would otherwise print its banner
// while its peers loop on EADDRINUSE and write into the first cluster's folders. The folder stays
// claimed until this script exits (the kernel releases it however the script ends).
const folderLock = await claimFolders(root, count);
process.on('exit', () => folderLock.release());
await checkPorts(ports);
const envFile = join(root, 'cluster.env');
if (!existsSync(envFile)) {
  const secret = randomBytes(32).toString('base64url');
  const token = randomBytes(32).toString('base64url');
  writeFileSync(envFile, `MESH_SECRET=${secret}\nAPI_TOKEN=${token}\n`, { mode: 0o600 });
}
const shared = Object.fromEntries(
  readFileSync(envFile, 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);

const bot = new URL('../bot.js', import.meta.url).pathname;
const children = [];
let stopping = false;

for (const [i, port] of ports.entries()) {
  const name = `peer-${i + 1}`;
  const dataDir = join(root, name);
  mkdirSync(dataDir, { recursive: true });
  const others = ports.filter((p) => p !== port).map((p) => `127.0.0.1:${p}`);
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_DIR: join(dataDir, 'logs'),
    PEER_ID: process.env.PEER_ID_PREFIX ? `${process.env.PEER_ID_PREFIX}-${i + 1}` : name,
    MESH_SECRET: shared.MESH_SECRET,
    API_TOKEN: shared.API_TOKEN,
    // Where an operator finds the token: 401 answers and the dashboard's token dialog show it.
    QB_TOKEN_HINT: `API_TOKEN in ${envFile}`,
    // Static discovery on loopback only: mDNS must not multicast from a developer's machine.
    MESH_DISCOVERY: 'static',
    MESH_PEERS: others.join(','),
  };
  const child = spawn(process.execPath, [bot], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(join(dataDir, 'out.log'), { flags: 'a' });
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  if (values.verbose) {
    child.stdout.on('data', (d) => process.stdout.write(prefix(name, d)));
    child.stderr.on('data', (d) => process.stderr.write(prefix(name, d)));
  }
  child.on('exit', (code, signal) => {
    if (!stopping)
      console.error(`${name} exited (code ${code}, signal ${signal}); see ${join(dataDir, 'out.log')}`);
    children.splice(children.indexOf(child), 1);
    if (stopping && children.length === 0) process.exit(0);
  });
  children.push(child);
}

function refuse(message) {
  console.error(`npm run cluster: ${message}`);
  process.exit(1);
}

/**
 * Holds the cluster folder for this run (the peers' own DATA_DIR lock, on the parent folder: the
 * kernel drops it when this script ends, however it ends) and checks that no peer of an earlier run
 * whose script is gone still holds its folder.
 */
async function claimFolders(root, count) {
  const { lockDataDir, readHolder } = await import('../dist/store/data-dir-lock.js');
  const inUse = (err) => err?.code === 'QB_ERR_DATA_DIR_LOCKED';
  let lock;
  try {
    lock = lockDataDir(root, { pid: process.pid });
  } catch (err) {
    if (!inUse(err)) throw err;
    refuse(
      `${root} is in use by npm run cluster (pid ${readHolder(root)?.pid ?? 'unknown'}); stop that one ` +
        '(Ctrl-C in its terminal) or give this one another folder: --data-dir DIR --base-port PORT',
    );
  }
  for (let i = 1; i <= count; i++) {
    const dir = join(root, `peer-${i}`);
    if (!existsSync(dir)) continue;
    try {
      lockDataDir(dir, { pid: process.pid }).release();
    } catch (err) {
      if (!inUse(err)) throw err;
      refuse(
        `${dir} is in use by quantum-bot pid ${readHolder(dir)?.pid ?? 'unknown'} (a peer left running); stop it first`,
      );
    }
  }
  return lock;
}

async function checkPorts(ports) {
  const busy = [];
  for (const port of ports) if (!(await portIsFree(port))) busy.push(port);
  if (busy.length > 0) {
    refuse(
      `port ${busy.join(', ')} on ${HOST} is in use (another cluster, or another program); ` +
        'pick free ones with --base-port PORT',
    );
  }
}

function prefix(name, data) {
  return data
    .toString()
    .split('\n')
    .filter(Boolean)
    .map((l) => `[${name}] ${l}\n`)
    .join('');
}

console.log(`quantum-bot: ${count} peer(s) of one mesh on 127.0.0.1 (logs in ${root}/peer-*/out.log)`);
for (const [i, port] of ports.entries()) {
  console.log(`  peer-${i + 1}  http://127.0.0.1:${port}/   (status: /status, mesh: /mesh)`);
}
console.log(`API token (for the kill switch and subsystem controls): see ${envFile}`);
console.log('Ctrl-C stops every peer.');

function stopAll(signal) {
  if (stopping) return;
  stopping = true;
  console.log(`\nstopping ${children.length} peer(s)...`);
  for (const child of children) child.kill('SIGTERM');
  // Peers exit within 10 s of SIGTERM; this is only the backstop.
  setTimeout(() => {
    for (const child of children) child.kill('SIGKILL');
    process.exit(signal === 'SIGINT' ? 130 : 0);
  }, 12_000).unref();
  if (children.length === 0) process.exit(0);
}
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));
