/**
 * The chaos run's judgement, without a fleet: the seeded fault plan is a pure function of the seed,
 * and the invariants call a failure a failure (two traders, an order under the kill switch, a lost
 * item, a subsystem failed below the limit) while excusing only what the README documents.
 */
import { describe, expect, it } from 'vitest';
// @ts-expect-error: plain .mjs script modules, no type declarations
import { planFaults } from '../../scripts/chaos/faults.mjs';
import {
  checkKillSwitch,
  checkNoOrderUnderKillSwitch,
  checkOneTrader,
  checkSubsystems,
  checkWork,
  killSwitchIntervals,
  // @ts-expect-error: plain .mjs script modules, no type declarations
} from '../../scripts/chaos/invariants.mjs';

const T = Date.UTC(2026, 10, 29, 12);
const peer = (orders: { at: number }[] = [], killSwitch: unknown[] = []) => ({
  orders: orders.map((o, k) => ({ clientOrderId: `c${o.at}-${k}`, account: 'acct', ...o })),
  killSwitch,
  jobs: [] as unknown[],
  queueItems: [] as unknown[],
});

describe('planFaults', () => {
  it('is a function of the seed, spans the run, and keeps net and PostgreSQL faults to where they exist', () => {
    const a = planFaults({ seed: 42, peers: 3, durationMs: 120_000, net: true, postgres: false });
    expect(planFaults({ seed: 42, peers: 3, durationMs: 120_000, net: true, postgres: false })).toEqual(a);
    expect(planFaults({ seed: 43, peers: 3, durationMs: 120_000, net: true, postgres: false })).not.toEqual(
      a,
    );
    expect(a.length).toBeGreaterThan(10);
    expect(
      a.every((f: { at: number; target: number }) => f.at < 120_000 && f.target >= 0 && f.target < 3),
    ).toBe(true);
    expect(a.some((f: { kind: string }) => f.kind === 'pg-restart')).toBe(false);
    const local = planFaults({ seed: 42, peers: 3, durationMs: 600_000, net: false, postgres: true });
    const kinds = new Set(local.map((f: { kind: string }) => f.kind));
    for (const k of ['partition', 'delay', 'loss']) expect(kinds.has(k)).toBe(false);
    expect(kinds.has('pg-restart')).toBe(true);
  });
});

describe('never two peers trading one account at once', () => {
  it('fails two peers ordering seconds apart with no fault between them', () => {
    const r = checkOneTrader({ peers: [peer([{ at: T }]), peer([{ at: T + 3_000 }])], windows: [] });
    expect(r.pass).toBe(false);
    expect(r.detail).toContain('1 conflict');
  });

  it('excuses a handover around a kill, and a partition only without a lease', () => {
    const peers = [peer([{ at: T }]), peer([{ at: T + 3_000 }])];
    const kill = [{ peer: 0, kind: 'worker-sigkill', from: T + 1_000, to: T + 8_000 }];
    expect(checkOneTrader({ peers, windows: kill }).pass).toBe(true);
    const cut = [{ peer: 1, kind: 'partition', from: T - 1_000, to: T + 9_000 }];
    expect(checkOneTrader({ peers, windows: cut }).pass).toBe(true);
    const meshRestart = [{ peer: 1, kind: 'mesh-restart', from: T + 2_000, to: T + 11_000 }];
    expect(checkOneTrader({ peers, windows: meshRestart }).pass).toBe(true);
    const pgOrders = [
      { holder: 'peer-1', account: 'acct', at: T, writtenAt: T, token: 1, clientOrderId: 'a' },
      {
        holder: 'peer-2',
        account: 'acct',
        at: T + 3_000,
        writtenAt: T + 3_000,
        token: 2,
        clientOrderId: 'b',
      },
    ];
    expect(checkOneTrader({ peers, windows: cut, pgOrders, leaseLog: [] }).pass).toBe(false);
  });

  it('fails a fencing token that goes back in the PostgreSQL ledger', () => {
    const pgOrders = [
      { holder: 'peer-2', account: 'acct', at: T, writtenAt: T, token: 5, clientOrderId: 'a' },
      {
        holder: 'peer-1',
        account: 'acct',
        at: T + 60_000,
        writtenAt: T + 60_000,
        token: 4,
        clientOrderId: 'b',
      },
    ];
    const r = checkOneTrader({ peers: [peer(), peer()], windows: [], pgOrders, leaseLog: [] });
    expect(r.pass).toBe(false);
    expect(r.detail).toContain('under token 4 after peer-2 wrote under 5');
  });
});

describe('no order while the kill switch was on', () => {
  const on = { active: true, epoch: 1, origin: 'peer-1', atMs: T };
  const off = { active: false, epoch: 2, origin: 'peer-2', atMs: T + 10_000 };

  it('builds on-intervals from every history, highest epoch last', () => {
    expect(killSwitchIntervals([[on], [off, on]])).toEqual([{ from: T, to: T + 10_000, origin: 'peer-1' }]);
  });

  it('fails an order inside, allows the propagation grace and a cut-off peer', () => {
    const inside = checkNoOrderUnderKillSwitch({
      peers: [peer([{ at: T + 5_000 }], [on, off])],
      windows: [],
    });
    expect(inside.pass).toBe(false);
    expect(
      checkNoOrderUnderKillSwitch({ peers: [peer([{ at: T + 500 }], [on, off])], windows: [] }).pass,
    ).toBe(true);
    const cut = [{ peer: 0, kind: 'partition', from: T - 1_000, to: T + 9_000 }];
    expect(
      checkNoOrderUnderKillSwitch({ peers: [peer([{ at: T + 5_000 }], [on, off])], windows: cut }).pass,
    ).toBe(true);
  });
});

describe('work, kill switch and subsystems', () => {
  it('fails an accepted task that is not completed, or a key recorded twice', () => {
    const p = peer();
    p.queueItems = [{ id: 1, queue: 'ai', state: 'dead', key: 'k1', attempts: 6, lastError: 'x' }];
    const accepted = new Map([['k1', { kind: 'ai', peer: 0, id: 1 }]]);
    expect(
      checkWork({ accepted, duplicates: [], peers: [p], postgres: null, received: new Map() }).pass,
    ).toBe(false);
    p.queueItems = [
      { id: 1, queue: 'ai', state: 'completed', key: 'k1', attempts: 1 },
      { id: 2, queue: 'ai', state: 'completed', key: 'k1', attempts: 1 },
    ];
    expect(
      checkWork({ accepted, duplicates: [], peers: [p], postgres: null, received: new Map() }).pass,
    ).toBe(false);
    p.queueItems = [{ id: 1, queue: 'ai', state: 'completed', key: 'k1', attempts: 1 }];
    expect(
      checkWork({ accepted, duplicates: [], peers: [p], postgres: null, received: new Map() }).pass,
    ).toBe(true);
  });

  it('compares the kill switch by state, epoch and origin', () => {
    const a = { active: false, epoch: 3, origin: 'peer-1' };
    expect(checkKillSwitch([a, { ...a }]).pass).toBe(true);
    expect(checkKillSwitch([a, { ...a, epoch: 2 }]).pass).toBe(false);
    expect(checkKillSwitch([a, null]).pass).toBe(false);
  });

  it('fails a subsystem failed below the 10-attempt limit and names one at the limit', () => {
    const sub = (consecutiveFailures: number) => ({
      subsystems: {
        ai: { enabled: true, state: 'failed', consecutiveFailures, lastError: { message: 'boom' } },
      },
    });
    expect(checkSubsystems([sub(3)]).pass).toBe(false);
    const atLimit = checkSubsystems([sub(10)]);
    expect(atLimit.pass).toBe(true);
    expect(atLimit.detail).toContain('at the 10-attempt limit: peer-1/ai');
  });
});
