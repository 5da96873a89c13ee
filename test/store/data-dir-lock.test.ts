import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { acquireDataDirLock, lockDataDir, PID_FILE, readHolder } from '../../src/store/data-dir-lock.js';
import { tempDir } from '../helpers/tmp.js';

describe('lockDataDir', () => {
  it('holds the folder until released, and names the holder to the next one', () => {
    const dir = tempDir();
    const lock = lockDataDir(dir, { pid: 4242, supervisorPid: 4241 });
    onTestFinished(() => lock.release());
    expect(readHolder(dir)).toMatchObject({ pid: 4242, supervisorPid: 4241 });

    let refused: unknown;
    try {
      lockDataDir(dir, { pid: 5000 });
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'QB_ERR_DATA_DIR_LOCKED' });
    expect((refused as Error).message).toBe(
      `DATA_DIR ${dir} is in use by quantum-bot pid 4242 (the worker of supervisor pid 4241: stop that one); ` +
        'stop it, or give this process a DATA_DIR of its own',
    );
    // The refused attempt changed nothing.
    expect(readHolder(dir)?.pid).toBe(4242);

    lock.release();
    lock.release();
    const next = lockDataDir(dir, { pid: 5000 });
    next.release();
    expect(readHolder(dir)).toMatchObject({ pid: 5000 });
    expect(readHolder(dir)?.supervisorPid).toBeUndefined();
  });

  it('still refuses when the pid file is gone, without naming a pid', () => {
    const dir = tempDir();
    const lock = lockDataDir(dir, { pid: 4242 });
    onTestFinished(() => lock.release());
    rmSync(join(dir, PID_FILE));
    expect(() => lockDataDir(dir, { pid: 5000 })).toThrow(/is in use by another quantum-bot process;/);
  });
});

/** The pid of a process that has exited. */
function deadPid(): number {
  const { pid } = spawnSync(process.execPath, ['-e', '']);
  if (pid === undefined) throw new Error('could not run node');
  return pid;
}

describe('acquireDataDirLock', () => {
  it('waits for a worker whose supervisor is gone to stop, then takes the folder', async () => {
    const dir = tempDir();
    const orphan = lockDataDir(dir, { pid: 4242, supervisorPid: deadPid() });
    onTestFinished(() => orphan.release());
    let settled = false;
    const acquiring = acquireDataDirLock(dir, { pid: 5000 }, { orphanWaitMs: 10_000, pollMs: 10 });
    void acquiring.finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(settled).toBe(false);

    orphan.release();
    const lock = await acquiring;
    onTestFinished(() => lock.release());
    expect(readHolder(dir)?.pid).toBe(5000);
  });

  it('gives up on the orphan after orphanWaitMs', async () => {
    const dir = tempDir();
    const orphan = lockDataDir(dir, { pid: 4242, supervisorPid: deadPid() });
    onTestFinished(() => orphan.release());
    await expect(
      acquireDataDirLock(dir, { pid: 5000 }, { orphanWaitMs: 200, pollMs: 10 }),
    ).rejects.toMatchObject({ code: 'QB_ERR_DATA_DIR_LOCKED' });
  });

  it('refuses at once when the holder is a live process or a worker of a live supervisor', async () => {
    for (const holder of [{ pid: process.pid }, { pid: 4242, supervisorPid: process.pid }]) {
      const dir = tempDir();
      const lock = lockDataDir(dir, holder);
      onTestFinished(() => lock.release());
      const startedAt = Date.now();
      await expect(
        acquireDataDirLock(dir, { pid: 5000 }, { orphanWaitMs: 10_000, pollMs: 10 }),
      ).rejects.toMatchObject({ code: 'QB_ERR_DATA_DIR_LOCKED' });
      expect(Date.now() - startedAt).toBeLessThan(1_000);
    }
  });
});
