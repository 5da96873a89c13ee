// mDNS end to end, run by mdns.test.ts INSIDE A FRESH NETWORK NAMESPACE (`unshare -n`): it refuses
// to start unless loopback is the only interface, so no packet can leave this machine.
// Forks real peer processes (mdns-peer.mjs), drives them through phases, prints one JSON report on
// stdout and exits. Bounded: it gives up by itself after HARD_LIMIT_MS.
// Usage: node mdns-probe.mjs <compiled mdns.js path>

import { execFileSync, fork } from 'node:child_process';
import dgram from 'node:dgram';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import Bonjour from 'bonjour-service';

const HARD_LIMIT_MS = 15_000;
const REQUERY_MS = 400;
const modulePath = process.argv[2];
const peerScript = fileURLToPath(new URL('./mdns-peer.mjs', import.meta.url));
const began = Date.now();
const report = { interfaces: Object.keys(os.networkInterfaces()), phases: {}, peers: {} };
const children = new Map();

function finish(code, extra = {}) {
  for (const child of children.values())
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  process.stdout.write(`${JSON.stringify({ ...report, ...extra, totalMs: Date.now() - began })}\n`);
  process.exit(code);
}

setTimeout(() => finish(1, { error: `probe gave up after ${HARD_LIMIT_MS} ms` }), HARD_LIMIT_MS).unref();

if (report.interfaces.length !== 1 || report.interfaces[0] !== 'lo') {
  finish(3, { error: `not an isolated network namespace: interfaces ${report.interfaces.join(', ')}` });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

/** Forks a peer; its messages land in report.peers[peerId]. */
function startPeer(peerId, extra = {}) {
  const options = { peerId, cluster: 'alpha', protocolVersion: 1, requeryMs: REQUERY_MS, ...extra };
  const record = { options, sightings: [], errors: [], started: false, stopMs: null, exit: null };
  report.peers[peerId] = record;
  const child = fork(peerScript, [modulePath, JSON.stringify(options)], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
  });
  record.stderr = '';
  child.stderr.on('data', (chunk) => {
    record.stderr += chunk;
  });
  child.on('message', (m) => {
    if (m.type === 'sighting') record.sightings.push({ ...m.sighting, at: m.at });
    if (m.type === 'error') record.errors.push({ code: m.code, message: m.message, at: m.at });
    if (m.type === 'started') record.started = true;
    if (m.type === 'stopped') record.stopMs = m.stopMs;
  });
  child.on('exit', (code, signal) => {
    record.exit = { code, signal, at: Date.now() };
  });
  children.set(peerId, child);
  return child;
}

const seenIds = (peerId, since = 0) =>
  new Set(report.peers[peerId].sightings.filter((s) => s.at >= since).map((s) => s.peerId));

/** Asks peers to stop; a peer that has not exited by itself within 3 s is killed and marked. */
async function stopPeers(ids) {
  for (const id of ids) children.get(id).send({ type: 'stop' });
  const deadline = Date.now() + 3_000;
  while (ids.some((id) => report.peers[id].exit === null) && Date.now() < deadline) await sleep(25);
  for (const id of ids) {
    if (report.peers[id].exit === null) {
      report.peers[id].lingered = true;
      children.get(id).kill('SIGKILL');
    }
  }
  await until('stopped peers to exit', () => ids.every((id) => report.peers[id].exit !== null), 1_000);
}

/** A plain bonjour-service browser that records what goes over the wire: announcements and goodbyes. */
function startObserver() {
  const seen = { up: [], down: [], errors: [] };
  const bonjour = new Bonjour({}, (err) => seen.errors.push(String(err)));
  bonjour.server.mdns.on('error', (err) => seen.errors.push(String(err)));
  const browser = bonjour.find({ type: 'quantum-bot' });
  browser.on('up', (s) => seen.up.push({ name: s.name, txt: s.txt, port: s.port, at: Date.now() }));
  browser.on('down', (s) => seen.down.push({ name: s.name, at: Date.now() }));
  report.observer = seen;
  return () =>
    new Promise((resolve) => {
      browser.stop();
      bonjour.destroy(resolve);
    });
}

try {
  const stopObserver = startObserver();

  // 1. Discovery: a, b, c of cluster alpha (c bound to an interface address), d of cluster beta,
  //    e of alpha but another protocol version. Each of a, b, c must see the other two.
  startPeer('peer-a', { port: 9101 });
  startPeer('peer-b', { port: 9102 });
  startPeer('peer-c', { port: 9103, interface: '127.0.0.1' });
  startPeer('peer-d', { port: 9104, cluster: 'beta' });
  startPeer('peer-e', { port: 9105, protocolVersion: 2 });
  const t0 = Date.now();
  const full = () =>
    ['peer-a', 'peer-b', 'peer-c'].every((id) => {
      const others = ['peer-a', 'peer-b', 'peer-c'].filter((o) => o !== id);
      return others.every((o) => seenIds(id).has(o));
    });
  await until('a, b and c to see each other', full, 6_000);
  report.phases.discovery = { fullMeshMs: Date.now() - t0 };
  await sleep(3 * REQUERY_MS); // a few re-query rounds, for repeated sightings and stray ones

  // 2. Crash: SIGKILL c (no goodbye). Its records outlive it, but it no longer answers queries, so
  //    after the round in flight a and b stop sighting it while still sighting each other.
  children.get('peer-c').kill('SIGKILL');
  const killedAt = Date.now();
  await sleep(8 * REQUERY_MS);
  report.phases.crash = { killedAt, graceMs: 2 * REQUERY_MS, windowEnd: Date.now() };

  // 3. Stop: every remaining peer stops (goodbye, socket closed) and must exit on its own.
  const stoppingAt = Date.now();
  await stopPeers(['peer-a', 'peer-b', 'peer-d', 'peer-e']);
  await until('goodbyes of the stopped peers', () => report.observer.down.length >= 4, 2_000).catch(() => {});
  report.phases.stop = { stoppingAt };
  await stopObserver(); // it holds 5353 too, which the next phase must be able to block

  // 4. Port 5353 held by a socket without SO_REUSEADDR: f's bind fails (multicast-dns emits
  //    'error', which would crash an unguarded process). f must report it, live on, and rebuild once
  //    the port is free, then find g.
  const blocker = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  await new Promise((resolve, reject) => {
    blocker.once('error', reject);
    blocker.bind(5353, resolve);
  });
  startPeer('peer-f', { port: 9106 });
  await until('f to report the bind error', () => report.peers['peer-f'].errors.length > 0, 3_000);
  await new Promise((resolve) => blocker.close(resolve));
  const releasedAt = Date.now();
  startPeer('peer-g', { port: 9107 });
  await until(
    'f and g to see each other',
    () => seenIds('peer-f').has('peer-g') && seenIds('peer-g').has('peer-f'),
    4_000,
  );
  report.phases.blocked = { recoveredMs: Date.now() - releasedAt };
  await stopPeers(['peer-f', 'peer-g']);

  // 5. Loopback down: every send fails (ENETUNREACH). h must report it, not crash, and stop cleanly.
  execFileSync('ip', ['link', 'set', 'lo', 'down']);
  startPeer('peer-h', { port: 9108 });
  await until('h to report a send error', () => report.peers['peer-h'].errors.length > 0, 3_000);
  await sleep(2 * REQUERY_MS);
  await stopPeers(['peer-h']);
  report.phases.unreachable = { done: true };

  finish(0);
} catch (err) {
  finish(2, { error: String(err?.stack ?? err) });
}
