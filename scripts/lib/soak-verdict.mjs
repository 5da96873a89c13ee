/**
 * The soak's verdict, a pure function of its samples: RSS growth per peer (top process + worker)
 * after a warm-up, as the median of the first samples after the warm-up against the median of the
 * last ones. Medians, not single samples, so one GC pause or one burst of load does not decide it.
 */

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};

/**
 * @param {Array<{elapsed_s: number, peer: string, process: string, rss_bytes?: number}>} rows
 * @param {{warmupFraction?: number, boundPercent?: number, window?: number}} [o]
 *   warmupFraction of the run ignored at its start (0.1); boundPercent the largest growth that
 *   passes (10); window the samples each median takes (at most 5, at most a quarter of those left
 *   after the warm-up, at least 1).
 * @returns {{peers: Array<{peer: string, samples: number, baselineBytes: number, endBytes: number,
 *   growthPercent: number, byProcess: Record<string, number>, pass: boolean}>, pass: boolean,
 *   warmupS: number, window: number, boundPercent: number}}
 */
export function rssGrowth(rows, { warmupFraction = 0.1, boundPercent = 10, window } = {}) {
  const runS = Math.max(0, ...rows.map((r) => r.elapsed_s));
  const warmupS = runS * warmupFraction;
  const byPeer = new Map();
  for (const r of rows) {
    if (r.elapsed_s < warmupS || !(r.rss_bytes > 0)) continue;
    const samples = byPeer.get(r.peer) ?? new Map();
    byPeer.set(r.peer, samples);
    const at = samples.get(r.elapsed_s) ?? {};
    at[r.process] = (at[r.process] ?? 0) + r.rss_bytes;
    samples.set(r.elapsed_s, at);
  }
  let k = 1;
  const peers = [...byPeer.keys()].sort().map((peer) => {
    // Only samples where every process of the peer was read: a worker between death and respawn
    // would otherwise look like a drop in RSS.
    const all = [...byPeer.get(peer).entries()].sort((a, b) => a[0] - b[0]);
    const names = [...new Set(all.flatMap(([, at]) => Object.keys(at)))];
    const complete = all.filter(([, at]) => names.every((n) => at[n] !== undefined)).map(([, at]) => at);
    k = window ?? Math.max(1, Math.min(5, Math.floor(complete.length / 4)));
    const first = complete.slice(0, k);
    const last = complete.slice(-k);
    const total = (at) => names.reduce((sum, n) => sum + at[n], 0);
    const growth = (pick) => (median(last.map(pick)) / median(first.map(pick)) - 1) * 100;
    const growthPercent = growth(total);
    return {
      peer,
      samples: complete.length,
      baselineBytes: median(first.map(total)),
      endBytes: median(last.map(total)),
      growthPercent,
      byProcess: Object.fromEntries(names.map((n) => [n, growth((at) => at[n])])),
      pass: complete.length >= 2 && Number.isFinite(growthPercent) && growthPercent <= boundPercent,
    };
  });
  return { peers, pass: peers.length > 0 && peers.every((p) => p.pass), warmupS, window: k, boundPercent };
}
