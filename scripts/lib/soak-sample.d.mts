// Types of soak-sample.mjs for the TypeScript tests that import it.
export const COLUMNS: string[];
export function parsePrometheus(text: string): Map<string, number>;
export function workerFigures(metrics: Map<string, number>): {
  heap_used_bytes: number | undefined;
  heap_total_bytes: number | undefined;
  event_loop_p99_ms: number | undefined;
  active_handles: number | undefined;
};
export function openFds(pid: number): number | undefined;
export function csvLine(row: Record<string, unknown>): string;
export function parseCsv(text: string): Record<string, string | number | undefined>[];
