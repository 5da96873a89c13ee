// Types of soak-verdict.mjs for the TypeScript tests that import it.
export interface SampleRow {
  elapsed_s: number;
  peer: string;
  process: string;
  rss_bytes?: number;
}
export interface PeerGrowth {
  peer: string;
  samples: number;
  baselineBytes: number;
  endBytes: number;
  growthPercent: number;
  byProcess: Record<string, number>;
  pass: boolean;
}
export function median(xs: number[]): number;
export function rssGrowth(
  rows: SampleRow[],
  options?: { warmupFraction?: number; boundPercent?: number; window?: number },
): { peers: PeerGrowth[]; pass: boolean; warmupS: number; window: number; boundPercent: number };
