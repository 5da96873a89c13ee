import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { PeerActors, type SupervisionPort } from '../../src/actors/root.js';
import { openDb } from '../../src/store/db.js';
import { SupervisionStore } from '../../src/store/supervision.js';
import { silentLogger } from '../helpers/logger.js';
import { RunProbe } from '../helpers/run-probe.js';
import { tempDir } from '../helpers/tmp.js';

const POLICY = { restartBaseMs: 50, restartMaxMs: 1000, stablePeriodMs: 60_000, maxConsecutiveFailures: 10 };
const AT = new Date('2026-01-02T03:04:05.000Z');

function open(dir: string) {
  const db = openDb(dir);
  onTestFinished(() => {
    if (db.open) db.close();
  });
  return db;
}

describe('SupervisionStore', () => {
  it('creates its table through a named migration, recorded once', () => {
    const db = open(tempDir());
    new SupervisionStore(db);
    new SupervisionStore(db);
    expect(db.prepare('SELECT name FROM schema_migrations').all()).toEqual([
      { name: 'supervision/001-subsystem-supervision' },
    ]);
  });

  it('counts a death of the previous process while a subsystem was live as one more failure, once', () => {
    const dir = tempDir();
    const first = open(dir);
    const before = new SupervisionStore(first, () => AT);
    before.save('trader', { live: true, consecutiveFailures: 2, lastError: null });
    before.save('watcher', {
      live: false,
      consecutiveFailures: 1,
      lastError: { code: 'QB_ERR_INTERNAL', message: 'boom', at: AT.toISOString() },
    });
    first.close();

    const after = new SupervisionStore(open(dir), () => AT);
    expect(after.load('trader')).toEqual({
      live: false,
      consecutiveFailures: 3,
      lastError: {
        code: 'QB_ERR_WORKER_DIED',
        message: 'the worker process died while this subsystem was starting or running',
        at: AT.toISOString(),
      },
      diedWhileLive: true,
    });
    // Reported once: a lifecycle machine respawned in this process must not log it again.
    expect(after.load('trader')?.diedWhileLive).toBe(false);
    expect(after.load('trader')?.consecutiveFailures).toBe(3);
    // Not live when the process died: left as it was.
    expect(after.load('watcher')).toMatchObject({ consecutiveFailures: 1, diedWhileLive: false });
    expect(after.load('nobody')).toBeUndefined();
  });

  it('counts a death pinned on one subsystem against it alone; the others are merely no longer live', () => {
    const dir = tempDir();
    const first = open(dir);
    const before = new SupervisionStore(first, () => AT);
    before.save('crasher', { live: true, consecutiveFailures: 4, lastError: null });
    before.save('bystander', { live: true, consecutiveFailures: 1, lastError: null });
    before.blame('crasher', new Error('a bug in a timer callback'));
    first.close();

    const after = new SupervisionStore(open(dir), () => AT);
    expect(after.load('crasher')).toMatchObject({
      live: false,
      consecutiveFailures: 5,
      lastError: {
        code: 'QB_ERR_WORKER_DIED',
        message: expect.stringContaining('a bug in a timer callback'),
      },
      diedWhileLive: true,
    });
    expect(after.load('bystander')).toEqual({
      live: false,
      consecutiveFailures: 1,
      lastError: null,
      diedWhileLive: false,
    });
  });

  it('forgets a blame when the process survived it and wrote again', () => {
    const dir = tempDir();
    const first = open(dir);
    const before = new SupervisionStore(first, () => AT);
    before.save('crasher', { live: true, consecutiveFailures: 0, lastError: null });
    before.save('bystander', { live: true, consecutiveFailures: 0, lastError: null });
    before.blame('crasher', new Error('survived'));
    before.save('crasher', { live: true, consecutiveFailures: 0, lastError: null });
    first.close();
    const after = new SupervisionStore(open(dir), () => AT);
    expect(after.load('crasher')?.consecutiveFailures).toBe(1);
    expect(after.load('bystander')?.consecutiveFailures).toBe(1);
  });

  it('does not count twice when the same database is opened again without a death in between', () => {
    const dir = tempDir();
    const db = open(dir);
    new SupervisionStore(db).save('trader', { live: true, consecutiveFailures: 0, lastError: null });
    expect(new SupervisionStore(db).load('trader')?.consecutiveFailures).toBe(1);
    expect(new SupervisionStore(db).load('trader')?.consecutiveFailures).toBe(1);
  });
});

/**
 * One boot of a worker on the database in `dir`. `die()` is a process death: from then on nothing
 * this "process" does reaches the disk, and its actors are dropped (stopped only to free the timers).
 */
function boot(dir: string, probe: RunProbe) {
  const db = openDb(dir);
  const store = new SupervisionStore(db);
  let dead = false;
  const supervision: SupervisionPort = {
    load: (name) => store.load(name),
    save: (name, record) => {
      if (!dead) store.save(name, record);
    },
  };
  const actors = new PeerActors({
    registrations: [{ name: 'crasher', enabled: true, operates: true, run: probe.logic }],
    autoStart: true,
    supervision,
    killSwitchActive: false,
    policy: POLICY,
    logger: silentLogger(),
  });
  actors.start();
  const die = async () => {
    dead = true;
    await actors.stop();
    db.close();
  };
  onTestFinished(async () => {
    if (!dead) await die();
  });
  const status = () => actors.status()[0];
  return { status, die };
}

describe('failure counts across worker processes', () => {
  it('holds a subsystem that takes the worker down every time failed after 10 deaths', async () => {
    const dir = tempDir();
    const probe = new RunProbe();
    for (let death = 1; death <= POLICY.maxConsecutiveFailures; death++) {
      const worker = boot(dir, probe);
      expect(worker.status()).toMatchObject({ state: 'running', consecutiveFailures: death - 1 });
      await worker.die();
    }
    expect(probe.starts).toBe(POLICY.maxConsecutiveFailures);

    const last = boot(dir, probe);
    expect(last.status()).toMatchObject({
      state: 'failed',
      consecutiveFailures: POLICY.maxConsecutiveFailures,
      lastError: { code: 'QB_ERR_WORKER_DIED' },
    });
    expect(probe.starts).toBe(POLICY.maxConsecutiveFailures);
  });

  it('forgets the deaths once the subsystem ran a stable period', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const dir = tempDir();
    const probe = new RunProbe();
    for (let death = 1; death <= 3; death++) await boot(dir, probe).die();

    const stable = boot(dir, probe);
    expect(stable.status()).toMatchObject({ state: 'running', consecutiveFailures: 3 });
    await vi.advanceTimersByTimeAsync(POLICY.stablePeriodMs);
    expect(stable.status()?.consecutiveFailures).toBe(0);
    await stable.die();

    expect(boot(dir, probe).status()).toMatchObject({ state: 'running', consecutiveFailures: 1 });
  });

  it('counts nothing after a graceful stop', async () => {
    const dir = tempDir();
    const probe = new RunProbe();
    const db = openDb(dir);
    const actors = new PeerActors({
      registrations: [{ name: 'crasher', enabled: true, operates: true, run: probe.logic }],
      autoStart: true,
      supervision: new SupervisionStore(db),
      killSwitchActive: false,
      policy: POLICY,
      logger: silentLogger(),
    });
    actors.start();
    await actors.stop();
    db.close();
    expect(boot(dir, probe).status()).toMatchObject({ state: 'running', consecutiveFailures: 0 });
  });
});
