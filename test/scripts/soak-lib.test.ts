/**
 * The soak's pure parts: the RSS-growth verdict (warm-up skipped, medians, the bound), the
 * Prometheus text it reads the worker's heap, event-loop delay and handles from, the CSV round trip,
 * and the plot (one polyline per peer and process, axis ticks that cover the data).
 */
import { describe, expect, it } from 'vitest';
import { renderSvg, ticks } from '../../scripts/lib/soak-plot.mjs';
import {
  COLUMNS,
  csvLine,
  parseCsv,
  parsePrometheus,
  workerFigures,
} from '../../scripts/lib/soak-sample.mjs';
import { rssGrowth, type SampleRow } from '../../scripts/lib/soak-verdict.mjs';

const MIB = 1024 * 1024;

/** One sample a minute for an hour; `rss(peer, process, minute)` in MiB. */
function hour(rss: (peer: string, proc: string, minute: number) => number): SampleRow[] {
  const rows: SampleRow[] = [];
  for (let m = 0; m <= 60; m++) {
    for (const peer of ['peer-1', 'peer-2']) {
      for (const proc of ['top', 'worker'])
        rows.push({ elapsed_s: m * 60, peer, process: proc, rss_bytes: rss(peer, proc, m) * MIB });
    }
  }
  return rows;
}

describe('rssGrowth', () => {
  it('ignores the warm-up: steep early growth, flat afterwards, passes', () => {
    const v = rssGrowth(hour((_p, proc, m) => (proc === 'top' ? 50 : m < 6 ? 100 + m * 20 : 220)));
    expect(v.warmupS).toBe(360);
    expect(v.pass).toBe(true);
    for (const p of v.peers) {
      expect(p.growthPercent).toBeCloseTo(0, 5);
      expect(p.baselineBytes).toBe(270 * MIB);
    }
  });

  it('fails the peer whose RSS grows past the bound after the warm-up, and only that one', () => {
    // peer-2's worker leaks 1 MiB a minute: 220 + 50 -> about 325 MiB, +20 %.
    const v = rssGrowth(hour((p, proc, m) => (proc === 'top' ? 50 : p === 'peer-2' ? 220 + m : 220)));
    expect(v.pass).toBe(false);
    const [one, two] = v.peers;
    expect(one?.pass).toBe(true);
    expect(two?.pass).toBe(false);
    expect(two?.growthPercent).toBeGreaterThan(10);
    expect(two?.byProcess.top).toBeCloseTo(0, 5);
    expect(two?.byProcess.worker).toBeGreaterThan(two?.growthPercent ?? 0);
  });

  it('takes medians, so one spike in the last samples does not fail a flat peer', () => {
    const v = rssGrowth(hour((_p, proc, m) => (proc === 'top' ? 50 : m === 59 ? 400 : 200)));
    expect(v.window).toBe(5);
    expect(v.pass).toBe(true);
  });

  it('skips samples where a process was missing (a worker between death and respawn)', () => {
    const rows = hour(() => 100).filter(
      (r) => !(r.peer === 'peer-1' && r.process === 'worker' && r.elapsed_s === 3600),
    );
    const v = rssGrowth(rows);
    expect(v.peers[0]?.growthPercent).toBeCloseTo(0, 5);
    expect(v.peers[0]?.samples).toBe(54);
  });

  it('passes nothing without samples', () => {
    expect(rssGrowth([]).pass).toBe(false);
  });
});

describe('the worker figures from GET /metrics', () => {
  it('reads heap, event-loop p99 (as ms) and active handles of prom-client default metrics', () => {
    const text = [
      '# HELP qb_nodejs_heap_size_used_bytes Process heap size used from Node.js in bytes.',
      '# TYPE qb_nodejs_heap_size_used_bytes gauge',
      'qb_nodejs_heap_size_used_bytes 41234567',
      'qb_nodejs_heap_size_total_bytes 61234567',
      'qb_nodejs_eventloop_lag_p99_seconds 0.012',
      'qb_nodejs_active_handles_total 17',
      'qb_nodejs_active_handles{type="Socket"} 9',
      'qb_subsystem_state{subsystem="mesh",state="running"} 1',
    ].join('\n');
    const m = parsePrometheus(text);
    expect(m.get('qb_subsystem_state')).toBe(1);
    expect(workerFigures(m)).toEqual({
      heap_used_bytes: 41234567,
      heap_total_bytes: 61234567,
      event_loop_p99_ms: 12,
      active_handles: 17,
    });
  });
});

describe('the CSV', () => {
  it('round-trips a row, blanks for what a process does not have', () => {
    const row = {
      time: '2026-01-01T00:00:00.000Z',
      elapsed_s: 60,
      peer: 'peer-1',
      process: 'top',
      pid: 42,
      rss_bytes: 1000,
    };
    const text = `${COLUMNS.join(',')}\n${csvLine(row)}`;
    const [back] = parseCsv(text);
    expect(back).toMatchObject(row);
    expect(back?.heap_used_bytes).toBeUndefined();
  });
});

describe('the plot', () => {
  it('has ticks that cover the range in round steps', () => {
    expect(ticks(0, 100)).toEqual([0, 20, 40, 60, 80, 100]);
    const t = ticks(0, 237);
    expect(t[0]).toBe(0);
    expect(t.at(-1)).toBeGreaterThanOrEqual(200);
  });

  it('draws one line per peer and process in each panel, and marks the warm-up', () => {
    const rows = hour(() => 100).map((r) => ({
      ...r,
      heap_used_bytes: r.process === 'worker' ? 40 * MIB : undefined,
      event_loop_p99_ms: r.process === 'worker' ? 11 : undefined,
      active_handles: r.process === 'worker' ? 12 : undefined,
      open_fds: 30,
      cpu_percent: 1,
    }));
    const svg = renderSvg(rows, { title: 'a <soak>', warmupS: 360 });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('a &lt;soak&gt;');
    // RSS, fds, CPU: 2 peers x 2 processes; heap, event loop, handles: 2 peers x worker.
    expect(svg.match(/<polyline/g)?.length).toBe(3 * 4 + 3 * 2);
    expect(svg).toContain('minutes');
    expect(svg).toContain('fill="#eee"');
  });
});
