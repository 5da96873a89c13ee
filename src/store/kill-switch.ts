/**
 * The kill switch's persistent state and history. Every change bumps `epoch`; between two states
 * the higher (epoch, origin) wins, so a mesh can flood changes in any order and converge.
 */
import type { Statement } from 'better-sqlite3';
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

/**
 * The most a remote epoch may lead the highest one we know. Every change is +1 on the newest state
 * its origin had seen, so an honest fleet moves in small steps; a bigger jump is a buggy or hostile
 * peer. Unbounded, one `epoch: 1e300` would freeze the switch fleet-wide (1e300 + 1 === 1e300).
 */
export const MAX_EPOCH_JUMP = 1000;

/** Whether a remote state's epoch is one an honest peer could have: a safe integer, no far jump. */
export function isPlausible(remote: KillSwitchState, current: KillSwitchState): boolean {
  return (
    Number.isSafeInteger(remote.epoch) && remote.epoch >= 0 && remote.epoch <= current.epoch + MAX_EPOCH_JUMP
  );
}

/** Whether a remote state replaces ours: newer, and plausible. */
export function shouldAdopt(remote: KillSwitchState, current: KillSwitchState): boolean {
  return isPlausible(remote, current) && isNewer(remote, current);
}

/** The longest reason any projection carries (the HTTP body and the mesh wire allow 500). */
export const MAX_REASON_LENGTH = 500;

/**
 * THE projection of the kill switch, from the stored state to the shape every consumer sends: the
 * mesh wire (handshake, killswitch message, status summary), GET /status and /kill-switch, the
 * fleet cards and the live feed. Exactly these five fields, the reason within MAX_REASON_LENGTH,
 * so a field added to the stored state never leaks, and the copies cannot drift apart.
 */
export function killSwitchView(s: KillSwitchState): KillSwitchState {
  return {
    active: s.active,
    reason: s.reason.slice(0, MAX_REASON_LENGTH),
    since: s.since,
    origin: s.origin,
    epoch: s.epoch,
  };
}

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

const NEVER_SET: KillSwitchState = {
  active: false,
  reason: '',
  since: new Date(0).toISOString(),
  origin: '',
  epoch: 0,
};

/**
 * The kill switch of one peer. It is read on every status message, metrics scrape and handshake,
 * so the state in force is kept in memory: this process is the only writer of its DATA_DIR, and the
 * cache changes only after a write has committed.
 */
export class KillSwitchStore {
  private readonly listeners = new Set<(state: KillSwitchState) => void>();
  private readonly statements: {
    read: Statement;
    upsert: Statement;
    record: Statement;
    history: Statement;
    write: (state: KillSwitchState) => void;
  };
  private current: KillSwitchState;

  constructor(
    db: Db,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.statements = {
      read: db.prepare('SELECT active, reason, since, origin, epoch FROM kill_switch WHERE id = 1'),
      upsert: db.prepare(
        `INSERT INTO kill_switch (id, active, reason, since, origin, epoch)
         VALUES (1, @active, @reason, @since, @origin, @epoch)
         ON CONFLICT (id) DO UPDATE SET active = @active, reason = @reason, since = @since,
           origin = @origin, epoch = @epoch`,
      ),
      record: db.prepare(
        `INSERT INTO kill_switch_history (active, reason, at, origin, epoch)
         VALUES (@active, @reason, @since, @origin, @epoch)`,
      ),
      history: db.prepare(
        'SELECT active, reason, at, origin, epoch FROM kill_switch_history ORDER BY seq DESC LIMIT ?',
      ),
      // Both writes of a change commit together, or neither does.
      write: db.transaction((s: KillSwitchState) => {
        const values = { ...s, active: s.active ? 1 : 0 };
        this.statements.upsert.run(values);
        this.statements.record.run(values);
      }),
    };
    const row = this.statements.read.get() as Row | undefined;
    this.current = row ? fromRow(row) : NEVER_SET;
  }

  /** The state in force; an untouched switch is inactive at epoch 0. */
  get(): KillSwitchState {
    return this.current;
  }

  /** A local change: a new epoch, recorded in the history, then announced. */
  set(active: boolean, reason: string, origin: string): KillSwitchState {
    const next: KillSwitchState = {
      active,
      reason,
      since: this.now().toISOString(),
      origin,
      epoch: this.current.epoch + 1,
    };
    this.commit(next);
    return next;
  }

  /**
   * A state learned from elsewhere (another peer): kept only when newer than ours and plausible
   * (see MAX_EPOCH_JUMP).
   * @returns whether it was adopted.
   */
  adopt(remote: KillSwitchState): boolean {
    if (!shouldAdopt(remote, this.current)) return false;
    this.commit({ ...remote });
    return true;
  }

  history(limit = HISTORY_LIMIT): KillSwitchChange[] {
    const rows = this.statements.history.all(limit) as Array<Omit<Row, 'since'> & { at: string }>;
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

  private commit(state: KillSwitchState): void {
    this.statements.write(state);
    this.current = state;
    this.emit(state);
  }

  private emit(state: KillSwitchState): void {
    for (const listener of this.listeners) listener(state);
  }
}
