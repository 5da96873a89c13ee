import { describe, expect, it, onTestFinished } from 'vitest';
import { type Db, openDb } from '../../src/store/db.js';
import {
  isNewer,
  isPlausible,
  type KillSwitchState,
  KillSwitchStore,
  MAX_EPOCH_JUMP,
} from '../../src/store/kill-switch.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { tempDir } from '../helpers/tmp.js';

function open(dataDir: string): Db {
  const db = openDb(dataDir);
  onTestFinished(() => {
    if (db.open) db.close();
  });
  return db;
}

/** A clock that moves one second per reading, from a fixed start. */
function steppingClock(startIso = '2030-01-01T00:00:00.000Z'): () => Date {
  let t = Date.parse(startIso);
  return () => {
    const now = new Date(t);
    t += 1000;
    return now;
  };
}

const state = (over: Partial<KillSwitchState>): KillSwitchState => ({
  active: true,
  reason: 'remote',
  since: '2030-02-01T00:00:00.000Z',
  origin: 'peer-b',
  epoch: 1,
  ...over,
});

describe('KillSwitchStore', () => {
  it('starts inactive at epoch 0 with an empty history', () => {
    const store = new KillSwitchStore(open(tempDir()));
    expect(store.get()).toEqual(KILL_SWITCH_NEVER_SET);
    expect(store.history()).toEqual([]);
  });

  it('records each change with a new epoch, time, reason and origin; history is newest first', () => {
    const store = new KillSwitchStore(open(tempDir()), steppingClock());
    const on = store.set(true, 'exchange outage', 'peer-a');
    expect(on).toEqual({
      active: true,
      reason: 'exchange outage',
      since: '2030-01-01T00:00:00.000Z',
      origin: 'peer-a',
      epoch: 1,
    });
    expect(store.get()).toEqual(on);
    store.set(false, 'outage over', 'peer-a');
    expect(store.get()).toMatchObject({ active: false, reason: 'outage over', epoch: 2 });
    expect(store.history()).toEqual([
      { active: false, reason: 'outage over', at: '2030-01-01T00:00:01.000Z', origin: 'peer-a', epoch: 2 },
      { active: true, reason: 'exchange outage', at: '2030-01-01T00:00:00.000Z', origin: 'peer-a', epoch: 1 },
    ]);
    expect(store.history(1)).toHaveLength(1);
  });

  it('persists state and history across closing and reopening the database', () => {
    const dir = tempDir();
    const first = open(dir);
    new KillSwitchStore(first).set(true, 'halt for maintenance', 'peer-a');
    first.close();

    const store = new KillSwitchStore(open(dir));
    expect(store.get()).toMatchObject({
      active: true,
      reason: 'halt for maintenance',
      origin: 'peer-a',
      epoch: 1,
    });
    expect(store.history()).toHaveLength(1);
    // The epoch goes on from the persisted one.
    expect(store.set(false, 'done', 'peer-a').epoch).toBe(2);
  });

  it('adopts only a newer (epoch, origin) and keeps it in the history', () => {
    const store = new KillSwitchStore(open(tempDir()));
    store.set(true, 'local', 'peer-m'); // epoch 1, origin peer-m
    expect(store.adopt(state({ epoch: 0, origin: 'peer-z' }))).toBe(false);
    expect(store.adopt(state({ epoch: 1, origin: 'peer-a' }))).toBe(false);
    expect(store.adopt(state({ epoch: 1, origin: 'peer-m', reason: 'same' }))).toBe(false);
    expect(store.get()).toMatchObject({ reason: 'local', origin: 'peer-m', epoch: 1 });

    const sameEpochGreaterOrigin = state({
      epoch: 1,
      origin: 'peer-z',
      active: false,
      reason: 'z wins ties',
    });
    expect(store.adopt(sameEpochGreaterOrigin)).toBe(true);
    expect(store.get()).toEqual(sameEpochGreaterOrigin);

    const newer = state({ epoch: 5, origin: 'peer-a', reason: 'newer epoch' });
    expect(store.adopt(newer)).toBe(true);
    expect(store.get()).toEqual(newer);
    expect(store.history().map((h) => h.reason)).toEqual(['newer epoch', 'z wins ties', 'local']);
    // A local change after adopting goes past the adopted epoch.
    expect(store.set(false, 'local again', 'peer-m').epoch).toBe(6);
  });

  it('tells listeners about every change that took effect, and only those', () => {
    const store = new KillSwitchStore(open(tempDir()));
    const seen: KillSwitchState[] = [];
    const unsubscribe = store.onChange((s) => seen.push(s));
    const set = store.set(true, 'r', 'peer-a');
    store.adopt(state({ epoch: 0 }));
    const adopted = state({ epoch: 3 });
    store.adopt(adopted);
    expect(seen).toEqual([set, adopted]);
    unsubscribe();
    store.set(false, 'r2', 'peer-a');
    expect(seen).toHaveLength(2);
  });
});

describe('isNewer', () => {
  it('orders by epoch, then origin', () => {
    expect(isNewer(state({ epoch: 2, origin: 'a' }), state({ epoch: 1, origin: 'z' }))).toBe(true);
    expect(isNewer(state({ epoch: 1, origin: 'z' }), state({ epoch: 2, origin: 'a' }))).toBe(false);
    expect(isNewer(state({ epoch: 2, origin: 'b' }), state({ epoch: 2, origin: 'a' }))).toBe(true);
    expect(isNewer(state({ epoch: 2, origin: 'a' }), state({ epoch: 2, origin: 'a' }))).toBe(false);
  });
});

describe('kill-switch epoch bounds (issue 11, defect 9)', () => {
  it('refuses an epoch past MAX_SAFE_INTEGER or more than MAX_EPOCH_JUMP ahead, so operators keep control', () => {
    const store = new KillSwitchStore(open(tempDir()), steppingClock());
    expect(store.adopt(state({ epoch: 1e300 }))).toBe(false);
    expect(store.adopt(state({ epoch: Number.MAX_SAFE_INTEGER + 2 }))).toBe(false);
    expect(store.adopt(state({ epoch: MAX_EPOCH_JUMP + 1 }))).toBe(false);
    expect(store.get().epoch).toBe(0);
    expect(store.adopt(state({ epoch: MAX_EPOCH_JUMP }))).toBe(true);
    // An operator change still moves the switch.
    const next = store.set(false, 'all clear', 'peer-a');
    expect(next.epoch).toBe(MAX_EPOCH_JUMP + 1);
    expect(store.get()).toMatchObject({ active: false, epoch: MAX_EPOCH_JUMP + 1 });
    expect(isPlausible(state({ epoch: 1.5 }), KILL_SWITCH_NEVER_SET)).toBe(false);
  });
});
