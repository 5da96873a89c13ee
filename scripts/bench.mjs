#!/usr/bin/env node
/**
 * npm run bench: one table of the project's figures, each a median of repeated runs and, where a
 * peer exists, a ratio to it measured in the same run. It composes the single benchmarks:
 *   HTTP       GET /health and GET /status req/s and p99 (autocannon) against a bare fastify
 *              hello-world (bench-http.mjs);
 *   mesh       full-mesh time, SIGKILL-to-down, restart-to-relinked, kill-switch propagation for each
 *              N (bench-mesh.mjs), and the most peers this machine holds in a full, healthy mesh
 *              (lib/mesh-capacity.mjs, a bounded search);
 *   queue      enqueue and claim+complete rates, SQLite and PostgreSQL (bench-queue.mjs; PostgreSQL
 *              in a temp folder, skipped with the reason when its binaries are absent);
 *   trading    ticks per second through strategy and ledger (bench-trading.mjs);
 *   resources  idle RSS and CPU of one peer, with EXCHANGE=sim and with ccxt loaded (bench-trading.mjs).
 * It prints the table, writes it with the date, machine and load to --out (docs/bench.md), and the
 * rows as JSON to --json when given. It never fails on speed: figures are for people, bounds are
 * for tests; it exits non-zero only when it could not run.
 *
 * Usage: npm run bench -- [--quick] [--repeats 3] [--mesh-repeats R] [--sizes 5,25,50]
 *          [--max-peers 80] [--only http,mesh,capacity,queue,trading,resources] [--out docs/bench.md]
 *          [--json FILE]
 * --quick: one run each, small sizes, short phases: a smoke run of one to two minutes on a busy machine.
 */
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchHealth } from './bench-http.mjs';
import { benchMesh } from './bench-mesh.mjs';
import { benchQueue } from './bench-queue.mjs';
import { benchPeerResources, benchTicks } from './bench-trading.mjs';
import { expectedKeys, row, toMarkdown } from './lib/bench-table.mjs';
import { closeAgent } from './lib/http-call.mjs';
import { meshCapacity } from './lib/mesh-capacity.mjs';
import { requireBuild } from './lib/proc.mjs';

const SECTIONS = ['http', 'mesh', 'capacity', 'queue', 'trading', 'resources'];
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    repeats: { type: 'string' },
    'mesh-repeats': { type: 'string' },
    sizes: { type: 'string' },
    'max-peers': { type: 'string' },
    only: { type: 'string', default: SECTIONS.join(',') },
    out: { type: 'string', default: 'docs/bench.md' },
    json: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
const USAGE =
  'usage: npm run bench -- [--quick] [--repeats 3] [--mesh-repeats R] [--sizes 5,25,50] [--max-peers 80] ' +
  `[--only ${SECTIONS.join(',')}] [--out docs/bench.md] [--json FILE]`;
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = values.quick;
const repeats = Number(values.repeats ?? (quick ? 1 : 3));
const meshRepeats = Number(values['mesh-repeats'] ?? repeats);
const sizes = (values.sizes ?? (quick ? '3' : '5,25,50')).split(',').map(Number);
const maxPeers = Number(values['max-peers'] ?? (quick ? 3 : 80));
const only = values.only.split(',');
const bad = [
  !(Number.isInteger(repeats) && repeats >= 1 && repeats <= 20) && '--repeats must be 1 to 20',
  !(Number.isInteger(meshRepeats) && meshRepeats >= 1 && meshRepeats <= 20) &&
    '--mesh-repeats must be 1 to 20',
  sizes.some((n) => !Number.isInteger(n) || n < 2 || n > 100) &&
    '--sizes must list whole numbers from 2 to 100',
  !(Number.isInteger(maxPeers) && maxPeers >= 2 && maxPeers <= 200) && '--max-peers must be 2 to 200',
  only.some((s) => !SECTIONS.includes(s)) && `--only takes ${SECTIONS.join(', ')}`,
].filter(Boolean);
if (bad.length) {
  console.error(`${bad.join('\n')}\n${USAGE}`);
  process.exit(2);
}
requireBuild();

const settings = quick
  ? {
      httpS: 1,
      queueS: 0.3,
      ticks: 200,
      settleMs: 2_000,
      idleMs: 1_000,
      meshIdleS: 1,
      capFrom: 2,
      refine: 0,
      holdMs: 1_000,
    }
  : {
      httpS: 5,
      queueS: 3,
      ticks: 3_000,
      settleMs: 8_000,
      idleMs: 5_000,
      meshIdleS: 5,
      capFrom: 10,
      refine: 2,
      holdMs: 10_000,
    };

const progress = (line) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
const loads = [loadavg()[0]];
const loadSampler = setInterval(() => loads.push(loadavg()[0]), 10_000).unref();
const startedAt = new Date();
const rows = [];
const failed = (key, section, figure, unit, err) =>
  row(key, section, figure, unit, [], { note: `not measured: ${err.message ?? err}` });

async function section(name, keys, body) {
  if (!only.includes(name)) return;
  progress(`${name}...`);
  try {
    rows.push(...(await body()));
  } catch (err) {
    progress(`${name} failed: ${err.stack ?? err}`);
    rows.push(...keys.map(([key, figure, unit]) => failed(key, name, figure, unit, err)));
  }
}

// ----------------------------------------------------------------------------------------------

const HTTP_KEYS = [
  ['http.hello.rps', 'bare fastify hello-world, req/s', 'req/s'],
  ['http.hello.p99', 'bare fastify hello-world, p99', 'ms'],
  ['http.health.rps', 'GET /health, req/s', 'req/s'],
  ['http.health.p99', 'GET /health, p99', 'ms'],
  ['http.status.rps', 'GET /status, req/s', 'req/s'],
  ['http.status.p99', 'GET /status, p99', 'ms'],
];
await section('http', HTTP_KEYS, async () => {
  const results = await benchHealth({ durationS: settings.httpS, rounds: repeats });
  const by = Object.fromEntries(results.map((r) => [r.name, r]));
  const note = `autocannon, 10 connections, ${settings.httpS} s per run, targets interleaved`;
  const hello = row('http.hello.rps', 'HTTP', HTTP_KEYS[0][1], 'req/s', by['hello-world'].reqPerSecRuns, {
    note,
  });
  const helloP99 = row('http.hello.p99', 'HTTP', HTTP_KEYS[1][1], 'ms', by['hello-world'].p99MsRuns);
  const out = [hello, helloP99];
  for (const [name, key] of [
    ['/health', 'health'],
    ['/status', 'status'],
  ]) {
    const r = by[name];
    const bad = r.non2xx + r.errors > 0 ? `${r.non2xx} non-2xx, ${r.errors} errors` : undefined;
    out.push(
      row(`http.${key}.rps`, 'HTTP', `GET ${name}, req/s`, 'req/s', r.reqPerSecRuns, {
        ratioTo: hello,
        ratioName: 'hello-world',
        note: bad,
      }),
      row(`http.${key}.p99`, 'HTTP', `GET ${name}, p99`, 'ms', r.p99MsRuns, {
        ratioTo: helloP99,
        ratioName: 'hello-world',
      }),
    );
  }
  return out;
});

const MESH_FIGURES = [
  ['full', 'full mesh (last spawn -> all connected)', 'fullMeshMs'],
  ['down', 'SIGKILL -> down everywhere', 'downMs'],
  ['relink', 'restart -> relinked everywhere', 'relinkMs'],
  ['killswitch', 'kill switch -> seen everywhere', 'killSwitchMs'],
];
for (const n of sizes) {
  const keys = MESH_FIGURES.map(([f, figure]) => [`mesh.${n}.${f}`, `N=${n}: ${figure}`, 'ms']);
  await section('mesh', keys, async () => {
    const results = [];
    for (let i = 0; i < meshRepeats; i++) {
      progress(`mesh N=${n}, run ${i + 1} of ${meshRepeats}`);
      results.push(...(await benchMesh({ sizes: [n], idleSeconds: settings.meshIdleS })));
    }
    const errors = results.filter((r) => r.error).map((r) => r.error.split('\n')[0]);
    const note = errors.length ? `${errors.length} run(s) failed: ${errors[0]}` : undefined;
    return MESH_FIGURES.map(([f, figure, field], i) =>
      row(
        `mesh.${n}.${f}`,
        'mesh',
        `N=${n}: ${figure}`,
        'ms',
        results.map((r) => r[field] ?? Number.NaN),
        {
          note: i === 0 ? note : undefined,
        },
      ),
    );
  });
}

await section('capacity', [['mesh.capacity', 'most peers in a full, healthy mesh', 'peers']], async () => {
  const cap = await meshCapacity({
    from: Math.min(settings.capFrom, maxPeers),
    max: maxPeers,
    refine: settings.refine,
    holdMs: settings.holdMs,
    onStep: (s) => progress(`capacity N=${s.n}: ${s.held ? `held (${Math.round(s.ms)} ms)` : s.reason}`),
  });
  const steps = cap.steps.map((s) => `${s.n}${s.held ? ' held' : ' failed'}`).join(', ');
  return [
    row('mesh.capacity', 'mesh', 'most peers in a full, healthy mesh (one search)', 'peers', [cap.held], {
      note:
        `steps: ${steps}; ended by: ${cap.limit}. Held = /health and /ready 200 and N-1 links on every peer ` +
        `within 60 s + 2 s x N of the last spawn, still so ${settings.holdMs / 1000} s later; one process per peer`,
    }),
  ];
});

const QUEUE_KEYS = ['sqlite', 'postgres'].flatMap((b) => [
  [`queue.${b}.enqueue`, `${b === 'sqlite' ? 'SQLite' : 'PostgreSQL'} enqueue`, 'items/s'],
  [`queue.${b}.claim`, `${b === 'sqlite' ? 'SQLite' : 'PostgreSQL'} claim+complete`, 'items/s'],
]);
await section('queue', QUEUE_KEYS, async () => {
  const runs = [];
  for (let i = 0; i < repeats; i++) {
    progress(`queue run ${i + 1} of ${repeats}`);
    runs.push(
      await benchQueue({ seconds: settings.queueS, procs: [1], backends: ['sqlite-normal', 'postgres'] }),
    );
  }
  const pick = (backend) => runs.map((rs) => rs.find((r) => r.backend === backend));
  const sqlite = pick('sqlite-normal');
  const pg = pick('postgres');
  const note = `one process, 256 concurrent enqueues, claim batches of 64, ${settings.queueS} s per phase`;
  const sEnq = row(
    'queue.sqlite.enqueue',
    'queue',
    'SQLite (synchronous=NORMAL) enqueue',
    'items/s',
    sqlite.map((r) => r.enqueue.rate),
    { note },
  );
  const sClaim = row(
    'queue.sqlite.claim',
    'queue',
    'SQLite (synchronous=NORMAL) claim+complete',
    'items/s',
    sqlite.map((r) => r.claim.rate),
  );
  const skipped = pg.find((r) => r.skipped)?.skipped;
  const pgNote = skipped
    ? `skipped: ${skipped}`
    : 'PostgreSQL 15 in a temp folder, fsync and synchronous_commit on';
  const value = (r, phase) => (r.skipped ? Number.NaN : r[phase].rate);
  return [
    sEnq,
    sClaim,
    row(
      'queue.postgres.enqueue',
      'queue',
      'PostgreSQL enqueue',
      'items/s',
      pg.map((r) => value(r, 'enqueue')),
      {
        ratioTo: sEnq,
        ratioName: 'SQLite',
        note: pgNote,
      },
    ),
    row(
      'queue.postgres.claim',
      'queue',
      'PostgreSQL claim+complete',
      'items/s',
      pg.map((r) => value(r, 'claim')),
      {
        ratioTo: sClaim,
        ratioName: 'SQLite',
      },
    ),
  ];
});

await section('trading', [['trading.ticks', 'ticks through strategy and ledger', 'ticks/s']], async () => {
  const t = await benchTicks({ runs: repeats, ticks: settings.ticks });
  return [
    row('trading.ticks', 'trading', 'ticks through strategy and ledger', 'ticks/s', t.runs, {
      note: `sim market, EMA 12/26 over 200 candles, paper broker, SQLite ledger; ${t.ticks} ticks per run`,
    }),
  ];
});

const RESOURCE_KEYS = ['sim', 'ccxt'].flatMap((e) => [
  [`resources.${e}.rss`, `idle RSS per peer, ${e}`, 'MiB'],
  [`resources.${e}.cpu`, `idle CPU per peer, ${e}`, '% of a core'],
]);
await section('resources', RESOURCE_KEYS, async () => {
  const [sim, ccxt] = await benchPeerResources({
    runs: repeats,
    settleMs: settings.settleMs,
    idleMs: settings.idleMs,
  });
  const note =
    `one process (CONTINUOUS_MODE=false), nobody calling it; RSS ${settings.settleMs / 1000} s after the first ` +
    `/health 200, CPU over the next ${settings.idleMs / 1000} s`;
  const simRss = row(
    'resources.sim.rss',
    'resources',
    'idle RSS per peer, EXCHANGE=sim',
    'MiB',
    sim.runs.map((r) => r.rssMiB),
    { note },
  );
  const simCpu = row(
    'resources.sim.cpu',
    'resources',
    'idle CPU per peer, EXCHANGE=sim',
    '% of a core',
    sim.runs.map((r) => r.cpuPercent),
  );
  const simStart = row(
    'resources.sim.start',
    'resources',
    'start to first /health 200, EXCHANGE=sim',
    'ms',
    sim.runs.map((r) => r.startMs),
  );
  return [
    simRss,
    simCpu,
    simStart,
    row(
      'resources.ccxt.rss',
      'resources',
      'idle RSS per peer, ccxt loaded (binance)',
      'MiB',
      ccxt.runs.map((r) => r.rssMiB),
      {
        ratioTo: simRss,
        ratioName: 'sim',
        note: 'EXCHANGE_API_URL at a closed local port: nothing leaves the machine',
      },
    ),
    row(
      'resources.ccxt.cpu',
      'resources',
      'idle CPU per peer, ccxt loaded (binance)',
      '% of a core',
      ccxt.runs.map((r) => r.cpuPercent),
      {
        ratioTo: simCpu,
        ratioName: 'sim',
      },
    ),
    row(
      'resources.ccxt.start',
      'resources',
      'start to first /health 200, ccxt loaded',
      'ms',
      ccxt.runs.map((r) => r.startMs),
      {
        ratioTo: simStart,
        ratioName: 'sim',
      },
    ),
  ];
});

// ----------------------------------------------------------------------------------------------

clearInterval(loadSampler);
closeAgent();
loads.push(loadavg()[0]);
const finishedAt = new Date();
const meanLoad = loads.reduce((a, b) => a + b, 0) / loads.length;
const command = `npm run bench --${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`;
const header = [
  `Measured ${startedAt.toISOString()} .. ${finishedAt.toISOString()} with \`${command}\`: node ${process.version}, ` +
    `${cpus().length} CPUs (${cpus()[0]?.model?.trim() ?? 'unknown'}), ${(totalmem() / 1024 ** 3).toFixed(0)} GiB RAM; ` +
    `1-minute load average ${loads[0].toFixed(1)} at the start, ${loads.at(-1).toFixed(1)} at the end, ` +
    `mean ${meanLoad.toFixed(1)}, max ${Math.max(...loads).toFixed(1)} (sampled every 10 s; above ${cpus().length} ` +
    'the machine was shared with other work and every figure is lower than on an idle machine).',
  `Each figure is the median of ${repeats} run(s) (mesh: ${meshRepeats}); a ratio divides it by the figure named, ` +
    'measured in the same run.',
];
const table = toMarkdown(rows);
const missing = expectedKeys(only.includes('mesh') ? sizes : []).filter(
  (k) =>
    only.some((s) => k.startsWith(s === 'capacity' ? 'mesh.capacity' : `${s}.`)) &&
    !rows.some((r) => r.key === k),
);
console.log(`\n${header.join('\n')}\n\n${table.join('\n')}`);
if (missing.length) console.log(`\nrows missing: ${missing.join(', ')}`);
const out = resolve(values.out);
writeFileSync(
  out,
  `# quantum-bot benchmark\n\n<!-- written by npm run bench (scripts/bench.mjs); rerun it to refresh -->\n\n${header.join('\n\n')}\n\n${table.join('\n')}\n`,
);
console.log(`\nwritten to ${out}`);
if (values.json) {
  writeFileSync(
    resolve(values.json),
    `${JSON.stringify({ startedAt, finishedAt, loads, repeats, meshRepeats, sizes, rows }, null, 2)}\n`,
  );
}
process.exit(0);
