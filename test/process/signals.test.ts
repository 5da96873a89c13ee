/**
 * A stop signal at any moment of a process's life stops it cleanly: exit 0, promptly. Node drops a
 * signal whose handler was swapped between its arrival and its dispatch, which once lost a SIGTERM
 * sent during start-up (the process ran on until a second signal, or the supervisor killed its
 * worker 9 s later). Real processes, signalled at a range of delays after spawn, in both modes.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, vi } from 'vitest';
import { isAlive, startBot } from '../helpers/process.js';

/** Well under the 10 s that docker and PM2 give before SIGKILL. */
const PROMPT_EXIT_MS = 5_000;
const DELAYS_MS = [0, 50, 150, 300, 600, 900, 1500];

/**
 * Node itself catches SIGTERM from its first instruction (to restore the terminal, then die of the
 * signal), so a signal that beats bot.js's first lines ends the process by the signal. That is clean
 * only while nothing of ours ran: no output, no LOG_DIR made. Later than this, Node has long run
 * bot.js even on a loaded machine, and only exit 0 will do.
 */
const NODE_BOOTSTRAP_MS = 300;

describe.each(['true', 'false'])('a stop signal during start-up (CONTINUOUS_MODE=%s)', (continuousMode) => {
  it.each(DELAYS_MS)('SIGTERM %i ms after spawn: exit 0 promptly', async (delayMs) => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: continuousMode }, waitForHealth: false });
    await sleep(delayMs);
    const exit = await bot.stop('SIGTERM', PROMPT_EXIT_MS);

    if (delayMs < NODE_BOOTSTRAP_MS && exit.signal === 'SIGTERM') {
      expect(bot.stdout() + bot.stderr()).toBe('');
      expect(existsSync(bot.dirs.logDir)).toBe(false);
    } else {
      expect(exit, `stdout:\n${bot.stdout()}\nstderr:\n${bot.stderr()}`).toMatchObject({
        code: 0,
        signal: null,
      });
    }
    expect(exit.elapsedMs).toBeLessThan(PROMPT_EXIT_MS);
    expect(bot.stdout()).not.toContain('did not stop in time');
    // No worker outlives its supervisor.
    await vi.waitFor(() => {
      for (const worker of bot.workersSeen()) expect(isAlive(worker)).toBe(false);
    });
  });
});
