/**
 * The health monitor: CPU, memory, event-loop delay, uptime and connection counts. The monitor
 * object lives as long as the process, so GET /health answers even while the subsystem is stopped;
 * the subsystem's `run` actor only closes a sampling window every HEALTH_CHECK_INTERVAL.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from '../logger.js';
import { defineRun } from './subsystem.js';

/**
 * Sampling period of the event-loop delay histogram. Every sample wakes the process, so an idle peer
 * pays for it: 10 ms cost about 1 % of a core here; 100 ms still resolves the lags that matter (> 100 ms).
 */
const EVENT_LOOP_RESOLUTION_MS = 100;

/** Event-loop delay (p99 of a window) above which the process reports itself `degraded`. */
export const DEGRADED_EVENT_LOOP_DELAY_MS = 1_000;

export interface Connections {
  /** Open HTTP/WebSocket sockets on the API server. */
  http: number;
  /** Live mesh links. */
  mesh: number;
}

export interface HealthSample {
  status: 'ok' | 'degraded';
  /** Seconds since the process started. */
  uptime: number;
  cpu: { percent: number; userMs: number; systemMs: number };
  memory: { rssBytes: number; heapUsedBytes: number; heapTotalBytes: number; externalBytes: number };
  /** p99 event-loop delay of the current window, ms. */
  eventLoopDelayMs: number;
  connections: Connections;
  /** ISO time of the sample. */
  at: string;
}

export interface HealthMonitorOptions {
  countConnections: () => Connections;
  now?: () => number;
}

export class HealthMonitor {
  private readonly histogram: ReturnType<typeof monitorEventLoopDelay> = monitorEventLoopDelay({
    resolution: EVENT_LOOP_RESOLUTION_MS,
  });
  private windowStart: number;
  private cpuAtWindowStart: NodeJS.CpuUsage;
  private latestSample: HealthSample | undefined;
  private readonly now: () => number;

  constructor(private readonly options: HealthMonitorOptions) {
    this.now = options.now ?? Date.now;
    this.windowStart = this.now();
    this.cpuAtWindowStart = process.cpuUsage();
    this.histogram.enable();
  }

  /** The state of the process now, over the window since the last `closeWindow`. */
  read(): HealthSample {
    const now = this.now();
    const cpu = process.cpuUsage(this.cpuAtWindowStart);
    const elapsedMs = Math.max(1, now - this.windowStart);
    const mem = process.memoryUsage();
    // The histogram is empty until it has seen a whole resolution tick.
    const p99 = this.histogram.count > 0 ? this.histogram.percentile(99) / 1e6 : 0;
    const eventLoopDelayMs = round(p99);
    return {
      status: eventLoopDelayMs > DEGRADED_EVENT_LOOP_DELAY_MS ? 'degraded' : 'ok',
      uptime: round(process.uptime()),
      cpu: {
        percent: round(((cpu.user + cpu.system) / 1000 / elapsedMs) * 100),
        userMs: round(cpu.user / 1000),
        systemMs: round(cpu.system / 1000),
      },
      memory: {
        rssBytes: mem.rss,
        heapUsedBytes: mem.heapUsed,
        heapTotalBytes: mem.heapTotal,
        externalBytes: mem.external,
      },
      eventLoopDelayMs,
      connections: this.options.countConnections(),
      at: new Date(now).toISOString(),
    };
  }

  /** Records a sample and starts a new window. */
  closeWindow(): HealthSample {
    const sample = this.read();
    this.latestSample = sample;
    this.windowStart = this.now();
    this.cpuAtWindowStart = process.cpuUsage();
    this.histogram.reset();
    return sample;
  }

  /** The last recorded sample, if any. */
  get latest(): HealthSample | undefined {
    return this.latestSample;
  }

  close(): void {
    this.histogram.disable();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

export interface HealthRunInput {
  monitor: HealthMonitor;
  intervalMs: number;
  logger: Logger;
}

/** The health subsystem: closes a window every interval and warns when the process is degraded. */
export const healthRun = defineRun<HealthRunInput>(({ input, ready, guard }) => {
  const { monitor, intervalMs, logger } = input;
  // Guarded: a throw while sampling fails this subsystem (and it is restarted), not the process.
  const sample = guard(() => {
    const s = monitor.closeWindow();
    if (s.status !== 'ok') logger.warn({ health: s }, 'process is degraded');
    else logger.debug({ health: s }, 'health sample');
  });
  sample();
  ready();
  const timer = setInterval(sample, intervalMs);
  return () => clearInterval(timer);
});
