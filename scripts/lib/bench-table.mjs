/**
 * The one table of `npm run bench`, as pure functions: the rows a run must have (so the test can
 * check the shape), medians, ratios, and the markdown. A row is `{key, section, figure, value, unit,
 * runs, ratio?, note?}`: `value` is the median of `runs` (the single figures, in order); `ratio` is
 * `{value, to}`, the row's value over a peer measured in the same run; a row whose measurement could
 * not be made (PostgreSQL absent, a mesh that failed) has `value` NaN and says why in `note`.
 */

export const median = (xs) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/** The keys every run's table holds, for the mesh sizes measured. */
export function expectedKeys(sizes) {
  const http = ['hello', 'health', 'status'].flatMap((t) => [`http.${t}.rps`, `http.${t}.p99`]);
  const mesh = sizes.flatMap((n) => ['full', 'down', 'relink', 'killswitch'].map((f) => `mesh.${n}.${f}`));
  const queue = ['sqlite', 'postgres'].flatMap((b) => [`queue.${b}.enqueue`, `queue.${b}.claim`]);
  const resources = ['sim', 'ccxt'].flatMap((e) => [`resources.${e}.rss`, `resources.${e}.cpu`]);
  return [...http, ...mesh, 'mesh.capacity', ...queue, 'trading.ticks', ...resources];
}

/**
 * A row from single figures; `ratioTo` is the peer row (same run) its value is divided by, named
 * `ratioName` in the table (the peer's figure by default).
 */
export function row(key, section, figure, unit, runs, { ratioTo, ratioName, note, value } = {}) {
  const v = value ?? median(runs);
  const r = { key, section, figure, unit, runs, value: v };
  if (ratioTo && Number.isFinite(ratioTo.value) && ratioTo.value !== 0 && Number.isFinite(v)) {
    r.ratio = { value: v / ratioTo.value, to: ratioName ?? ratioTo.figure };
  }
  if (note) r.note = note;
  return r;
}

const fmtValue = (v) => {
  if (!Number.isFinite(v)) return '-';
  const a = Math.abs(v);
  return a >= 100 ? Math.round(v).toLocaleString('en-US') : a >= 10 ? v.toFixed(1) : v.toFixed(2);
};

/** The table as markdown lines. */
export function toMarkdown(rows) {
  const lines = [
    '| section | figure | median | unit | ratio (same run) | runs | note |',
    '| --- | --- | ---: | --- | --- | ---: | --- |',
  ];
  for (const r of rows) {
    const ratio = r.ratio ? `${r.ratio.value.toFixed(2)}x ${r.ratio.to}` : '';
    const runs = r.runs.filter((x) => Number.isFinite(x)).length;
    lines.push(
      `| ${r.section} | ${r.figure} | ${fmtValue(r.value)} | ${r.unit} | ${ratio} | ${runs} | ${(r.note ?? '').replace(/\|/g, '/').replace(/\n/g, ' ')} |`,
    );
  }
  return lines;
}
