// Types of bench-table.mjs for the TypeScript tests that import it.
export interface BenchRow {
  key: string;
  section: string;
  figure: string;
  unit: string;
  runs: number[];
  value: number;
  ratio?: { value: number; to: string };
  note?: string;
}
export function median(xs: number[]): number;
export function expectedKeys(sizes: number[]): string[];
export function row(
  key: string,
  section: string,
  figure: string,
  unit: string,
  runs: number[],
  options?: { ratioTo?: BenchRow; ratioName?: string; note?: string; value?: number },
): BenchRow;
export function toMarkdown(rows: BenchRow[]): string[];
