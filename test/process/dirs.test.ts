/**
 * A DATA_DIR or LOG_DIR the process cannot use is a configuration problem, the same for both: one
 * clear line on stderr and exit 78 (EX_CONFIG, which PM2 and our supervisor do not restart), never
 * a raw stack and exit 1 that a process manager retries in a loop. The folder sits under a regular
 * file, which fails for root too (tests run as root, who may write anywhere else).
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { type BotProcess, type ExitInfo, makeDirs, startBot } from '../helpers/process.js';

const EXIT_CONFIG = 78;
const EXIT_WITHIN_MS = 10_000;

describe.each(['true', 'false'])('an unusable folder (CONTINUOUS_MODE=%s)', (continuousMode) => {
  it.each(['LOG_DIR', 'DATA_DIR'])('%s under a regular file: one line, exit 78', async (name) => {
    const dirs = makeDirs();
    onTestFinished(() => rmSync(dirs.root, { recursive: true, force: true }));
    const blocker = join(dirs.root, 'a-file');
    writeFileSync(blocker, 'not a folder\n');
    const bad = join(blocker, 'sub');
    const bot = await startBot({
      dirs,
      env: { CONTINUOUS_MODE: continuousMode, [name]: bad },
      waitForHealth: false,
    });
    const exit = await exitOf(bot, EXIT_WITHIN_MS);

    expect(exit.code, bot.stdout() + bot.stderr()).toBe(EXIT_CONFIG);
    const lines = bot.stderr().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(`${name} ${bad} cannot be created or written`);
    expect(lines[0]).toContain('ENOTDIR');
    expect(bot.stderr()).not.toMatch(/^\s+at /m);
    // Refused before anything started: no worker forked, no peer.
    expect(bot.workersSeen()).toEqual([]);
    expect(bot.stdout()).not.toContain('peer started');
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
