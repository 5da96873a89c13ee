/**
 * One resource sample of one process for the soak CSV. The worker serves GET /metrics (prom-client
 * default metrics: heap, event-loop delay p99, active handles); the top process (the supervisor)
 * serves nothing, so for it only what /proc shows: RSS, open file descriptors, CPU ticks.
 */
import { readdirSync } from 'node:fs';
import { readStat, rssBytes } from './proc.mjs';

/** The CSV's columns, in order; one row per process per sample. */
export const COLUMNS = [
  'time',
  'elapsed_s',
  'peer',
  'process',
  'pid',
  'rss_bytes',
  'heap_used_bytes',
  'heap_total_bytes',
  'event_loop_p99_ms',
  'active_handles',
  'open_fds',
  'cpu_percent',
];

/**
 * Values of unlabelled (or first-labelled) samples of a Prometheus text exposition by metric name.
 * @param {string} text
 * @returns {Map<string, number>}
 */
export function parsePrometheus(text) {
  const values = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (!m || values.has(m[1])) continue;
    values.set(m[1], Number(m[3]));
  }
  return values;
}

/** Figures of the worker from its /metrics (prefix qb_, see src/http/metrics/registry.ts). */
export function workerFigures(metrics) {
  const get = (name) => metrics.get(`qb_${name}`);
  const lag = get('nodejs_eventloop_lag_p99_seconds');
  return {
    heap_used_bytes: get('nodejs_heap_size_used_bytes'),
    heap_total_bytes: get('nodejs_heap_size_total_bytes'),
    event_loop_p99_ms: lag === undefined ? undefined : lag * 1000,
    active_handles: get('nodejs_active_handles_total'),
  };
}

export function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

/**
 * /proc readings of one process; `prev` is its reading of the last sample (same start time), for
 * the CPU % over the interval.
 */
export function procFigures(pid, prev, clkTck, nowMs) {
  const stat = readStat(pid);
  if (!stat) return undefined;
  const ticks = stat.utime + stat.stime;
  const same = prev && prev.startTime === stat.startTime;
  const cpu = same ? ((ticks - prev.ticks) / clkTck / ((nowMs - prev.atMs) / 1000)) * 100 : undefined;
  return {
    reading: { startTime: stat.startTime, ticks, atMs: nowMs },
    rss_bytes: rssBytes(pid),
    open_fds: openFds(pid),
    cpu_percent: cpu,
  };
}

const cell = (v) => (v === undefined || v === null || Number.isNaN(v) ? '' : String(v));

/** One CSV line (no quoting needed: every value is a number, an ISO time or a simple name). */
export const csvLine = (row) => `${COLUMNS.map((c) => cell(row[c])).join(',')}\n`;

/** Parses the CSV this module writes back into rows with numbers (blank cells are undefined). */
export function parseCsv(text) {
  const [head, ...lines] = text.trim().split('\n');
  const cols = head.split(',');
  return lines.map((line) => {
    const cells = line.split(',');
    const row = {};
    cols.forEach((c, i) => {
      const v = cells[i];
      row[c] = c === 'time' || c === 'peer' || c === 'process' ? v : v === '' ? undefined : Number(v);
    });
    return row;
  });
}
