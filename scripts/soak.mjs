#!/usr/bin/env node
/**
 * Soak: a fleet of real peers under steady load for hours, sampled every interval, with a verdict on
 * memory growth.
 *
 * It starts N peers (`node bot.js`, continuous mode: top process + worker) on 127.0.0.1 as one mesh
 * (MESH_SECRET, MESH_DISCOVERY=static, MESH_PEERS), with AI tasks against a local fake OpenAI
 * server, freelance jobs posted and approved (delivered to a local webhook sink), paper trading on
 * the built-in `sim` exchange, and GET /status, /health, /trading polled. Every --interval it
 * samples, per peer and process, RSS (/proc), open fds (/proc), CPU, and for the worker heap,
 * event-loop delay p99 and active handles (its GET /metrics) into soak.csv, and at the end draws
 * soak.svg + soak.html and prints RSS growth per peer after a warm-up (10 % of the run): the median
 * of the first samples after the warm-up against the median of the last ones. It exits 1 when a
 * peer grew more than --bound % (10) or a peer's top process died, 0 otherwise.
 *
 * Usage: npm run soak -- [--hours H | --minutes M] [--peers 3] [--interval 60] [--out DIR]
 *          [--bound 10] [--warmup 0.1] [--ai-every 2000] [--job-every 10000]
 * Bounded (the run's length plus start and stop deadlines); kills only the processes it started
 * (by PID and start time); peers' data lives in a temp folder removed at the end.
 */
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startFakeOpenAi, startWebhookSink } from './lib/fake-servers.mjs';
import { startFleet } from './lib/fleet.mjs';
import { call, closeAgent } from './lib/http-call.mjs';
import { CLK_TCK, requireBuild, sleep, until } from './lib/proc.mjs';
import { renderHtml, renderSvg } from './lib/soak-plot.mjs';
import {
  COLUMNS,
  csvLine,
  parseCsv,
  parsePrometheus,
  procFigures,
  workerFigures,
} from './lib/soak-sample.mjs';
import { rssGrowth } from './lib/soak-verdict.mjs';

const { values } = parseArgs({
  options: {
    hours: { type: 'string' },
    minutes: { type: 'string' },
    peers: { type: 'string', default: '3' },
    interval: { type: 'string', default: '60' },
    out: { type: 'string', default: 'data/soak' },
    bound: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '0.1' },
    'ai-every': { type: 'string', default: '2000' },
    'job-every': { type: 'string', default: '10000' },
    replot: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
const USAGE =
  'usage: npm run soak -- [--hours H | --minutes M] [--peers 3] [--interval SECONDS] [--out DIR] ' +
  '[--bound PERCENT] [--warmup FRACTION] [--ai-every MS] [--job-every MS]\n' +
  '       npm run soak -- --replot DIR   (redraws DIR/soak.svg and soak.html from DIR/soak.csv)';
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const num = (name) => Number(values[name]);
const runS =
  values.hours !== undefined
    ? num('hours') * 3600
    : values.minutes !== undefined
      ? num('minutes') * 60
      : 3600;
const count = num('peers');
const intervalS = num('interval');
const bound = num('bound');
const warmup = num('warmup');
const aiEveryMs = num('ai-every');
const jobEveryMs = num('job-every');
const bad = [
  !(runS > 0 && runS <= 7 * 24 * 3600) && '--hours/--minutes must give a run from 0 to 7 days',
  !(Number.isInteger(count) && count >= 1 && count <= 20) && '--peers must be a whole number from 1 to 20',
  !(intervalS >= 1) && '--interval must be at least 1 second',
  !(intervalS * 2 <= runS) && '--interval must leave at least 2 samples in the run',
  !(bound > 0) && '--bound must be a percentage > 0',
  !(warmup >= 0 && warmup < 1) && '--warmup must be a fraction from 0 to below 1',
  !(aiEveryMs >= 50 && jobEveryMs >= 50) && '--ai-every and --job-every must be at least 50 ms',
].filter(Boolean);
if (bad.length) {
  console.error(`${bad.join('\n')}\n${USAGE}`);
  process.exit(2);
}

/** Writes soak.svg and soak.html into `dir` for `rows`; the verdict decides the warm-up shading. */
function drawPlot(dir, rows, summary) {
  const peerCount = new Set(rows.map((r) => r.peer)).size;
  const minutes = Math.max(0, ...rows.map((r) => r.elapsed_s)) / 60;
  const title = `quantum-bot soak: ${peerCount} peers, ${minutes.toFixed(0)} min`;
  const verdict = rssGrowth(rows, { warmupFraction: warmup, boundPercent: bound });
  const svg = renderSvg(rows, { title, warmupS: verdict.warmupS });
  writeFileSync(join(dir, 'soak.svg'), svg);
  writeFileSync(join(dir, 'soak.html'), renderHtml(svg, { title, summary }));
  return verdict;
}

if (values.replot !== undefined) {
  const dir = resolve(values.replot);
  const rows = parseCsv(readFileSync(join(dir, 'soak.csv'), 'utf8'));
  const summaryFile = join(dir, 'summary.txt');
  const summary = existsSync(summaryFile) ? readFileSync(summaryFile, 'utf8').trim() : '';
  const verdict = drawPlot(dir, rows, summary);
  console.log(
    `redrew ${join(dir, 'soak.svg')} and soak.html from ${rows.length} rows; RSS verdict ${verdict.pass ? 'PASS' : 'FAIL'}`,
  );
  process.exit(0);
}
requireBuild();

const outDir = resolve(values.out);
mkdirSync(outDir, { recursive: true });
const csvPath = join(outDir, 'soak.csv');
const root = mkdtempSync(join(tmpdir(), 'qb-soak-'));
const log = (line) => console.log(`[${new Date().toISOString()}] ${line}`);

const openai = await startFakeOpenAi();
const sink = await startWebhookSink();
const fleet = await startFleet({
  count,
  root,
  env: {
    AI_BASE_URL: openai.baseUrl,
    AI_API_KEY: 'soak',
    AI_MODEL: 'soak-model',
    // The steady load is far above the spending guard's defaults, which would pause AI for the hour.
    AI_MAX_REQUESTS_PER_HOUR: '1000000',
    AI_MAX_TOKENS_PER_HOUR: '100000000',
    EXCHANGE: 'sim',
    TRADING_MODE: 'paper',
    FREELANCE_WEBHOOK_URL: sink.url,
    FREELANCE_WEBHOOK_SECRET: `whsec_${Buffer.from('soak-webhook-secret-0123456789').toString('base64')}`,
    FREELANCE_MAX_EXECUTIONS_PER_HOUR: '1000000',
    HEALTH_CHECK_INTERVAL: '5000',
  },
  // One paper account each: with SQLite per peer there is nothing to share, and a lease contest
  // would leave all but one peer idle.
  envFor: (i) => ({ PAPER_ACCOUNT: `soak-${i + 1}` }),
});
const { peers, token } = fleet;

let stopping = false;
async function shutdown() {
  stopping = true;
  const result = await fleet.stop();
  await openai.close();
  await sink.close();
  closeAgent();
  rmSync(root, { recursive: true, force: true });
  return result;
}

log(
  `soak: ${count} peer(s), ${(runS / 60).toFixed(1)} min, sample every ${intervalS} s; node ${process.version}, ` +
    `${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
);
try {
  const startDeadline = 60_000 + count * 10_000;
  await until(
    'every peer healthy',
    async () => (await Promise.all(peers.map((p) => call(`${p.url}/health`)))).every((r) => r.status === 200),
    { timeoutMs: startDeadline, intervalMs: 250 },
  );
  await until(
    'a full mesh',
    async () =>
      (await Promise.all(peers.map((p) => call(`${p.url}/mesh`)))).every(
        (r) => r.json?.peers?.filter((x) => x.state === 'connected').length === count - 1,
      ),
    { timeoutMs: startDeadline, intervalMs: 500 },
  );
} catch (err) {
  console.error(`soak: the fleet did not come up: ${err.message}; logs were in ${root}/peer-*/out.log`);
  await shutdown();
  process.exit(1);
}
log('fleet up: every peer healthy, full mesh');

// ----------------------------------------------------------------------------------------------
// Load: one loop per peer and kind, each awaiting its own request, so a slow peer gets no pile-up.

const load = { aiAccepted: 0, jobsAccepted: 0, approved: 0, pollOk: 0, failed: 0 };
const t0 = Date.now();
const endAt = t0 + runS * 1000;

async function loop(everyMs, body) {
  while (!stopping && Date.now() < endAt) {
    const started = Date.now();
    try {
      await body();
    } catch {
      load.failed++;
    }
    await sleep(Math.max(0, everyMs - (Date.now() - started)));
  }
}
const ok = (r, counter) => {
  if (r.status >= 200 && r.status < 300) load[counter]++;
  else load.failed++;
};
let seq = 0;
const loops = peers.flatMap((p) => [
  loop(aiEveryMs, async () => {
    const n = ++seq;
    const body = { prompt: `soak task ${n}`, idempotencyKey: `soak-${p.name}-${n}` };
    ok(await call(`${p.url}/ai/tasks`, { method: 'POST', body, token }), 'aiAccepted');
  }),
  loop(jobEveryMs, async () => {
    const n = ++seq;
    const body = { title: `soak job ${n}`, description: 'a steady-load job', budget: 100, source: 'soak' };
    ok(await call(`${p.url}/freelance/jobs`, { method: 'POST', body, token }), 'jobsAccepted');
    const waiting = await call(`${p.url}/freelance/jobs?status=awaiting-approval&limit=50`, { token });
    for (const job of waiting.json?.jobs ?? []) {
      ok(
        await call(`${p.url}/freelance/jobs/${job.id}/approve`, { method: 'POST', body: {}, token }),
        'approved',
      );
    }
  }),
  loop(5_000, async () => {
    for (const path of ['/status', '/health', '/trading'])
      ok(await call(`${p.url}${path}`, { token }), 'pollOk');
  }),
]);

// ----------------------------------------------------------------------------------------------
// Sampling

writeFileSync(csvPath, `${COLUMNS.join(',')}\n`);
const rows = [];
const readings = new Map();
const workerPids = new Map(peers.map((p) => [p.name, new Set()]));

async function sampleOnce() {
  const now = Date.now();
  const elapsed = Math.round((now - t0) / 1000);
  await Promise.all(
    peers.map(async (p) => {
      const procs = [['top', p.exit ? undefined : p.pid]];
      const w = p.worker();
      procs.push(['worker', w]);
      if (w) workerPids.get(p.name).add(w);
      const metrics = w ? await call(`${p.url}/metrics`) : undefined;
      const figures = metrics?.status === 200 ? workerFigures(parsePrometheus(metrics.text)) : {};
      for (const [proc, pid] of procs) {
        if (pid === undefined) continue;
        const key = `${p.name}/${proc}`;
        const f = procFigures(pid, readings.get(key), CLK_TCK, now);
        if (!f) continue;
        readings.set(key, f.reading);
        const row = {
          time: new Date(now).toISOString(),
          elapsed_s: elapsed,
          peer: p.name,
          process: proc,
          pid,
          rss_bytes: f.rss_bytes,
          open_fds: f.open_fds,
          cpu_percent: f.cpu_percent === undefined ? undefined : Number(f.cpu_percent.toFixed(2)),
          ...(proc === 'worker' ? figures : {}),
        };
        rows.push(row);
        appendFileSync(csvPath, csvLine(row));
      }
    }),
  );
}

const mib = (b) => `${(b / 1024 / 1024).toFixed(1)} MiB`;
for (let i = 0; ; i++) {
  const at = t0 + i * intervalS * 1000;
  if (at > endAt) break;
  await sleep(Math.max(0, at - Date.now()));
  await sampleOnce();
  const latest = rows.filter((r) => r.elapsed_s === rows.at(-1).elapsed_s && r.process === 'worker');
  log(
    `sample ${i}: ${latest.map((r) => `${r.peer} worker ${mib(r.rss_bytes)} heap ${mib(r.heap_used_bytes ?? 0)}`).join('; ')}` +
      ` | ai ${load.aiAccepted} jobs ${load.jobsAccepted} approved ${load.approved} failed ${load.failed}`,
  );
}
stopping = true;
await Promise.all(loops);

// ----------------------------------------------------------------------------------------------
// Verdict

const died = peers.filter((p) => p.exit).map((p) => p.name);
const respawned = [...workerPids].filter(([, s]) => s.size > 1).map(([n, s]) => `${n} (${s.size} workers)`);
const verdict = rssGrowth(rows, { warmupFraction: warmup, boundPercent: bound });
const lines = [
  `quantum-bot soak, ${new Date(t0).toISOString()} .. ${new Date().toISOString()}: ${count} peers, ` +
    `${(runS / 60).toFixed(1)} min, a sample every ${intervalS} s (${rows.length} rows), node ${process.version}, ` +
    `${cpus().length} CPUs, load at the end ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  `load: ${load.aiAccepted} AI tasks accepted (fake provider answered ${openai.stats.calls} calls), ` +
    `${load.jobsAccepted} freelance jobs posted, ${load.approved} approve calls answered 2xx (a retried or repeated approval counts again; ${sink.stats.deliveries} webhook deliveries), ` +
    `${load.pollOk} polls of /status, /health, /trading answered, ${load.failed} requests failed`,
  `RSS growth per peer (top + worker), median of the first ${verdict.window} samples after a ${verdict.warmupS.toFixed(0)} s ` +
    `warm-up against the median of the last ${verdict.window}; bound ${bound} %:`,
  ...verdict.peers.map(
    (p) =>
      `  ${p.peer}: ${mib(p.baselineBytes)} -> ${mib(p.endBytes)}: ${p.growthPercent >= 0 ? '+' : ''}${p.growthPercent.toFixed(1)} % ` +
      `(${Object.entries(p.byProcess)
        .map(([k, v]) => `${k} ${v >= 0 ? '+' : ''}${v.toFixed(1)} %`)
        .join(', ')}) ${p.pass ? 'PASS' : 'FAIL'}`,
  ),
  died.length ? `top process died: ${died.join(', ')} FAIL` : 'every top process ran to the end',
  respawned.length ? `worker respawned: ${respawned.join(', ')}` : 'no worker respawned',
];
const pass = verdict.pass && died.length === 0;
lines.push(pass ? 'soak PASS' : 'soak FAIL');
const summary = lines.join('\n');
drawPlot(outDir, rows, summary);
writeFileSync(join(outDir, 'summary.txt'), `${summary}\n`);
const stopped = await shutdown();
console.log(`\n${summary}`);
console.log(`samples: ${csvPath}; plot: ${join(outDir, 'soak.svg')} and soak.html`);
if (stopped.timedOut) console.log('note: a peer did not stop within 15 s of SIGTERM and was killed');
process.exit(pass ? 0 : 1);
