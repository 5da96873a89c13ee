/**
 * The health monitor: CPU, memory, event-loop delay, uptime and connection counts. It lives as long
 * as the process, so GET /health answers even while the health subsystem is stopped, and it imports
 * nothing heavy (no XState): the boot gate answers /health with it before the rest is loaded.
 */
import { EventLoopDelay, type EventLoopDelayStats } from './event-loop-delay.js';

/** Event-loop delay (p99 of a window, net of the resolution) above which the process is `degraded`. */
export const DEGRADED_EVENT_LOOP_DELAY_MS = 1_000;

/**
 * How long GET /health reuses a sample. Orchestrators probe liveness often, and reading the process
 * (`process.memoryUsage()` reads /proc, `cpuUsage()`, the histogram) on every probe cost about
 * half the throughput of a bare route; a sample at most a second old answers "alive?" as well.
 */
export const HEALTH_SAMPLE_TTL_MS = 1_000;

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
  /** p99 event-loop delay of the current window, ms, net of the sampling resolution. */
  eventLoopDelayMs: number;
  connections: Connections;
  /** ISO time of the sample. */
  at: string;
}

export interface HealthMonitorOptions {
  /** The open connections; see `countConnectionsWith` for a source known only later. */
  countConnections?: () => Connections;
  now?: () => number;
  /** The event-loop delay source (tests pass their own resolution). */
  eventLoop?: EventLoopDelay;
}

export class HealthMonitor {
  private readonly eventLoop: EventLoopDelay;
  private windowStart: number;
  private cpuAtWindowStart: NodeJS.CpuUsage;
  private latestSample: HealthSample | undefined;
  private cached: { sample: HealthSample; at: number } | undefined;
  private readonly now: () => number;
  private countConnections: () => Connections;

  constructor(options: HealthMonitorOptions = {}) {
    this.now = options.now ?? Date.now;
    this.countConnections = options.countConnections ?? (() => ({ http: 0, mesh: 0 }));
    this.eventLoop = options.eventLoop ?? new EventLoopDelay();
    this.windowStart = this.now();
    this.cpuAtWindowStart = process.cpuUsage();
  }

  /** The state of the process now, over the window since the last `closeWindow`. */
  read(): HealthSample {
    const now = this.now();
    const cpu = process.cpuUsage(this.cpuAtWindowStart);
    const elapsedMs = Math.max(1, now - this.windowStart);
    const mem = process.memoryUsage();
    const eventLoopDelayMs = round(this.eventLoop.stats().p99Ms);
    const sample: HealthSample = {
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
      connections: this.countConnections(),
      at: new Date(now).toISOString(),
    };
    this.cached = { sample, at: now };
    return sample;
  }

  /**
   * A sample at most HEALTH_SAMPLE_TTL_MS old (GET /health): the same object until it expires, so
   * a caller may cache what it derives from it (the serialized answer).
   */
  current(): HealthSample {
    const age = this.cached ? this.now() - this.cached.at : Number.POSITIVE_INFINITY;
    // A clock set back (age < 0) must not pin an old sample.
    if (this.cached && age >= 0 && age < HEALTH_SAMPLE_TTL_MS) return this.cached.sample;
    return this.read();
  }

  /** Counts connections with `count` from now on: the boot gate's monitor exists before the mesh. */
  countConnectionsWith(count: () => Connections): void {
    this.countConnections = count;
    this.cached = undefined;
  }

  /** Event-loop delay figures of the current window (GET /metrics). */
  eventLoopDelay(): EventLoopDelayStats {
    return this.eventLoop.stats();
  }

  /** Records a sample and starts a new window. */
  closeWindow(): HealthSample {
    const sample = this.read();
    this.latestSample = sample;
    this.windowStart = this.now();
    this.cpuAtWindowStart = process.cpuUsage();
    this.eventLoop.reset();
    return sample;
  }

  /** The last recorded sample, if any. */
  get latest(): HealthSample | undefined {
    return this.latestSample;
  }

  close(): void {
    this.eventLoop.close();
  }
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
