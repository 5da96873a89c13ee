/**
 * Supervision in a real peer process (`node bot.js`, the built code, continuous mode): a failing
 * subsystem leaves its trace in logs/bot-errors.log, and the 10-failure limit holds when the failure
 * takes the whole worker process down each time. Small backoffs keep the respawns quick; bounds are
 * generous for a loaded 2-core machine.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { status } from '../helpers/contract.js';
import { type BotProcess, startBot } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const RECOVERY = { timeout: 30_000, interval: 50 } as const;
const MAX_CONSECUTIVE_FAILURES = 10;

interface LogLine {
  level: number;
  msg: string;
  subsystem?: string;
  err?: { message: string };
  [field: string]: unknown;
}

function errorLog(bot: BotProcess): LogLine[] {
  let text = '';
  try {
    text = readFileSync(join(bot.dirs.logDir, 'bot-errors.log'), 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);
}

describe('supervision in a real process', () => {
  it('logs a failing subsystem to stdout and to logs/bot-errors.log', async () => {
    const bot = await startBot({ env: { FAULT_INJECTION: 'true', SUBSYSTEM_RESTART_BASE_MS: '50' } });
    const thrown = await bot.post('/faults/subsystems/health/throw', undefined, bot.apiToken());
    expect(thrown.status).toBe(202);
    await vi.waitFor(async () => {
      const health = (await status(bot)).subsystems.health;
      expect(health).toMatchObject({ state: 'running', restarts: 1 });
    }, RECOVERY);

    await vi.waitFor(() => {
      const failure = errorLog(bot).find(
        (l) => l.subsystem === 'health' && l.msg.startsWith('subsystem failed'),
      );
      expect(failure).toMatchObject({ level: 50, err: { message: 'fault injected on request' } });
    }, RECOVERY);
    expect(bot.stdout()).toContain('subsystem failed; restarting it after a backoff');
    expect(bot.stdout()).toContain('restarting subsystem after its backoff');
    expect(bot.stdout()).toContain('subsystem recovered: running again');
  });

  it('holds a subsystem failed after the worker died under it 10 times in a row, and keeps serving', async () => {
    const bot = await startBot({
      env: { FAULT_INJECTION: 'true', WORKER_RESPAWN_BASE_MS: '20', WORKER_RESPAWN_MAX_MS: '200' },
    });
    for (let death = 1; death <= MAX_CONSECUTIVE_FAILURES; death++) {
      const before = await status(bot);
      expect(before.subsystems.health).toMatchObject({ state: 'running', consecutiveFailures: death - 1 });
      const crash = await bot.post('/faults/worker/crash', undefined, bot.apiToken());
      expect(crash.status).toBe(202);
      await vi.waitFor(async () => {
        const after = await status(bot);
        expect(after.workerRespawns).toBe(death);
      }, RECOVERY);
    }

    const s = await status(bot);
    expect(s.subsystems.health).toMatchObject({
      state: 'failed',
      consecutiveFailures: MAX_CONSECUTIVE_FAILURES,
      lastError: { code: 'QB_ERR_WORKER_DIED' },
    });
    expect(bot.isRunning()).toBe(true);
    const deaths = errorLog(bot).filter((l) => l.msg.includes('previous worker process died'));
    expect(deaths).toHaveLength(MAX_CONSECUTIVE_FAILURES);
    expect(
      errorLog(bot).some((l) => l.subsystem === 'health' && l.msg.startsWith('subsystem is failed')),
    ).toBe(true);

    // The operator's restart clears it, in this worker and in the journal.
    const restarted = await bot.post('/subsystems/health/restart', undefined, bot.apiToken());
    expect(restarted.status).toBeLessThan(300);
    await vi.waitFor(async () => {
      expect((await status(bot)).subsystems.health).toMatchObject({
        state: 'running',
        consecutiveFailures: 0,
      });
    }, RECOVERY);
  }, 180_000);
});

const CRASHING_WORKER = fileURLToPath(new URL('./fixtures/crashing-subsystem.mjs', import.meta.url));

/** Runs one boot of the fixture to its end; kills it (by its PID) if it outlives `timeoutMs`. */
function bootOnce(dataDir: string, timeoutMs = 15_000): Promise<{ code: number | null; status: unknown }> {
  const child = spawn(process.execPath, [CRASHING_WORKER], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('STATUS '));
      resolve({ code, status: line ? JSON.parse(line.slice('STATUS '.length)) : undefined });
    });
  });
}

describe('a subsystem whose unguarded callback takes the worker down', () => {
  it('is held failed after 10 deaths pinned on it, while the other subsystem is not blamed', async () => {
    const dataDir = tempDir();
    for (let death = 1; death <= MAX_CONSECUTIVE_FAILURES; death++) {
      const boot = await bootOnce(dataDir);
      expect(boot.code, `boot ${death} dies of the uncaught exception`).toBe(1);
      expect(boot.status).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: 'crasher', state: 'running', consecutiveFailures: death - 1 }),
          expect.objectContaining({ name: 'bystander', state: 'running', consecutiveFailures: 0 }),
        ]),
      );
    }
    const last = await bootOnce(dataDir);
    expect(last.code).toBe(0);
    expect(last.status).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          name: 'crasher',
          state: 'failed',
          consecutiveFailures: MAX_CONSECUTIVE_FAILURES,
          lastError: expect.objectContaining({
            code: 'QB_ERR_WORKER_DIED',
            message: expect.stringContaining('a bug in a timer callback'),
          }),
        }),
        expect.objectContaining({ name: 'bystander', state: 'running', consecutiveFailures: 0 }),
      ]),
    );
  }, 180_000);
});
