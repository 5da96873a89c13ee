import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { PeerActors } from '../../src/actors/root.js';
import { openDb } from '../../src/store/db.js';
import { IntentStore } from '../../src/store/intents.js';
import { silentLogger } from '../helpers/logger.js';
import { RunProbe } from '../helpers/run-probe.js';
import { tempDir } from '../helpers/tmp.js';

const POLICY = { restartBaseMs: 50, restartMaxMs: 1000, stablePeriodMs: 60_000, maxConsecutiveFailures: 10 };

/** A peer's actors on a real database in `dir`, as a respawned worker would build them. */
function boot(dir: string, autoStart: boolean) {
  const db = openDb(dir);
  const actors = new PeerActors({
    registrations: [{ name: 'trader', enabled: true, operates: true, run: new RunProbe().logic }],
    autoStart,
    intents: new IntentStore(db),
    killSwitchActive: false,
    policy: POLICY,
    logger: silentLogger(),
  });
  actors.start();
  const state = () => actors.status().find((s) => s.name === 'trader')?.state;
  const shutdown = async () => {
    await actors.stop();
    db.close();
  };
  onTestFinished(shutdown);
  return { actors, state, shutdown };
}

describe('operator intents', () => {
  it('keeps a subsystem the operator stopped stopped after a restart, despite AUTO_START', async () => {
    const dir = tempDir();
    const first = boot(dir, true);
    await vi.waitFor(() => expect(first.state()).toBe('running'));
    first.actors.command('trader', 'stop');
    await vi.waitFor(() => expect(first.state()).toBe('stopped'));
    await first.shutdown();

    // The machine settles synchronously at start: a wanted subsystem would be starting already.
    const second = boot(dir, true);
    expect(second.state()).toBe('stopped');
  });

  it('brings back running what the operator started with AUTO_START=false', async () => {
    const dir = tempDir();
    const first = boot(dir, false);
    expect(first.state()).toBe('stopped');
    first.actors.command('trader', 'start');
    await vi.waitFor(() => expect(first.state()).toBe('running'));
    await first.shutdown();

    const second = boot(dir, false);
    await vi.waitFor(() => expect(second.state()).toBe('running'));
  });

  it('stores the last command per subsystem', () => {
    const db = openDb(tempDir());
    onTestFinished(() => {
      db.close();
    });
    const intents = new IntentStore(db);
    expect(intents.get('ai')).toBeUndefined();
    intents.set('ai', 'stopped');
    intents.set('ai', 'running');
    expect(intents.get('ai')).toBe('running');
  });
});
