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
 * a minute. Needs the build (npm run bench:queue builds first).
 *
 * Usage: node scripts/bench-queue.mjs [--seconds 3] [--concurrency 64] [--batch 32]
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '256' },
    batch: { type: 'string', default: '64' },
    child: { type: 'boolean', default: false },
  },
});
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const BATCH = Number(args.batch);
const QUEUE = 'bench';

async function openBackend(target) {
  if (target.kind === 'sqlite') {
    const { openSqliteQueue } = await import('../dist/queue/sqlite.js');
    return openSqliteQueue(target.dir, { synchronous: target.synchronous });
  }
  const { openPostgresQueue } = await import('../dist/queue/postgres.js');
  return openPostgresQueue({ connectionString: target.url, maxConnections: 16 });
}

/** Runs one phase in this process until done or the deadline; returns the items it handled. */
async function runPhase(queue, phase, deadline, quota) {
  const cpu0 = process.cpuUsage();
  const result = await runLoops(queue, phase, deadline, quota);
  const cpu = process.cpuUsage(cpu0);
  return { count: result, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function runLoops(queue, phase, deadline, quota) {
  let count = 0;
  if (phase === 'enqueue') {
    const loop = async () => {
      while (count < quota && performance.now() < deadline) {
        count++;
        await queue.enqueue(QUEUE, { n: count, at: Date.now() });
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, loop));
    return count;
  }
  const owner = `bench-${process.pid}`;
  const loop = async () => {
    while (performance.now() < deadline) {
      const items = await queue.claim(QUEUE, { owner, limit: BATCH });
      if (items.length === 0) return;
      await Promise.all(items.map((item) => queue.complete(item.claim, { ok: true })));
      count += items.length;
    }
  };
  // Fewer loops than enqueue: each claims a batch, and their completions are the concurrency.
  await Promise.all(Array.from({ length: Math.max(1, Math.ceil(CONCURRENCY / BATCH) * 2) }, loop));
  return count;
}

if (args.child) {
  // Child: open the store, say ready, run the phase on `go`, report the count.
  process.on('message', async (msg) => {
    if (msg.type === 'open') {
      globalThis.queue = await openBackend(msg.target);
      process.send({ type: 'ready' });
    } else if (msg.type === 'go') {
      const result = await runPhase(
        globalThis.queue,
        msg.phase,
        performance.now() + msg.seconds * 1000,
        msg.quota,
      );
      process.send({ type: 'done', ...result });
    } else if (msg.type === 'close') {
      await globalThis.queue.close();
      process.exit(0);
    }
  });
} else {
  await main();
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
async function measure(target, procs, phase, quota) {
  if (procs === 1) {
    const queue = await openBackend(target);
    const t0 = performance.now();
    const { count, cpuSeconds } = await runPhase(queue, phase, t0 + SECONDS * 1000, quota);
    const rate = count / ((performance.now() - t0) / 1000);
    await queue.close();
    return { rate, perCpu: count / cpuSeconds };
  }
  const children = Array.from({ length: procs }, () =>
    fork(
      new URL(import.meta.url),
      ['--child', '--concurrency', String(CONCURRENCY), '--batch', String(BATCH)],
      {
        stdio: 'inherit',
      },
    ),
  );
  try {
    const ready = children.map((c) => once(c, 'ready'));
    for (const c of children) c.send({ type: 'open', target });
    await Promise.all(ready);
    const t0 = performance.now();
    const done = children.map((c) => once(c, 'done'));
    for (const c of children)
      c.send({ type: 'go', phase, seconds: SECONDS, quota: Math.ceil(quota / procs) });
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

async function main() {
  const rows = [];
  const dirs = [];
  let pg;
  const targets = [
    { label: 'SQLite, synchronous=NORMAL', make: () => sqliteTarget('NORMAL') },
    { label: 'SQLite, synchronous=FULL', make: () => sqliteTarget('FULL') },
    { label: 'PostgreSQL 15, fsync+synchronous_commit on', make: pgTarget },
  ];
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
      for (const procs of [1, 3]) {
        const target = await t.make();
        // Create the schema once, before several processes open the same fresh store at once.
        if (!target.skip) await (await openBackend(target)).close();
        if (target.skip) {
          rows.push([t.label, procs, 'skipped', target.skip]);
          continue;
        }
        // Enough items that the claim phase never runs dry before its deadline on a fast store.
        const enq = await measure(target, procs, 'enqueue', 1_000_000);
        const claim = await measure(target, procs, 'claim+complete', Number.POSITIVE_INFINITY);
        const fmt = (m) => `${Math.round(m.rate)} (${Math.round(m.perCpu)})`;
        rows.push([t.label, procs, fmt(enq), fmt(claim)]);
        console.error(`  ${t.label}, ${procs} proc: enqueue ${fmt(enq)}, claim+complete ${fmt(claim)}`);
      }
    }
  } finally {
    await pg?.stop();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `\nqueue throughput, items/s (${availableParallelism()} cores, load ${loadavg()[0].toFixed(2)}, ` +
      `${SECONDS} s per phase, ${CONCURRENCY} concurrent enqueues, claim batches of ${BATCH})\n`,
  );
  console.log('items per second of wall time (in brackets: per CPU-second of the bench processes)\n');
  const header = ['backend', 'processes', 'enqueue/s', 'claim+complete/s'];
  const table = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  const line = (r) => console.log(`| ${r.map((c, i) => (c ?? '').padEnd(widths[i])).join(' | ')} |`);
  line(header);
  line(widths.map((w) => '-'.repeat(w)));
  for (const r of table.slice(1)) line(r);
}
