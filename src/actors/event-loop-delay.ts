/**
 * Event-loop delay, net of the sampling resolution. Node's `monitorEventLoopDelay` arms a timer
 * every `resolution` ms and records the whole interval between two of its ticks, so an idle loop
 * sampled every 100 ms reports about 100 ms of "delay" (and prom-client's 1 s precision about 1 s).
 * What matters is how late a tick came: the interval minus the resolution. A block of B ms is seen
 * as between B - resolution and B (it depends on where the block fell between two ticks).
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * Sampling period. Every tick wakes an idle process: here 100 ms cost about 0.04 % of a core and
 * 50 ms about 0.12 % (20 s of `monitorEventLoopDelay` alone, Node 24, this 2-core sandbox). 50 ms
 * keeps the error on a block under 50 ms, so a 300 ms block reads at least 250 ms.
 */
export const EVENT_LOOP_RESOLUTION_MS = 50;

/** Figures of one window, in ms, each net of the resolution (never below 0). */
export interface EventLoopDelayStats {
  minMs: number;
  maxMs: number;
  meanMs: number;
  stddevMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  /** Ticks recorded in the window. */
  count: number;
}

const NS_PER_MS = 1e6;

export class EventLoopDelay {
  private readonly histogram: ReturnType<typeof monitorEventLoopDelay>;

  constructor(readonly resolutionMs: number = EVENT_LOOP_RESOLUTION_MS) {
    this.histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.histogram.enable();
  }

  /** The window since the last reset. An empty window (no whole tick yet) reads all zeros. */
  stats(): EventLoopDelayStats {
    const h = this.histogram;
    if (h.count === 0) {
      return { minMs: 0, maxMs: 0, meanMs: 0, stddevMs: 0, p50Ms: 0, p90Ms: 0, p99Ms: 0, count: 0 };
    }
    // Subtracting a constant keeps the order, so the percentiles of the net values are these.
    const net = (ns: number) => Math.max(0, ns / NS_PER_MS - this.resolutionMs);
    return {
      minMs: net(h.min),
      maxMs: net(h.max),
      meanMs: net(h.mean),
      stddevMs: h.stddev / NS_PER_MS,
      p50Ms: net(h.percentile(50)),
      p90Ms: net(h.percentile(90)),
      p99Ms: net(h.percentile(99)),
      count: h.count,
    };
  }

  reset(): void {
    this.histogram.reset();
  }

  close(): void {
    this.histogram.disable();
  }
}
