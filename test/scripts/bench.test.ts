/**
 * `npm run bench -- --quick`: the smoke run of the composed benchmark (real peers, real mesh, real
 * SQLite and PostgreSQL when its binaries exist). Only the table's shape is checked, never a speed:
 * every row present, every figure finite (or, for PostgreSQL without its binaries, skipped with the
 * reason), ratios where a peer exists, and the markdown file written with the run's date and load.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { expectedKeys } from '../../scripts/lib/bench-table.mjs';
import { postgresUnavailable } from '../helpers/postgres.js';
import { runScript } from './run-script.js';

/** The quick run took 80 to 90 s on the loaded 2-core machine; the bound leaves room for more load. */
const QUICK_RUN_MS = 240_000;

interface Row {
  key: string;
  value: number | null;
  runs: (number | null)[];
  ratio?: { value: number; to: string };
  note?: string;
}

describe('npm run bench -- --quick', () => {
  it(
    'prints and writes one table with every row, finite medians and same-run ratios',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'qb-bench-test-'));
      onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
      const md = join(dir, 'bench.md');
      const json = join(dir, 'bench.json');
      const run = runScript('bench.mjs', ['--quick', '--out', md, '--json', json], dir);
      expect(await run.exited, run.out()).toBe(0);

      const { rows, sizes } = JSON.parse(readFileSync(json, 'utf8')) as { rows: Row[]; sizes: number[] };
      expect(sizes).toEqual([3]);
      const byKey = new Map(rows.map((r) => [r.key, r]));
      const pgMissing = postgresUnavailable();
      for (const key of expectedKeys(sizes)) {
        const r = byKey.get(key);
        expect(r, `row ${key}`).toBeDefined();
        if (key.startsWith('queue.postgres') && pgMissing) {
          expect(rows.find((x) => x.key === 'queue.postgres.enqueue')?.note).toContain('skipped');
          continue;
        }
        // JSON turns NaN into null: a finite number is a figure that was measured.
        expect(Number.isFinite(r?.value), `${key}: ${JSON.stringify(r)}`).toBe(true);
        expect(r?.runs.length, key).toBeGreaterThanOrEqual(1);
      }
      expect(byKey.get('mesh.capacity')?.value).toBeGreaterThanOrEqual(3);
      // Ratios to a peer measured in the same run, where one exists.
      for (const key of ['http.health.rps', 'http.status.rps', 'resources.ccxt.rss']) {
        expect(Number.isFinite(byKey.get(key)?.ratio?.value), key).toBe(true);
      }
      if (!pgMissing) expect(Number.isFinite(byKey.get('queue.postgres.enqueue')?.ratio?.value)).toBe(true);

      // The markdown: when and under what load, then one line per row.
      const text = readFileSync(md, 'utf8');
      expect(text).toMatch(/Measured \d{4}-\d\d-\d\dT[\d:.]+Z \.\. /);
      expect(text).toMatch(/load average [\d.]+ at the start/);
      const tableLines = text.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---'));
      expect(tableLines.length).toBe(rows.length + 1);
      expect(run.out()).toContain('| section | figure | median |');
    },
    QUICK_RUN_MS,
  );
});
