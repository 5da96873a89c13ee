import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { lockDataDir, PID_FILE, readHolder } from '../../src/store/data-dir-lock.js';
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
