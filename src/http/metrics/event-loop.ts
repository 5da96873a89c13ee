/**
 * The event-loop delay gauges of /metrics, net of the sampling resolution. prom-client's default
 * metrics report `nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds` straight from a
 * `monitorEventLoopDelay` histogram, which records whole timer intervals: with our 1 s precision an
 * idle peer showed p99 = 1.0 s, and an alert on "lag above 0.5 s" would fire for ever. The same
 * names are kept (dashboards and alerts rely on them) and fed from the health monitor's histogram,
 * minus its resolution. `nodejs_eventloop_lag_seconds` (a setImmediate round trip at scrape time)
 * is right as it is and stays.
 */
import { Gauge, type Registry } from 'prom-client';
import type { EventLoopDelayStats } from '../../actors/event-loop-delay.js';

const FIGURES = [
  ['min', 'minMs', 'The minimum event-loop delay of the current health window'],
  ['max', 'maxMs', 'The maximum event-loop delay of the current health window'],
  ['mean', 'meanMs', 'The mean event-loop delay of the current health window'],
  ['stddev', 'stddevMs', 'The standard deviation of the event-loop delays of the current health window'],
  ['p50', 'p50Ms', 'The 50th percentile of the event-loop delays of the current health window'],
  ['p90', 'p90Ms', 'The 90th percentile of the event-loop delays of the current health window'],
  ['p99', 'p99Ms', 'The 99th percentile of the event-loop delays of the current health window'],
] as const satisfies ReadonlyArray<readonly [string, keyof EventLoopDelayStats, string]>;

export function replaceEventLoopLagGauges(
  register: Registry,
  prefix: string,
  read: () => EventLoopDelayStats,
): void {
  for (const [figure, key, help] of FIGURES) {
    const name = `${prefix}nodejs_eventloop_lag_${figure}_seconds`;
    register.removeSingleMetric(name);
    new Gauge({
      name,
      help: `${help}, net of the sampling resolution (seconds)`,
      registers: [register],
      collect() {
        this.set(read()[key] / 1000);
      },
    });
  }
}
