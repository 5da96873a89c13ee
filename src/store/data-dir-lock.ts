/**
 * One DATA_DIR, one process. Two peers on one folder would share the database, the peer id and the
 * API token and fight over them without a word, so the process that runs the peer holds an
 * exclusive lock on DATA_DIR/quantum-bot.lock for its whole life. The lock is SQLite's (a POSIX
 * advisory lock, through the better-sqlite3 we already ship): the kernel drops it when the holder
 * dies, even by kill -9, so a stale lock file never blocks the next start. Next to it,
 * quantum-bot.pid names the holder, for the message the next process prints.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { QbError } from '../errors.js';

export const LOCK_FILE = 'quantum-bot.lock';
export const PID_FILE = 'quantum-bot.pid';

/** Who holds the folder, as written to the pid file. */
export interface LockHolder {
  pid: number;
  /** The supervisor of a continuous-mode worker: the process to stop. */
  supervisorPid?: number;
  since: string;
}

export interface DataDirLock {
  /** Releases the lock (closing is enough; the kernel would on exit anyway). Idempotent. */
  release(): void;
}

/**
 * Takes DATA_DIR's lock or throws QB_ERR_DATA_DIR_LOCKED naming the folder and the holder's pid.
 * `dataDir` must exist.
 */
export function lockDataDir(dataDir: string, holder: Omit<LockHolder, 'since'>): DataDirLock {
  const db = new Database(join(dataDir, LOCK_FILE), { timeout: 0 });
  try {
    // EXCLUSIVE locking mode keeps the lock BEGIN EXCLUSIVE takes until the connection closes.
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
    throw new QbError('QB_ERR_DATA_DIR_LOCKED', inUseMessage(dataDir, readHolder(dataDir)), { cause: err });
  }
  const record: LockHolder = { ...holder, since: new Date().toISOString() };
  writeFileSync(join(dataDir, PID_FILE), `${JSON.stringify(record)}\n`);
  return {
    release: () => {
      if (db.open) db.close();
    },
  };
}

/**
 * lockDataDir, except that a holder which is a worker whose supervisor is gone gets up to
 * `orphanWaitMs` to finish: such a worker stops by itself (it noticed the lost IPC channel), and a
 * supervisor restarted right after `kill -9` of the old one must not be refused for it, or PM2 (exit
 * 78 is never restarted) would leave the peer down.
 */
export async function acquireDataDirLock(
  dataDir: string,
  holder: Omit<LockHolder, 'since'>,
  { orphanWaitMs, pollMs = 100 }: { orphanWaitMs: number; pollMs?: number },
): Promise<DataDirLock> {
  const deadline = Date.now() + orphanWaitMs;
  for (;;) {
    try {
      return lockDataDir(dataDir, holder);
    } catch (err) {
      const current = readHolder(dataDir);
      const orphan = current?.supervisorPid !== undefined && !isRunning(current.supervisorPid);
      if (!(err instanceof QbError) || !orphan || Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder the pid file names; undefined when it is missing or unreadable. */
export function readHolder(dataDir: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, PID_FILE), 'utf8')) as Partial<LockHolder>;
    return typeof parsed.pid === 'number' ? (parsed as LockHolder) : undefined;
  } catch {
    return undefined;
  }
}

function inUseMessage(dataDir: string, holder: LockHolder | undefined): string {
  const who = !holder
    ? 'another quantum-bot process'
    : holder.supervisorPid
      ? `quantum-bot pid ${holder.pid} (the worker of supervisor pid ${holder.supervisorPid}: stop that one)`
      : `quantum-bot pid ${holder.pid}`;
  return `DATA_DIR ${dataDir} is in use by ${who}; stop it, or give this process a DATA_DIR of its own`;
}
