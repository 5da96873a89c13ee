// Types of soak-plot.mjs for the TypeScript tests that import it.
export function ticks(lo: number, hi: number): number[];
export function renderSvg(
  rows: Record<string, unknown>[],
  options: { title: string; warmupS?: number },
): string;
export function renderHtml(svg: string, options: { title: string; summary: string }): string;
