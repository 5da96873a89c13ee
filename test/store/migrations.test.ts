import { describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/db.js';
import { applyNamedMigrations } from '../../src/store/migrations.js';

describe('named migrations', () => {
  it('applies each migration once, by name, in order, and records it', () => {
    const db = openDb(':memory:');
    const first = [{ name: 'demo/001-table', sql: 'CREATE TABLE demo (x INTEGER)' }];
    expect(applyNamedMigrations(db, first)).toEqual(['demo/001-table']);
    expect(applyNamedMigrations(db, first)).toEqual([]);
    const more = [...first, { name: 'demo/002-column', sql: 'ALTER TABLE demo ADD COLUMN y TEXT' }];
    expect(applyNamedMigrations(db, more)).toEqual(['demo/002-column']);
    const names = db.prepare('SELECT name FROM schema_migrations ORDER BY name').pluck().all();
    expect(names).toEqual(['demo/001-table', 'demo/002-column']);
    db.close();
  });

  it('records nothing when a migration fails, so it runs again next time', () => {
    const db = openDb(':memory:');
    const bad = [{ name: 'demo/001-bad', sql: 'CREATE TABLE ok (x); CREATE TABLE broken (' }];
    expect(() => applyNamedMigrations(db, bad)).toThrow();
    expect(db.prepare('SELECT COUNT(*) FROM schema_migrations').pluck().get()).toBe(0);
    expect(db.prepare(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'ok'`).pluck().get()).toBe(0);
    db.close();
  });
});
