#!/usr/bin/env node
/**
 * `npm run chaos -- --peers N --minutes M --seed S [--store sqlite|postgres]`: N real peers, each in
 * its own network namespace on a bridge of the run's own (127.0.0.1 with a warning where namespaces
 * cannot be made), work flowing against local fakes, paper trading on EXCHANGE=sim, faults drawn
 * from the seed for M minutes; then everything is healed and the invariants are checked, one PASS or
 * FAIL line each. Exit 0 when all pass, 1 when one fails, 2 on bad arguments, 130 on Ctrl-C.
 * Everything made (namespaces, bridge, processes, PostgreSQL, temp folders) goes on exit and SIGINT.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, requireBuild, sleep } from '../lib/proc.mjs';
import { startFakes, writeReplayCsv } from './fakes.mjs';
import { Injector, makeRandom, planFaults } from './faults.mjs';
import { Fleet } from './fleet.mjs';
import {
  checkKillSwitch,
  checkMesh,
  checkNoOrderUnderKillSwitch,
  checkOneTrader,
  checkRss,
  checkSubsystems,
  checkWork,
  FULL_MESH_BOUND_MS,
} from './invariants.mjs';
import { readPeerLedger, readPostgres } from './ledgers.mjs';
import { createNetLab, loopbackLab, namespacesUnavailable } from './netlab.mjs';
import { startPostgres } from './postgres.mjs';
import { printReport, replayCommand } from './report.mjs';
import { Workload } from './workload.mjs';

const STARTUP_TIMEOUT_MS = 90_000;
const WARMUP_MS = 15_000;
/** After the bound of the check, so a slow mesh is measured, not cut short. */
const MESH_WAIT_MS = FULL_MESH_BOUND_MS + 30_000;
const COMPLETION_TIMEOUT_MS = 240_000;
/** The fleet counts as idle once its queues stayed empty this long (longer than a feed poll). */
const IDLE_FOR_MS = 8_000;
const FEED_POLL_MS = 5_000;

function parse() {
  const { values } = parseArgs({
    options: {
      peers: { type: 'string', default: '3' },
      minutes: { type: 'string', default: '2' },
      seed: { type: 'string' },
      store: { type: 'string', default: 'sqlite' },
      report: { type: 'string' },
      keep: { type: 'boolean', default: false },
      loopback: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run chaos -- [--peers 3] [--minutes 2] [--seed S] [--store sqlite|postgres] [--report FILE.json] [--keep] [--loopback]',
    );
    process.exit(0);
  }
  const peers = Number(values.peers);
  const minutes = Number(values.minutes);
  const seed = values.seed === undefined ? randomInt(1, 2 ** 31) : Number(values.seed);
  const problems = [];
  if (!Number.isInteger(peers) || peers < 2 || peers > 12)
    problems.push(`--peers must be 2 to 12; got "${values.peers}"`);
  if (!(minutes > 0 && minutes <= 24 * 60))
    problems.push(`--minutes must be above 0; got "${values.minutes}"`);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32)
    problems.push(`--seed must be a whole number below 2^32; got "${values.seed}"`);
  if (!['sqlite', 'postgres'].includes(values.store))
    problems.push(`--store must be sqlite or postgres; got "${values.store}"`);
  if (problems.length) {
    console.error(`npm run chaos: ${problems.join('; ')}`);
    process.exit(2);
  }
  return {
    peers,
    minutes,
    seed,
    store: values.store,
    report: values.report,
    keep: values.keep,
    loopback: values.loopback,
  };
}

const t0 = Date.now();
const say = (line) => console.log(`[chaos +${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}`);

/** Polls every peer's /mesh until each lists every other as connected; ms taken, or null. */
async function waitFullMesh(fleet, timeoutMs) {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    const views = await Promise.all(fleet.peers.map((_, i) => fleet.get(i, '/mesh').catch(() => null)));
    const full = views.every(
      (v, i) =>
        v &&
        fleet.peers.every(
          (q, j) => j === i || v.peers.some((p) => p.peerId === q.id && p.state === 'connected'),
        ),
    );
    if (full) return Date.now() - start;
    await sleep(250);
  }
  return null;
}

/** One established TCP connection per pair of peers, counted in the namespaces (ss). */
async function countLinks(lab, fleet, timeoutMs) {
  const pairs = [];
  const start = Date.now();
  for (;;) {
    pairs.length = 0;
    for (let i = 0; i < fleet.size; i++) {
      const conns = lab.faults.connections(i);
      for (let j = i + 1; j < fleet.size; j++) {
        const mine = `${fleet.peers[i].address}:`;
        const theirs = `${fleet.peers[j].address}:`;
        const n = conns.filter((c) => c.local.startsWith(mine) && c.remote.startsWith(theirs)).length;
        pairs.push({ pair: `${fleet.peers[i].id}-${fleet.peers[j].id}`, n });
      }
    }
    const ok = pairs.every((p) => p.n === 1);
    if (ok || Date.now() - start > timeoutMs) {
      const off = pairs.filter((p) => p.n !== 1);
      return {
        ok,
        detail: ok
          ? `${pairs.length} pairs, one TCP link each`
          : `pairs without exactly one link: ${off.map((p) => `${p.pair}=${p.n}`).join(', ')}`,
      };
    }
    await sleep(500);
  }
}

/** Turns the kill switch off where it is on, until every peer shows the same state; bounded. */
async function settleKillSwitch(fleet, injector, timeoutMs) {
  const start = Date.now();
  let states = [];
  while (Date.now() - start < timeoutMs) {
    states = await Promise.all(fleet.peers.map((_, i) => fleet.get(i, '/kill-switch').catch(() => null)));
    const on = states.findIndex((s) => s?.active);
    const same = states.every((s) => s && s.epoch === states[0]?.epoch && s.origin === states[0]?.origin);
    if (on < 0 && same) return states;
    if (on >= 0) {
      const res = await fleet
        .post(on, '/kill-switch', { activate: false, reason: 'chaos heal' })
        .catch(() => null);
      injector.record('heal', fleet.peers[on].id, `kill switch deactivated -> ${res?.status ?? 'no answer'}`);
    }
    await sleep(1_000);
  }
  return states;
}

/** Waits until every accepted item is final and every peer's queues stay empty for IDLE_FOR_MS. */
async function waitForWork(fleet, workload, shared, timeoutMs) {
  const start = Date.now();
  const open = new Map(workload.accepted);
  let idleSince = null;
  while (Date.now() - start < timeoutMs) {
    for (const [key, a] of [...open].slice(0, 60)) {
      // A job is asked of the peer that took it (its SQLite, or the fleet's database: both answer);
      // AI tasks of any peer with PostgreSQL.
      const peer = shared && a.kind === 'ai' ? 0 : a.peer;
      const path = a.kind === 'ai' ? `/ai/tasks/${a.id}` : `/freelance/jobs/${a.id}`;
      const v = await fleet.get(peer, path).catch(() => null);
      const final =
        a.kind === 'ai'
          ? ['completed', 'dead', 'cancelled']
          : ['delivered', 'dead', 'failed', 'rejected', 'skipped'];
      if (v && final.includes(v.status)) open.delete(key);
    }
    const queues = await Promise.all(fleet.peers.map((_, i) => fleet.get(i, '/queues').catch(() => null)));
    const busy = queues.some(
      (q) => !q || Object.values(q.queues).some((s) => s.queued + s.running + s.failed > 0),
    );
    if (open.size === 0 && !busy) {
      idleSince ??= Date.now();
      if (Date.now() - idleSince >= IDLE_FOR_MS) return Date.now() - start;
    } else idleSince = null;
    await sleep(1_000);
  }
  return null;
}

async function rssNow(fleet) {
  // Three readings a second apart, averaged: one reading catches a GC in the middle.
  const sums = fleet.peers.map(() => 0);
  for (let k = 0; k < 3; k++) {
    fleet.peers.forEach((_, i) => {
      sums[i] += fleet.rss(i);
    });
    await sleep(1_000);
  }
  return sums.map((s) => s / 3);
}

async function main() {
  const args = parse();
  requireBuild();
  const runDir = mkdtempSync(join(tmpdir(), 'qb-chaos-'));
  const why = args.loopback ? '--loopback asked for 127.0.0.1' : namespacesUnavailable();
  let lab;
  if (why) {
    console.warn(
      `WARNING: network namespaces cannot be made here (${why}); the peers run on 127.0.0.1 and the network faults (partition, delay, loss) are left out`,
    );
    const ports = [];
    for (let i = 0; i < args.peers; i++) ports.push(await freePort());
    lab = loopbackLab(args.peers, ports);
  } else {
    lab = createNetLab(args.peers);
  }
  let fleet;
  let pg = null;
  let fakes = null;
  let cleaned = false;
  const cleanupSync = () => {
    if (cleaned) return;
    cleaned = true;
    fleet?.killAllSync();
    pg?.stopSync();
    for (const p of lab.cleanup()) console.error(`cleanup: ${p}`);
    if (!args.keep) rmSync(runDir, { recursive: true, force: true });
  };
  process.on('exit', cleanupSync);
  const interrupted = async (signal) => {
    console.error(`\nchaos: ${signal}; stopping everything this run started`);
    setTimeout(() => process.exit(130), 20_000).unref();
    await fleet?.stopAll().catch(() => {});
    await pg?.stop().catch(() => {});
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);

  say(
    `seed ${args.seed}; ${args.peers} peers, ${args.minutes} min of faults, store ${args.store}; network ${lab.mode}${lab.mode === 'netns' ? ` (bridge ${lab.bridge}, ${lab.hostAddress}/24, netem ${lab.faults.netem ? 'yes' : 'no: tbf and nftables instead'})` : ''}`,
  );
  say(`replay: ${replayCommand(args)}`);
  fakes = await startFakes({ host: lab.hostAddress, random: makeRandom(args.seed, 2) });
  if (args.store === 'postgres') {
    pg = await startPostgres({
      host: lab.hostAddress,
      subnet: lab.mode === 'netns' ? `${lab.hostAddress.replace(/\.1$/, '.0')}/24` : null,
    });
    say(`PostgreSQL on ${lab.hostAddress}:${pg.port}`);
  }
  const market = join(runDir, 'market.csv');
  // Ticks of one second: the run, the warm-up and a generous tail for the heal and the checks.
  writeReplayCsv(market, Math.ceil(args.minutes * 60) + 1_800, makeRandom(args.seed, 3));
  const shared = {
    MESH_SECRET: randomBytes(32).toString('base64url'),
    API_TOKEN: randomBytes(32).toString('base64url'),
    FAULT_INJECTION: 'true',
    TRADING_MODE: 'paper',
    EXCHANGE: 'sim',
    TRADING_REPLAY_CSV: market,
    PAPER_ACCOUNT: 'chaos',
    AI_BASE_URL: fakes.aiBaseUrl,
    AI_API_KEY: 'chaos-key',
    AI_MODEL: 'chaos-model',
    AI_MAX_REQUESTS_PER_HOUR: '100000',
    AI_MAX_TOKENS_PER_HOUR: '100000000',
    FREELANCE_FEEDS: fakes.feedUrl,
    FREELANCE_POLL_INTERVAL: String(FEED_POLL_MS),
    FREELANCE_WEBHOOK_URL: fakes.webhookUrl,
    FREELANCE_WEBHOOK_SECRET: fakes.webhookSecret,
    FREELANCE_AUTO_EXECUTE: 'true',
    FREELANCE_MAX_EXECUTIONS_PER_HOUR: '100000',
    HEALTH_CHECK_INTERVAL: '5000',
    ...(pg ? { DATABASE_URL: pg.url } : {}),
  };
  fleet = new Fleet({ lab, runDir, shared });
  for (let i = 0; i < fleet.size; i++) fleet.start(i);
  const startupMs = await waitFullMesh(fleet, STARTUP_TIMEOUT_MS);
  if (startupMs === null)
    throw new Error(
      `no full mesh within ${STARTUP_TIMEOUT_MS / 1000} s of the start; logs in ${runDir} (--keep keeps them)`,
    );
  say(`full mesh of ${fleet.size} peers after ${(startupMs / 1000).toFixed(1)} s`);

  const workload = new Workload({ fleet, random: makeRandom(args.seed, 1), shared: !!pg, log: say });
  workload.start();
  await sleep(WARMUP_MS);
  const baseline = await rssNow(fleet);
  say(`warm-up over; RSS ${baseline.map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(', ')}`);

  const durationMs = Math.round(args.minutes * 60_000);
  const plan = planFaults({
    seed: args.seed,
    peers: fleet.size,
    durationMs,
    net: lab.faults.supported,
    postgres: !!pg,
  });
  say(`${plan.length} faults planned over ${args.minutes} min`);
  const injector = new Injector({ fleet, lab, pg, log: (l) => console.log(l) });
  const chaosStart = Date.now();
  await injector.run(plan);
  const left = chaosStart + durationMs - Date.now();
  if (left > 0) await sleep(left);

  say('chaos over: healing');
  await workload.stop();
  fakes.freeze();
  const healStart = Date.now();
  const healedAt = await injector.heal();
  const fullMeshMs = await waitFullMesh(fleet, MESH_WAIT_MS);
  say(
    fullMeshMs === null
      ? 'no full mesh after the heal'
      : `full mesh ${(fullMeshMs / 1000).toFixed(1)} s after the heal`,
  );
  const links = lab.mode === 'netns' ? await countLinks(lab, fleet, 15_000) : null;
  const killSwitch = await settleKillSwitch(fleet, injector, 30_000);
  const unanswered = await workload.drain(Date.now() + 60_000);
  if (unanswered > 0) say(`${unanswered} submission(s) never answered`);
  const workMs = await waitForWork(fleet, workload, !!pg, COMPLETION_TIMEOUT_MS);
  say(
    workMs === null
      ? `work not finished within ${COMPLETION_TIMEOUT_MS / 1000} s`
      : `all work finished ${(workMs / 1000).toFixed(1)} s after the drain`,
  );
  const statuses = await Promise.all(fleet.peers.map((_, i) => fleet.get(i, '/status').catch(() => null)));
  const final = await rssNow(fleet);
  const healToEnd = Date.now() - healedAt;

  say('stopping the fleet');
  await fleet.stopAll();
  const peers = fleet.peers.map((p) => readPeerLedger(p.dataDir));
  const postgres = pg ? await readPostgres(pg.url) : null;
  await pg?.stop();
  await fakes.close();

  const results = [
    checkWork({
      accepted: workload.accepted,
      duplicates: workload.duplicates,
      peers,
      postgres,
      received: fakes.received,
    }),
    checkMesh({ fullMeshMs, links, linkCheck: links ? 'done' : 'skipped' }),
    checkKillSwitch(killSwitch),
    checkSubsystems(statuses),
    checkOneTrader({
      peers,
      windows: injector.windows,
      pgOrders: postgres?.orders ?? null,
      leaseLog: postgres?.leaseLog ?? null,
    }),
    checkNoOrderUnderKillSwitch({ peers, windows: injector.windows, pgOrders: postgres?.orders ?? null }),
    checkRss({ baseline, final }),
  ];
  const figures = {
    'full mesh at start': `${(startupMs / 1000).toFixed(1)} s`,
    'heal (every fault undone, every peer running)': `${((healedAt - healStart) / 1000).toFixed(1)} s`,
    'full mesh after the heal': fullMeshMs === null ? 'never' : `${(fullMeshMs / 1000).toFixed(1)} s`,
    'heal to end of checks': `${(healToEnd / 1000).toFixed(1)} s`,
    workload: JSON.stringify(workload.stats),
    fakes: JSON.stringify(fakes.stats),
    'worker respawns': statuses.map((s, i) => `peer-${i + 1}:${s?.workerRespawns ?? '?'}`).join(' '),
    'peer starts': fleet.peers.map((p) => `${p.id}:${p.starts}`).join(' '),
  };
  const ok = printReport({ args, results, figures, injector, mode: lab.mode, file: args.report });
  if (args.keep) console.log(`run folder kept: ${runDir}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`chaos: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
