/**
 * `npm run soak` end to end, shortened: two real peers (top process + worker each) under the steady
 * load for 30 s, sampled every 5 s. Checks the plumbing, not the machine: every peer and process in
 * the CSV with its figures, the load really served (AI tasks answered by the fake provider,
 * freelance jobs delivered), the plot and summary written, and the exit code following the verdict
 * (a bound no run can exceed here, so PASS and 0; the verdict itself is unit-tested in
 * soak-lib.test.ts). Nothing of the fleet is left running.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parseCsv } from '../../scripts/lib/soak-sample.mjs';
import { runScript } from './run-script.js';

const RUN_MS = 180_000;

describe('npm run soak, 30 s', () => {
  it(
    'samples every peer and process into the CSV, plots them and passes a generous bound',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'qb-soak-test-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const out = join(dir, 'out');
      const run = runScript(
        'soak.mjs',
        ['--minutes', '0.5', '--interval', '5', '--peers', '2', '--bound', '1000', '--out', out],
        dir,
      );
      expect(await run.exited, run.out()).toBe(0);
      expect(run.out()).toContain('soak PASS');

      const rows = parseCsv(readFileSync(join(out, 'soak.csv'), 'utf8'));
      for (const peer of ['peer-1', 'peer-2']) {
        for (const proc of ['top', 'worker']) {
          const mine = rows.filter((r) => r.peer === peer && r.process === proc);
          // 0, 5, ... 30 s: 7 samples; a loaded machine may lose the last one to the deadline.
          expect(mine.length, `${peer} ${proc}`).toBeGreaterThanOrEqual(6);
          for (const r of mine) {
            expect(r.rss_bytes as number).toBeGreaterThan(10 * 1024 * 1024);
            expect(r.open_fds as number).toBeGreaterThan(0);
          }
        }
        const worker = rows.filter((r) => r.peer === peer && r.process === 'worker');
        for (const r of worker) {
          expect(r.heap_used_bytes as number).toBeGreaterThan(0);
          expect(Number.isFinite(r.event_loop_p99_ms)).toBe(true);
          expect(r.active_handles as number).toBeGreaterThan(0);
        }
      }

      const summary = readFileSync(join(out, 'summary.txt'), 'utf8');
      expect(summary).toMatch(/peer-1: [\d.]+ MiB -> [\d.]+ MiB: [+-][\d.]+ %/);
      expect(summary).toMatch(/peer-2: [\d.]+ MiB -> [\d.]+ MiB: [+-][\d.]+ %/);
      const served = /fake provider answered (\d+) calls/.exec(summary);
      expect(Number(served?.[1])).toBeGreaterThan(0);
      const delivered = /(\d+) webhook deliveries\)/.exec(summary);
      expect(Number(delivered?.[1])).toBeGreaterThan(0);
      expect(summary).toContain('every top process ran to the end');
      const svg = readFileSync(join(out, 'soak.svg'), 'utf8');
      expect(svg.match(/<polyline/g)?.length).toBeGreaterThanOrEqual(12);
      expect(existsSync(join(out, 'soak.html'))).toBe(true);
    },
    RUN_MS,
  );
});
