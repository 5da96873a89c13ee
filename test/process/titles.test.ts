/**
 * Which process to kill: the supervisor and its worker show different `ps` lines (process titles
 * naming the role and the peer), and /status gives both pids.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { status } from '../helpers/contract.js';
import { startBot } from '../helpers/process.js';

const SOON = { timeout: 15_000, interval: 50 } as const;

/** What `ps -o args` shows: /proc/<pid>/cmdline, NUL-separated words, padding trimmed. */
function psLine(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' ').trim();
}

describe('process titles and pids', () => {
  it('continuous mode: "quantum-bot supervisor <peerId>" and "quantum-bot worker <peerId>", both pids in /status', async () => {
    const bot = await startBot();
    const worker = await bot.waitForWorker();
    const s = await status(bot);
    expect(s.pids).toEqual({ supervisor: bot.pid, worker });

    await vi.waitFor(() => {
      expect(psLine(bot.pid)).toBe(`quantum-bot supervisor ${s.peerId}`);
      expect(psLine(worker)).toBe(`quantum-bot worker ${s.peerId}`);
    }, SOON);
  });

  it('single mode: "quantum-bot single <peerId>", no supervisor pid', async () => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false' } });
    const s = await status(bot);
    expect(s.pids).toEqual({ supervisor: null, worker: bot.pid });
    await vi.waitFor(() => expect(psLine(bot.pid)).toBe(`quantum-bot single ${s.peerId}`), SOON);
  });
});
