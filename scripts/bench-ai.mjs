#!/usr/bin/env node
/**
 * End-to-end rate of AI tasks (npm run bench:ai): one real peer (`node bot.js`, top process and
 * worker, SQLite in a temp DATA_DIR) against a local OpenAI-compatible server that answers at once;
 * --tasks POST /ai/tasks (each answered 202 after its commit), then the time until every one is
 * `completed` through the queue, the openai SDK and the provider. Reported: intake (202s per
 * second), end to end (completed per second, from the first POST to the last completion), and the
 * provider calls made (at-least-once: more calls than tasks would be repeats). Repeated for each
 * AI_CONCURRENCY given; the queue's own rate (npm run bench:queue) is the ceiling.
 *
 * Bounded (--timeout per run), binds only 127.0.0.1, never mDNS (no MESH_SECRET), kills only what
 * it started. Usage: node scripts/bench-ai.mjs [--tasks 500] [--concurrency 2,8,32] [--timeout 120]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { startFakeOpenAi } from './lib/fake-servers.mjs';
import { startFleet } from './lib/fleet.mjs';
import { call, closeAgent } from './lib/http-call.mjs';
import { sleep } from './lib/proc.mjs';

/** POSTs in flight at once: a client that submits in parallel, well under the body/conn limits. */
const SUBMITTERS = 16;

async function until(what, check, deadline) {
  while (performance.now() < deadline) {
    if (await check()) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function runOnce({ tasks, concurrency, timeoutS }) {
  const root = mkdtempSync(join(tmpdir(), 'qb-bench-ai-'));
  const provider = await startFakeOpenAi();
  const fleet = await startFleet({
    count: 1,
    root,
    env: {
      AI_BASE_URL: provider.baseUrl,
      AI_API_KEY: 'bench',
      AI_MODEL: 'bench-model',
      AI_CONCURRENCY: String(concurrency),
      FREELANCE_ENABLED: 'false',
      BOT_ENABLED: 'false',
    },
  });
  const [peer] = fleet.peers;
  const token = fleet.token;
  const deadline = performance.now() + timeoutS * 1000;
  try {
    await until(
      'the peer to be ready',
      async () => (await call(`${peer.url}/ready`)).status === 200,
      deadline,
    );
    const ids = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SUBMITTERS }, async () => {
        while (next < tasks) {
          const i = next++;
          const res = await call(`${peer.url}/ai/tasks`, {
            method: 'POST',
            token,
            body: { prompt: `bench task ${i}`, idempotencyKey: `bench-${i}` },
          });
          if (res.status !== 202) throw new Error(`POST /ai/tasks answered ${res.status}: ${res.text}`);
          ids.push(res.json.id);
        }
      }),
    );
    const accepted = performance.now();
    await until(
      `${tasks} tasks completed`,
      async () => {
        const s = await call(`${peer.url}/status`);
        const depths = s.json?.queues?.ai;
        return depths !== undefined && depths.completed >= tasks;
      },
      deadline,
    );
    const done = performance.now();
    return {
      concurrency,
      intakePerS: tasks / ((accepted - t0) / 1000),
      endToEndPerS: tasks / ((done - t0) / 1000),
      providerCalls: provider.stats.calls,
      tasks,
    };
  } finally {
    await fleet.stop();
    await provider.close();
    rmSync(root, { recursive: true, force: true });
  }
}

export async function benchAi({ tasks = 500, concurrency = [2, 8, 32], timeoutS = 120 } = {}) {
  const results = [];
  for (const c of concurrency) results.push(await runOnce({ tasks, concurrency: c, timeoutS }));
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      tasks: { type: 'string', default: '500' },
      concurrency: { type: 'string', default: '2,8,32' },
      timeout: { type: 'string', default: '120' },
    },
  });
  const results = await benchAi({
    tasks: Number(values.tasks),
    concurrency: values.concurrency.split(',').map(Number),
    timeoutS: Number(values.timeout),
  });
  console.log(`AI tasks end to end, one peer, SQLite, load ${loadavg()[0].toFixed(1)}:`);
  console.log(
    '| AI_CONCURRENCY | intake (202/s) | completed/s (first POST to last completion) | provider calls |',
  );
  console.log('| --- | --- | --- | --- |');
  for (const r of results) {
    console.log(
      `| ${r.concurrency} | ${Math.round(r.intakePerS)} | ${Math.round(r.endToEndPerS)} | ${r.providerCalls} for ${r.tasks} tasks |`,
    );
  }
  closeAgent();
}
