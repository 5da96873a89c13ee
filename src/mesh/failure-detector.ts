/**
 * The failure detector, pure: it is told the time (monotonic, see clock.ts) at every heartbeat tick
 * and when each peer was last heard, and answers who is suspect or down. No timers and no sockets,
 * so a unit test walks it through any history on fake time.
 *
 * Our own stalls are not the peers' fault: when a tick comes late (our event loop was blocked, the
 * process was stopped), nobody could be heard meanwhile, so the lag is added to every peer's
 * deadline instead of accusing them.
 */

/** Missed heartbeat intervals of silence before `suspect`, and before `down`. */
export const SUSPECT_AFTER_INTERVALS = 2.5;
export const DOWN_AFTER_INTERVALS = 4;

export interface Heard {
  peerId: string;
  /** Monotonic ms of the last message of any kind from the peer. */
  lastSeen: number;
  state: 'connecting' | 'connected' | 'suspect' | 'down';
}

export interface TickResult {
  /** How late this tick came beyond the interval, when late enough to stretch deadlines; else 0. */
  lagMs: number;
  suspect: Array<{ peerId: string; silentMs: number }>;
  down: Array<{ peerId: string; silentMs: number }>;
}

export class FailureDetector {
  private lastTick: number;

  constructor(
    private readonly intervalMs: number,
    now: number,
  ) {
    this.lastTick = now;
  }

  /** Restarts the lag measurement (the node started again). */
  reset(now: number): void {
    this.lastTick = now;
  }

  /**
   * One heartbeat tick. Stretches `lastSeen` of every peer in place by our own lag, then judges the
   * linked peers: down after DOWN_AFTER_INTERVALS of silence, suspect (once) after SUSPECT_AFTER.
   */
  tick(now: number, peers: Iterable<Heard>): TickResult {
    const interval = this.intervalMs;
    const late = now - this.lastTick - interval;
    this.lastTick = now;
    const lagMs = late > interval / 2 ? late : 0;
    const result: TickResult = { lagMs, suspect: [], down: [] };
    for (const p of peers) {
      if (p.state === 'down') continue;
      if (lagMs > 0) p.lastSeen += lagMs;
      const silentMs = now - p.lastSeen;
      if (silentMs > DOWN_AFTER_INTERVALS * interval) result.down.push({ peerId: p.peerId, silentMs });
      else if (silentMs > SUSPECT_AFTER_INTERVALS * interval && p.state === 'connected')
        result.suspect.push({ peerId: p.peerId, silentMs });
    }
    return result;
  }
}
