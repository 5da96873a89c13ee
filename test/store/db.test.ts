import { existsSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { appliedMigrations, CORE_MIGRATIONS, DB_FILE, openDb } from '../../src/store/db.js';
import { tempDir } from '../helpers/tmp.js';

const CORE = CORE_MIGRATIONS.map((m) => m.name);

describe('openDb', () => {
  it('creates DATA_DIR and its SQLite file in WAL mode with every core migration applied', () => {
    const dir = join(tempDir(), 'nested', 'data');
    const db = openDb(dir);
    onTestFinished(() => {
      db.close();
    });
    expect(existsSync(join(dir, DB_FILE))).toBe(true);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(appliedMigrations(db)).toEqual(CORE);
  });

  it('migrates once: reopening keeps the data and applies nothing twice', () => {
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
    expect(appliedMigrations(again)).toEqual(CORE);
    expect(again.prepare('SELECT COUNT(*) AS n FROM kill_switch_history').get()).toEqual({ n: 1 });
  });

  it('applies the named migrations of features, independently of their order', () => {
    const dir = tempDir();
    const a = { name: 'a/one', sql: 'CREATE TABLE a_one (x INTEGER)' };
    const b = { name: 'b/one', sql: 'CREATE TABLE b_one (x INTEGER)' };
    openDb(dir, [a]).close();
    // Another build lists b before a: a is not applied again, b is added.
    const db = openDb(dir, [b, a]);
    onTestFinished(() => {
      db.close();
    });
    expect(appliedMigrations(db)).toEqual([...CORE, 'a/one', 'b/one']);
  });

  it('a failing migration applies nothing of itself and is retried at the next open', () => {
    const dir = tempDir();
    const bad = { name: 'x/bad', sql: 'CREATE TABLE x_ok (a INTEGER); CREATE TABLE x_ok (a INTEGER)' };
    expect(() => openDb(dir, [bad])).toThrow(/already exists/);
    const db = openDb(dir, [{ name: 'x/bad', sql: 'CREATE TABLE x_ok (a INTEGER)' }]);
    onTestFinished(() => {
      db.close();
    });
    expect(appliedMigrations(db)).toContain('x/bad');
  });

  it('adopts a database from before named migrations (user_version 2)', () => {
    const dir = tempDir();
    const old = new Database(join(dir, DB_FILE));
    for (const m of CORE_MIGRATIONS) old.exec(m.sql);
    old.pragma('user_version = 2');
    old.close();
    const db = openDb(dir);
    onTestFinished(() => {
      db.close();
    });
    expect(appliedMigrations(db)).toEqual(CORE);
  });

  it('refuses a database written by a newer build', () => {
    const dir = tempDir();
    openDb(dir, [{ name: 'future/table', sql: 'CREATE TABLE f (x INTEGER)' }]).close();
    expect(() => openDb(dir)).toThrow(/does not know \(future\/table\).*refusing to downgrade/);
  });
});
