/**
 * The failure detector, pure: it is told the time (monotonic, see clock.ts) and when each peer was
 * last heard, and answers who is suspect or down, and when to ask again. No timers and no sockets,
 * so a unit test walks it through any history on fake time.
 *
 * The deadlines. A peer is heard at least once per heartbeat interval P while it runs (one side of
 * each link pings, the other answers, any frame counts). A peer that stops (SIGSTOP, a crash that
 * leaves the socket open, a cut cable) was last heard at most P before it stopped. A peer whose
 * event loop is blocked for BUSY_TOLERANCE_MS is silent for up to P + BUSY_TOLERANCE_MS, and must
 * not be accused. So `suspect` comes after P + BUSY_TOLERANCE_MS + CATCH_UP_MS of silence, which
 * at P = 200 ms is 1.49 s, and `down` (the link is dropped) DOWN_GRACE_MS later, 2.79 s. Between
 * the two, a peer that speaks again is simply `connected` again. The node asks again exactly at
 * the next deadline (nextCheckAt), so a verdict is never late by a tick.
 *
 * Our own stalls are not the peers' fault: when we are called later than the heartbeat interval
 * after the previous call (our event loop was blocked, the process was stopped), nobody could be
 * heard meanwhile, so the lag is added to every peer's deadline instead of accusing them.
 */

/** A peer whose event loop is blocked this long (a long computation, a GC pause) is not accused. */
export const BUSY_TOLERANCE_MS = 1_200;
/** Time for a peer back from a stall to answer, and for the network to deliver it. */
export const CATCH_UP_MS = 90;
/** From `suspect` to `down`. */
export const DOWN_GRACE_MS = 1_300;

export interface DetectorPolicy {
  /** The heartbeat interval: every linked peer is heard at least this often while it runs. */
  intervalMs: number;
  suspectAfterMs: number;
  downAfterMs: number;
  /** A call this much later than the interval after the previous one means that we stalled. */
  lagThresholdMs: number;
}

/** The deadlines for a heartbeat interval (see above). */
export function detectorPolicy(intervalMs: number): DetectorPolicy {
  const suspectAfterMs = intervalMs + BUSY_TOLERANCE_MS + CATCH_UP_MS;
  return {
    intervalMs,
    suspectAfterMs,
    downAfterMs: suspectAfterMs + DOWN_GRACE_MS,
    lagThresholdMs: intervalMs / 4,
  };
}

export interface Heard {
  peerId: string;
  /** Monotonic ms of the last message of any kind from the peer. */
  lastSeen: number;
  state: 'connecting' | 'connected' | 'suspect' | 'down';
}

export interface TickResult {
  /** How late this call came beyond the interval, when late enough to stretch deadlines; else 0. */
  lagMs: number;
  suspect: Array<{ peerId: string; silentMs: number }>;
  down: Array<{ peerId: string; silentMs: number }>;
  /** When the next verdict may fall (monotonic ms), if any peer is watched; ask then. */
  nextCheckAt: number | undefined;
}

export class FailureDetector {
  private lastTick: number;

  constructor(
    readonly policy: DetectorPolicy,
    now: number,
  ) {
    this.lastTick = now;
  }

  /** Restarts the lag measurement (the node started again). */
  reset(now: number): void {
    this.lastTick = now;
  }

  /**
   * Judges the linked peers at `now`; called at every heartbeat and at each nextCheckAt. Stretches
   * `lastSeen` of every peer in place by our own lag, then: down after downAfterMs of silence,
   * suspect (once) after suspectAfterMs.
   */
  tick(now: number, peers: Iterable<Heard>): TickResult {
    const { intervalMs, suspectAfterMs, downAfterMs, lagThresholdMs } = this.policy;
    const late = now - this.lastTick - intervalMs;
    this.lastTick = Math.max(this.lastTick, now);
    const lagMs = late > lagThresholdMs ? late : 0;
    const result: TickResult = { lagMs, suspect: [], down: [], nextCheckAt: undefined };
    const next = (at: number) => {
      if (result.nextCheckAt === undefined || at < result.nextCheckAt) result.nextCheckAt = at;
    };
    for (const p of peers) {
      if (p.state === 'down') continue;
      if (lagMs > 0) p.lastSeen += lagMs;
      const silentMs = now - p.lastSeen;
      if (silentMs > downAfterMs) {
        result.down.push({ peerId: p.peerId, silentMs });
        continue;
      }
      const suspected = silentMs > suspectAfterMs;
      if (suspected && p.state === 'connected') result.suspect.push({ peerId: p.peerId, silentMs });
      // Strictly after the deadline: a verdict needs silence longer than it.
      next(p.lastSeen + (suspected || p.state === 'suspect' ? downAfterMs : suspectAfterMs) + 1);
    }
    return result;
  }
}
