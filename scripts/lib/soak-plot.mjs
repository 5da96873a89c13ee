/**
 * Draws the soak's samples as one standalone SVG (a grid of small line charts: RSS, heap, event-loop
 * delay, active handles, open fds, CPU; one colour per peer, dashed for the top process) and an HTML
 * page that inlines it with the verdict. Hand-written rather than a charting library: the output
 * must render on GitHub and offline (no CDN, no script), and a few polylines need no dependency.
 */

const PANEL_W = 460;
const PANEL_H = 220;
const PAD = { left: 58, right: 12, top: 28, bottom: 34 };
const COLS = 2;
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#17becf', '#8c564b', '#e377c2'];

const MIB = 1024 * 1024;
export const PANELS = [
  { title: 'RSS (MiB)', value: (r) => r.rss_bytes / MIB, processes: ['top', 'worker'] },
  { title: 'worker heap used (MiB)', value: (r) => r.heap_used_bytes / MIB, processes: ['worker'] },
  { title: 'worker event-loop delay p99 (ms)', value: (r) => r.event_loop_p99_ms, processes: ['worker'] },
  { title: 'worker active handles', value: (r) => r.active_handles, processes: ['worker'] },
  { title: 'open file descriptors', value: (r) => r.open_fds, processes: ['top', 'worker'] },
  { title: 'CPU % (100 = one core)', value: (r) => r.cpu_percent, processes: ['top', 'worker'] },
];

const esc = (s) =>
  String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/** About five round tick values covering [lo, hi]. */
export function ticks(lo, hi) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push(Number(t.toPrecision(12)));
  return out;
}

/** A tick label: at most three significant digits, no trailing zeros (20, 2.5, 0.05). */
const fmt = (v) => String(Number(v.toPrecision(3)));

function panel(rows, spec, x0, y0, peers, runS, warmupS) {
  const series = [];
  for (const peer of peers) {
    for (const proc of spec.processes) {
      const pts = rows
        .filter((r) => r.peer === peer && r.process === proc)
        .map((r) => [r.elapsed_s, spec.value(r)])
        .filter(([, v]) => Number.isFinite(v));
      if (pts.length) series.push({ peer, proc, pts });
    }
  }
  const values = series.flatMap((s) => s.pts.map(([, v]) => v));
  let lo = values.length ? Math.min(0, ...values) : 0;
  let hi = values.length ? Math.max(...values) : 1;
  if (hi === lo) hi = lo + 1;
  const yt = ticks(lo, hi * 1.05);
  lo = Math.min(lo, yt[0]);
  hi = Math.max(hi, yt.at(-1));
  const w = PANEL_W - PAD.left - PAD.right;
  const h = PANEL_H - PAD.top - PAD.bottom;
  const sx = (t) => x0 + PAD.left + (runS > 0 ? (t / runS) * w : 0);
  const sy = (v) => y0 + PAD.top + h - ((v - lo) / (hi - lo)) * h;
  const minutes = runS >= 180;
  const xt = ticks(0, minutes ? runS / 60 : runS).map((t) => (minutes ? t * 60 : t));
  const parts = [
    `<text x="${x0 + PAD.left}" y="${y0 + 18}" font-weight="bold">${esc(spec.title)}</text>`,
    `<rect x="${x0 + PAD.left}" y="${y0 + PAD.top}" width="${w}" height="${h}" fill="none" stroke="#999"/>`,
  ];
  if (warmupS > 0) {
    parts.push(
      `<rect x="${sx(0)}" y="${y0 + PAD.top}" width="${sx(warmupS) - sx(0)}" height="${h}" fill="#eee"/>`,
    );
  }
  for (const v of yt) {
    parts.push(
      `<line x1="${x0 + PAD.left}" x2="${x0 + PAD.left + w}" y1="${sy(v)}" y2="${sy(v)}" stroke="#e4e4e4"/>`,
      `<text x="${x0 + PAD.left - 4}" y="${sy(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  }
  for (const t of xt) {
    parts.push(
      `<text x="${sx(t)}" y="${y0 + PAD.top + h + 14}" text-anchor="middle">${fmt(minutes ? t / 60 : t)}</text>`,
    );
  }
  parts.push(
    `<text x="${x0 + PAD.left + w}" y="${y0 + PAD.top + h + 28}" text-anchor="end">${minutes ? 'minutes' : 'seconds'}</text>`,
  );
  for (const s of series) {
    const colour = COLOURS[peers.indexOf(s.peer) % COLOURS.length];
    const d = s.pts.map(([t, v]) => `${sx(t).toFixed(1)},${sy(v).toFixed(1)}`).join(' ');
    const dash = s.proc === 'top' ? ' stroke-dasharray="5,3"' : '';
    parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="1.5"${dash} points="${d}"/>`);
  }
  return parts.join('\n');
}

/**
 * @param {Array<object>} rows samples as parsed from the CSV
 * @param {{title: string, warmupS?: number}} o
 */
export function renderSvg(rows, { title, warmupS = 0 }) {
  const peers = [...new Set(rows.map((r) => r.peer))].sort();
  const runS = Math.max(0, ...rows.map((r) => r.elapsed_s));
  const rowsOfPanels = Math.ceil(PANELS.length / COLS);
  const legendH = 46;
  const width = PANEL_W * COLS;
  const height = legendH + PANEL_H * rowsOfPanels;
  const legend = peers
    .map((p, i) => {
      const x = 10 + i * 110;
      const c = COLOURS[i % COLOURS.length];
      return `<line x1="${x}" x2="${x + 24}" y1="36" y2="36" stroke="${c}" stroke-width="2"/><text x="${x + 28}" y="40">${esc(p)}</text>`;
    })
    .join('\n');
  const note = `<text x="${10 + peers.length * 110}" y="40">solid: worker, dashed: top process; grey: warm-up</text>`;
  const panels = PANELS.map((spec, i) =>
    panel(rows, spec, (i % COLS) * PANEL_W, legendH + Math.floor(i / COLS) * PANEL_H, peers, runS, warmupS),
  ).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11" role="img" aria-label="${esc(title)}">
<title>${esc(title)}</title>
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="18" font-size="13" font-weight="bold">${esc(title)}</text>
${legend}
${note}
${panels}
</svg>
`;
}

/** An HTML page: the title, the verdict lines (preformatted) and the SVG inline. */
export function renderHtml(svg, { title, summary }) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body style="font-family: sans-serif; margin: 1em">
<h1 style="font-size: 1.2em">${esc(title)}</h1>
<pre>${esc(summary)}</pre>
${svg}
</body></html>
`;
}
