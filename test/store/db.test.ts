import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it, onTestFinished } from 'vitest';
import { DB_FILE, openDb, SCHEMA_VERSION } from '../../src/store/db.js';
import { tempDir } from '../helpers/tmp.js';

describe('openDb', () => {
  it('creates DATA_DIR and its SQLite file in WAL mode at the current schema version', () => {
    const dir = join(tempDir(), 'nested', 'data');
    const db = openDb(dir);
    onTestFinished(() => {
      db.close();
    });
    expect(existsSync(join(dir, DB_FILE))).toBe(true);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  });

  it('migrates once: reopening keeps the data and the version', () => {
    const dir = tempDir();
    const first = openDb(dir);
    first
      .prepare(
        "INSERT INTO kill_switch_history (active, reason, at, origin, epoch) VALUES (1, 'r', 't', 'o', 1)",
      )
      .run();
    first.close();
    const again = openDb(dir);
    onTestFinished(() => {
      again.close();
    });
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(again.prepare('SELECT COUNT(*) AS n FROM kill_switch_history').get()).toEqual({ n: 1 });
  });

  it('refuses a database written by a newer build', () => {
    const dir = tempDir();
    const db = openDb(dir);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openDb(dir)).toThrow(/newer than this build/);
  });
});

const OPEN_CHILD = fileURLToPath(new URL('./open-child.mjs', import.meta.url));
const BUILT = existsSync(fileURLToPath(new URL('../../dist/store/db.js', import.meta.url)));

describe.skipIf(!BUILT)('openDb from several processes at once', () => {
  it('migrates a fresh file exactly once while other processes open it too', async () => {
    const run = promisify(execFile);
    // Before the fix a second process read user_version 0, then ran the first migration again
    // ("table kill_switch already exists"). A few rounds make the race likely on a loaded machine.
    for (let round = 0; round < 5; round++) {
      const dir = tempDir();
      const results = await Promise.allSettled(
        Array.from({ length: 4 }, () => run(process.execPath, [OPEN_CHILD, dir], { timeout: 30_000 })),
      );
      const failures = results.flatMap((r) =>
        r.status === 'rejected' ? [String((r.reason as Error).message)] : [],
      );
      expect(failures).toEqual([]);
      const db = openDb(dir);
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      db.close();
    }
  });
});
