/**
 * One DATA_DIR, one process: a second `node bot.js` on the folder of a running one (another port)
 * exits 78 naming the folder and the pid that holds it, in both modes; the lock dies with its holder
 * (kill -9 included), so the next start and the supervisor's respawned worker take it over.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { status } from '../helpers/contract.js';
import { type BotProcess, type ExitInfo, isAlive, startBot } from '../helpers/process.js';

const EXIT_CONFIG = 78;
/** Generous: under a full test run a refused worker may take seconds to load and fail. */
const EXIT_WITHIN_MS = 30_000;
const RECOVERY = { timeout: 30_000, interval: 50 } as const;

describe('the DATA_DIR lock (real processes)', () => {
  it.each(['true', 'false'])(
    'refuses a second process on a folder in use: exit 78 naming it and the holder (CONTINUOUS_MODE=%s)',
    async (continuousMode) => {
      const env = { CONTINUOUS_MODE: continuousMode };
      const first = await startBot({ env });
      const holder = continuousMode === 'true' ? await first.waitForWorker() : first.pid;

      const second = await startBot({ env, dirs: first.dirs, waitForHealth: false });
      const exit = await exitOf(second, EXIT_WITHIN_MS);

      expect(exit.code, second.stdout() + second.stderr()).toBe(EXIT_CONFIG);
      const said = second.stdout() + second.stderr();
      expect(said).toContain(`DATA_DIR ${first.dirs.dataDir} is in use by quantum-bot pid ${holder}`);
      if (continuousMode === 'true') expect(said).toContain(`supervisor pid ${first.pid}`);
      expect(said).not.toContain('peer started');
      // Refused, not respawned in a loop; the first one is untouched.
      expect(second.workersSeen().length).toBeLessThanOrEqual(1);
      expect((await first.get('/health')).status).toBe(200);
      expect(first.isRunning()).toBe(true);
    },
  );

  it('takes over the lock of a holder killed with kill -9 (single mode)', async () => {
    const env = { CONTINUOUS_MODE: 'false' };
    const first = await startBot({ env });
    const { peerId } = await status(first);
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    // The pid file still names the dead holder; only the kernel's lock counts.
    expect(readFileSync(join(first.dirs.dataDir, 'quantum-bot.pid'), 'utf8')).toContain(`"pid":${first.pid}`);

    const second = await startBot({ env, dirs: first.dirs });
    expect((await status(second)).peerId).toBe(peerId);
    expect(readFileSync(join(first.dirs.dataDir, 'quantum-bot.pid'), 'utf8')).toContain(
      `"pid":${second.pid}`,
    );
  });

  it('starts over the worker a kill -9ed supervisor left behind, once that worker has stopped', async () => {
    const first = await startBot();
    const orphan = await first.waitForWorker();
    process.kill(first.pid, 'SIGKILL');
    await first.exited;

    // Restarted at once (PM2, a user): the orphan still holds DATA_DIR while it stops by itself.
    const second = await startBot({ dirs: first.dirs });
    // Its supervisor answers /health before its worker takes the lock: wait for the orphan to go.
    await vi.waitFor(() => expect(isAlive(orphan)).toBe(false), RECOVERY);
    expect((await second.get('/health')).status).toBe(200);
    expect(second.stdout()).not.toContain('is in use by');
  });

  it('lets the worker the supervisor respawns take the lock of the one that died', async () => {
    const bot = await startBot();
    const firstWorker = await bot.waitForWorker();
    process.kill(firstWorker, 'SIGKILL');
    await vi.waitFor(() => expect(isAlive(firstWorker)).toBe(false), RECOVERY);
    await vi.waitFor(async () => {
      expect((await bot.get('/health')).status).toBe(200);
      expect((await status(bot)).workerRespawns).toBe(1);
    }, RECOVERY);
    const secondWorker = await bot.waitForWorker({ not: firstWorker });
    expect(readFileSync(join(bot.dirs.dataDir, 'quantum-bot.pid'), 'utf8')).toContain(
      `"pid":${secondWorker}`,
    );
    expect(bot.stdout()).not.toContain('is in use by');
  });
});

/** The exit of a process that ends by itself; rejects when it still runs after `ms`. */
async function exitOf(bot: BotProcess, ms: number): Promise<ExitInfo> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`pid ${bot.pid} still runs after ${ms} ms`)), ms);
  });
  try {
    const exit = await Promise.race([bot.exited, late]);
    await bot.closed;
    return exit;
  } finally {
    clearTimeout(timer);
  }
}
