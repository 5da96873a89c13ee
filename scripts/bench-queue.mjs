#!/usr/bin/env node
/**
 * Queue throughput, in items per second, for each backend and process count:
 *   enqueue          concurrent `enqueue` calls (each resolves after its commit);
 *   claim+complete   concurrent loops that claim a batch and complete every item of it.
 * Backends: SQLite synchronous=NORMAL and synchronous=FULL (one file in a temp folder), and
 * PostgreSQL 15 with its defaults (fsync=on, synchronous_commit=on) started in a temp folder by
 * test/helpers/postgres.ts (skipped with the reason when its binaries are missing). "3 proc" forks
 * three processes working on the same file / database at once; the figure is their sum over the
 * wall time from the common start to the last one finishing.
 *
 * Bounded: every phase stops after --seconds (default 3) whatever remains; the whole run takes about
 * a minute. Needs the build (npm run bench:queue builds first). `benchQueue()` returns the figures
 * (npm run bench composes it).
 *
 * Usage: node scripts/bench-queue.mjs [--seconds 3] [--concurrency 256] [--batch 64]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const QUEUE = 'bench';
const DEFAULTS = { seconds: 3, concurrency: 256, batch: 64 };

async function openBackend(target) {
  if (target.kind === 'sqlite') {
    const { openSqliteQueue } = await import('../dist/queue/sqlite.js');
    return openSqliteQueue(target.dir, { synchronous: target.synchronous });
  }
  const { openPostgresQueue } = await import('../dist/queue/postgres.js');
  return openPostgresQueue({ connectionString: target.url, maxConnections: 16 });
}

/** Runs one phase in this process until done or the deadline; returns the items it handled. */
async function runPhase(queue, phase, deadline, quota, o) {
  const cpu0 = process.cpuUsage();
  const result = await runLoops(queue, phase, deadline, quota, o);
  const cpu = process.cpuUsage(cpu0);
  return { count: result, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function runLoops(queue, phase, deadline, quota, { concurrency, batch }) {
  let count = 0;
  if (phase === 'enqueue') {
    const loop = async () => {
      while (count < quota && performance.now() < deadline) {
        count++;
        await queue.enqueue(QUEUE, { n: count, at: Date.now() });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    return count;
  }
  const owner = `bench-${process.pid}`;
  const loop = async () => {
    while (performance.now() < deadline) {
      const items = await queue.claim(QUEUE, { owner, limit: batch });
      if (items.length === 0) return;
      await Promise.all(items.map((item) => queue.complete(item.claim, { ok: true })));
      count += items.length;
    }
  };
  // Fewer loops than enqueue: each claims a batch, and their completions are the concurrency.
  await Promise.all(Array.from({ length: Math.max(1, Math.ceil(concurrency / batch) * 2) }, loop));
  return count;
}

/** Forked child: open the store, say ready, run the phase on `go`, report the count. */
function serveChild(o) {
  process.on('message', async (msg) => {
    if (msg.type === 'open') {
      globalThis.queue = await openBackend(msg.target);
      process.send({ type: 'ready' });
    } else if (msg.type === 'go') {
      const deadline = performance.now() + msg.seconds * 1000;
      const result = await runPhase(globalThis.queue, msg.phase, deadline, msg.quota, o);
      process.send({ type: 'done', ...result });
    } else if (msg.type === 'close') {
      await globalThis.queue.close();
      process.exit(0);
    }
  });
}

function once(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg.type === type) {
        child.off('message', onMessage);
        resolve(msg);
      }
    };
    child.on('message', onMessage);
    child.once('exit', (code) => code !== 0 && reject(new Error(`bench child exited ${code}`)));
  });
}

/**
 * One phase on `procs` processes (1: in this process). Returns items/s of wall time, and items per
 * CPU-second of the bench processes (the figure a loaded machine distorts least; the database
 * server's CPU is not in it).
 */
async function measure(target, procs, phase, quota, o) {
  if (procs === 1) {
    const queue = await openBackend(target);
    const t0 = performance.now();
    const { count, cpuSeconds } = await runPhase(queue, phase, t0 + o.seconds * 1000, quota, o);
    const rate = count / ((performance.now() - t0) / 1000);
    await queue.close();
    return { rate, perCpu: count / cpuSeconds };
  }
  const children = Array.from({ length: procs }, () =>
    fork(
      new URL(import.meta.url),
      ['--child', '--concurrency', String(o.concurrency), '--batch', String(o.batch)],
      { stdio: 'inherit' },
    ),
  );
  try {
    const ready = children.map((c) => once(c, 'ready'));
    for (const c of children) c.send({ type: 'open', target });
    await Promise.all(ready);
    const t0 = performance.now();
    const done = children.map((c) => once(c, 'done'));
    for (const c of children)
      c.send({ type: 'go', phase, seconds: o.seconds, quota: Math.ceil(quota / procs) });
    const counts = await Promise.all(done);
    const elapsed = (performance.now() - t0) / 1000;
    const exited = children.map((c) => new Promise((r) => c.once('exit', r)));
    for (const c of children) c.send({ type: 'close' });
    await Promise.all(exited);
    const count = counts.reduce((sum, m) => sum + m.count, 0);
    const cpuSeconds = counts.reduce((sum, m) => sum + m.cpuSeconds, 0);
    return { rate: count / elapsed, perCpu: count / cpuSeconds };
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
}

/**
 * Measures every backend (`backends`: any of 'sqlite-normal', 'sqlite-full', 'postgres') on each
 * process count; resolves to one row per pair: `{backend, label, procs, enqueue, claim}` (each
 * `{rate, perCpu}`), or `{backend, label, procs, skipped: reason}` when PostgreSQL is absent.
 * @param {{seconds?: number, concurrency?: number, batch?: number, procs?: number[],
 *   backends?: string[], onRow?: (row: object) => void}} [options]
 */
export async function benchQueue(options = {}) {
  const o = { ...DEFAULTS, ...options };
  const procsList = options.procs ?? [1, 3];
  const backends = options.backends ?? ['sqlite-normal', 'sqlite-full', 'postgres'];
  const rows = [];
  const dirs = [];
  let pg;
  const targets = [
    { backend: 'sqlite-normal', label: 'SQLite, synchronous=NORMAL', make: () => sqliteTarget('NORMAL') },
    { backend: 'sqlite-full', label: 'SQLite, synchronous=FULL', make: () => sqliteTarget('FULL') },
    { backend: 'postgres', label: 'PostgreSQL 15, fsync+synchronous_commit on', make: pgTarget },
  ].filter((t) => backends.includes(t.backend));
  function sqliteTarget(synchronous) {
    const dir = mkdtempSync(join(tmpdir(), 'qb-bench-queue-'));
    dirs.push(dir);
    return { kind: 'sqlite', dir, synchronous };
  }
  let dbs = 0;
  async function pgTarget() {
    if (!pg) {
      const helper = await import('../test/helpers/postgres.ts');
      const why = helper.postgresUnavailable();
      if (why) return { skip: why };
      pg = await helper.startPostgres({ fsync: true });
    }
    return { kind: 'postgres', url: await pg.createDatabase(`bench_${++dbs}`) };
  }
  try {
    for (const t of targets) {
      for (const procs of procsList) {
        const target = await t.make();
        if (target.skip) {
          rows.push({ backend: t.backend, label: t.label, procs, skipped: target.skip });
          continue;
        }
        // Create the schema once, before several processes open the same fresh store at once.
        await (await openBackend(target)).close();
        // Enough items that the claim phase never runs dry before its deadline on a fast store.
        const enqueue = await measure(target, procs, 'enqueue', 1_000_000, o);
        const claim = await measure(target, procs, 'claim+complete', Number.POSITIVE_INFINITY, o);
        const row = { backend: t.backend, label: t.label, procs, enqueue, claim };
        rows.push(row);
        options.onRow?.(row);
      }
    }
  } finally {
    await pg?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

async function main() {
  const { values: args } = parseArgs({
    options: {
      seconds: { type: 'string', default: String(DEFAULTS.seconds) },
      concurrency: { type: 'string', default: String(DEFAULTS.concurrency) },
      batch: { type: 'string', default: String(DEFAULTS.batch) },
      child: { type: 'boolean', default: false },
    },
  });
  const o = {
    seconds: Number(args.seconds),
    concurrency: Number(args.concurrency),
    batch: Number(args.batch),
  };
  if (args.child) {
    serveChild(o);
    return;
  }
  const fmt = (m) => `${Math.round(m.rate)} (${Math.round(m.perCpu)})`;
  const rows = await benchQueue({
    ...o,
    onRow: (r) =>
      console.error(
        `  ${r.label}, ${r.procs} proc: enqueue ${fmt(r.enqueue)}, claim+complete ${fmt(r.claim)}`,
      ),
  });
  console.log(
    `\nqueue throughput, items/s (${availableParallelism()} cores, load ${loadavg()[0].toFixed(2)}, ` +
      `${o.seconds} s per phase, ${o.concurrency} concurrent enqueues, claim batches of ${o.batch})\n`,
  );
  console.log('items per second of wall time (in brackets: per CPU-second of the bench processes)\n');
  const header = ['backend', 'processes', 'enqueue/s', 'claim+complete/s'];
  const cells = rows.map((r) =>
    r.skipped
      ? [r.label, String(r.procs), 'skipped', r.skipped]
      : [r.label, String(r.procs), fmt(r.enqueue), fmt(r.claim)],
  );
  const table = [header, ...cells];
  const widths = header.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  const line = (r) => console.log(`| ${r.map((c, i) => (c ?? '').padEnd(widths[i])).join(' | ')} |`);
  line(header);
  line(widths.map((w) => '-'.repeat(w)));
  for (const r of table.slice(1)) line(r);
}

if (import.meta.main) await main();
