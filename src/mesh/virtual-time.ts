/**
 * Virtual time for mesh tests: one deterministic queue of events (timers and deliveries) run in
 * time order, with the promises they start settled between events, so a test walks minutes of mesh
 * life in milliseconds and the same way every run. Each simulated process is a Host with its own
 * Scheduler; a paused Host (SIGSTOP, or an event loop blocked by a long computation) runs nothing:
 * its due timers and deliveries are held, then run late and in order when it resumes, as a
 * stopped process's would. Used by memory-transport.ts; not loaded in production.
 */
import type { MeshClock, Scheduler, TimerHandle } from './clock.js';

interface Event {
  at: number;
  seq: number;
  run: () => void;
  /** The host whose event loop runs it; undefined: the network itself (a kernel, a cable). */
  owner: Host | undefined;
  cancelled: boolean;
}

/** Wall time of virtual time 0 (display only). */
const EPOCH_MS = Date.UTC(2026, 0, 1);

export class VirtualTime {
  private current = 0;
  private seq = 0;
  /** Sorted by (at, seq). */
  private readonly queue: Event[] = [];

  get now(): number {
    return this.current;
  }

  /** Schedules `run` at `at` (not before now) on `owner`'s event loop. */
  at(at: number, run: () => void, owner?: Host): Event {
    const event: Event = { at: Math.max(at, this.current), seq: this.seq++, run, owner, cancelled: false };
    let lo = 0;
    let hi = this.queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const e = this.queue[mid] as Event;
      if (e.at < event.at || (e.at === event.at && e.seq < event.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.queue.splice(lo, 0, event);
    return event;
  }

  /**
   * Runs every event due within `ms` from now, in order; time ends at now + ms. `each` is called
   * after every event (a test watching for something that must never happen).
   */
  async advance(ms: number, each: () => void = () => {}): Promise<void> {
    const end = this.current + ms;
    await this.runUntil(end, () => {
      each();
      return false;
    });
    this.current = end;
  }

  /** Events (timers, deliveries) still to run on `owner`'s event loop. */
  pendingOn(owner: Host): number {
    return this.queue.filter((e) => e.owner === owner && !e.cancelled).length;
  }

  /**
   * Runs events until `check` holds (checked after each) or `maxMs` have passed.
   * @returns the virtual ms it took.
   * @throws when `check` still fails after `maxMs`.
   */
  async until(check: () => boolean, maxMs: number): Promise<number> {
    const start = this.current;
    if (check()) return 0;
    if (await this.runUntil(start + maxMs, check)) return this.current - start;
    throw new Error(`condition not met within ${maxMs} virtual ms`);
  }

  private async runUntil(end: number, check: () => boolean): Promise<boolean> {
    await settle();
    for (;;) {
      const next = this.queue[0];
      if (!next || next.at > end) return false;
      this.queue.shift();
      if (next.cancelled) continue;
      this.current = next.at;
      if (next.owner?.paused) {
        next.owner.hold(next);
        continue;
      }
      next.run();
      await settle();
      if (check()) return true;
    }
  }

  /** Puts a held event back in the queue, due now (after what is already due now). */
  requeue(event: Event): void {
    this.at(this.current, event.run, event.owner);
  }
}

/** Lets every promise chain started by an event run to its end (they are microtasks). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

interface Handle {
  event: Event | undefined;
  active: boolean;
}

/** One simulated process: its clock and timers, and whether it is paused. */
export class Host {
  paused = false;
  private held: Event[] = [];
  readonly clock: MeshClock;
  readonly scheduler: Scheduler;

  constructor(
    readonly time: VirtualTime,
    readonly name: string,
  ) {
    this.clock = { now: () => time.now, wall: (monotonic) => EPOCH_MS + monotonic };
    const timer = (fn: () => void, ms: number, repeat: boolean): Handle => {
      const handle: Handle = { event: undefined, active: true };
      const arm = () => {
        handle.event = time.at(
          time.now + ms,
          () => {
            if (!handle.active) return;
            if (repeat) arm();
            else handle.active = false;
            fn();
          },
          this,
        );
      };
      arm();
      return handle;
    };
    this.scheduler = {
      setTimeout: (fn, ms) => timer(fn, ms, false),
      setInterval: (fn, ms) => timer(fn, Math.max(1, ms), true),
      clear: (handle: TimerHandle | undefined) => {
        const h = handle as Handle | undefined;
        if (!h) return;
        h.active = false;
        if (h.event) h.event.cancelled = true;
      },
    };
  }

  /** Runs `fn` on this host's event loop at virtual time `at`. */
  at(at: number, fn: () => void): void {
    this.time.at(at, fn, this);
  }

  /** SIGSTOP (or a blocked event loop): nothing of this host runs until resume(). */
  pause(): void {
    this.paused = true;
  }

  /** SIGCONT: what fell due meanwhile runs now, in the order it fell due. */
  resume(): void {
    this.paused = false;
    const held = this.held;
    this.held = [];
    for (const event of held) this.time.requeue(event);
  }

  hold(event: Event): void {
    this.held.push(event);
  }
}
