/**
 * The kill switch's persistent state and history. Every change bumps `epoch`; between two states
 * the higher (epoch, origin) wins, so a mesh can flood changes in any order and converge.
 */
import type { Db } from './db.js';

export interface KillSwitchState {
  active: boolean;
  reason: string;
  /** ISO time of the change that made this state. */
  since: string;
  /** peerId where the change was made. */
  origin: string;
  /** Logical clock: every change is one more than the newest state its origin had seen. */
  epoch: number;
}

export interface KillSwitchChange extends Omit<KillSwitchState, 'since'> {
  at: string;
}

/** How many history rows GET /kill-switch returns. */
export const HISTORY_LIMIT = 100;

/** True when `a` should replace `b`. */
export function isNewer(a: KillSwitchState, b: KillSwitchState): boolean {
  return a.epoch > b.epoch || (a.epoch === b.epoch && a.origin > b.origin);
}

interface Row {
  active: number;
  reason: string;
  since: string;
  origin: string;
  epoch: number;
}

const fromRow = (r: Row): KillSwitchState => ({
  active: r.active === 1,
  reason: r.reason,
  since: r.since,
  origin: r.origin,
  epoch: r.epoch,
});

export class KillSwitchStore {
  private readonly listeners = new Set<(state: KillSwitchState) => void>();

  constructor(
    private readonly db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The state in force; an untouched switch is inactive at epoch 0. */
  get(): KillSwitchState {
    const row = this.db
      .prepare('SELECT active, reason, since, origin, epoch FROM kill_switch WHERE id = 1')
      .get() as Row | undefined;
    return row
      ? fromRow(row)
      : { active: false, reason: '', since: new Date(0).toISOString(), origin: '', epoch: 0 };
  }

  /** A local change: a new epoch, recorded in the history, then announced. */
  set(active: boolean, reason: string, origin: string): KillSwitchState {
    const state = this.db.transaction(() => {
      const next: KillSwitchState = {
        active,
        reason,
        since: this.now().toISOString(),
        origin,
        epoch: this.get().epoch + 1,
      };
      this.write(next);
      return next;
    })();
    this.emit(state);
    return state;
  }

  /**
   * A state learned from elsewhere (another peer): kept only when newer than ours.
   * @returns whether it was adopted.
   */
  adopt(remote: KillSwitchState): boolean {
    const adopted = this.db.transaction(() => {
      if (!isNewer(remote, this.get())) return false;
      this.write(remote);
      return true;
    })();
    if (adopted) this.emit(remote);
    return adopted;
  }

  history(limit = HISTORY_LIMIT): KillSwitchChange[] {
    const rows = this.db
      .prepare('SELECT active, reason, at, origin, epoch FROM kill_switch_history ORDER BY seq DESC LIMIT ?')
      .all(limit) as Array<Omit<Row, 'since'> & { at: string }>;
    return rows.map((r) => ({
      active: r.active === 1,
      reason: r.reason,
      at: r.at,
      origin: r.origin,
      epoch: r.epoch,
    }));
  }

  /** Called after every change that took effect; returns an unsubscribe function. */
  onChange(listener: (state: KillSwitchState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private write(s: KillSwitchState): void {
    const values = {
      active: s.active ? 1 : 0,
      reason: s.reason,
      since: s.since,
      origin: s.origin,
      epoch: s.epoch,
    };
    this.db
      .prepare(
        `INSERT INTO kill_switch (id, active, reason, since, origin, epoch)
         VALUES (1, @active, @reason, @since, @origin, @epoch)
         ON CONFLICT (id) DO UPDATE SET active = @active, reason = @reason, since = @since,
           origin = @origin, epoch = @epoch`,
      )
      .run(values);
    this.db
      .prepare(
        `INSERT INTO kill_switch_history (active, reason, at, origin, epoch)
         VALUES (@active, @reason, @since, @origin, @epoch)`,
      )
      .run(values);
  }

  private emit(state: KillSwitchState): void {
    for (const listener of this.listeners) listener(state);
  }
}
