/**
 * The Procfile's web process, run as Heroku and Railway run it: through a shell, with PORT set by the
 * platform, and stopped with SIGTERM sent to every process of the dyno (its process group).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { childPids, freePort, http, isAlive, LOOPBACK, waitForHealth } from '../helpers/process.js';
import { waitFor } from './helpers/wait.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A process and all its descendants that are alive. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    for (const child of childPids(next)) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function processTypes(): Map<string, string> {
  const types = new Map<string, string>();
  for (const line of readFileSync(join(ROOT, 'Procfile'), 'utf8').split('\n')) {
    const m = /^([A-Za-z0-9_-]+):\s*(.+)$/.exec(line.trim());
    if (m) types.set(m[1] as string, m[2] as string);
  }
  return types;
}

describe('Procfile', () => {
  it('declares one web process: node bot.js in continuous mode', () => {
    expect([...processTypes()]).toEqual([['web', 'CONTINUOUS_MODE=true node bot.js']]);
  });

  it('serves on the PORT the platform gives and stops gracefully when every process of the dyno gets SIGTERM', async () => {
    const command = processTypes().get('web') as string;
    const port = await freePort();
    const root = mkdtempSync(join(tmpdir(), 'qb-procfile-'));
    // Like a dyno: the app's directory as cwd, PORT from the platform, nothing else about the mesh.
    const dyno = spawn('sh', ['-c', command], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: root,
        PORT: String(port),
        // Heroku needs 0.0.0.0 (the default); loopback here, as every test on this machine.
        HOST: LOOPBACK,
        DATA_DIR: join(root, 'data'),
        LOG_DIR: join(root, 'logs'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group, which the platform signals as a whole.
      detached: true,
    });
    const pid = dyno.pid as number;
    let out = '';
    dyno.stdout?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    dyno.stderr?.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    const exited = new Promise<void>((resolve) => dyno.once('close', () => resolve()));
    // Every process seen, for the cleanup (by PID, only these).
    const workers = new Set<number>();
    onTestFinished(async () => {
      for (const p of [pid, ...workers]) {
        if (isAlive(p)) process.kill(p, 'SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    });

    const url = `http://${LOOPBACK}:${port}`;
    await waitForHealth(url, { alive: () => dyno.exitCode === null });
    const status = (await http(`${url}/status`)).json();
    expect(status.continuousMode).toBe(true);
    // Every process of the dyno: the shell, `node bot.js` (its child, or the shell itself where the shell
    // execs), and in continuous mode the worker that node supervises.
    const tree = await waitFor('the supervisor and its worker', async () => {
      const all = descendants(pid);
      return all.length >= 2 ? all : undefined;
    });
    for (const p of tree) workers.add(p);

    // The platform's stop: SIGTERM to every process of the dyno (here: its process group).
    const sentAt = Date.now();
    process.kill(-pid, 'SIGTERM');
    await waitFor(
      'every process of the dyno to end',
      async () => ([pid, ...tree].some((p) => isAlive(p)) ? undefined : true),
      {
        timeoutMs: 10_000,
        intervalMs: 50,
      },
    );
    // Well within Heroku's 30 s (and docker's 10 s), and gracefully: the worker stopped the peer, the
    // supervisor saw it stop and exited, nothing was SIGKILLed.
    expect(Date.now() - sentAt).toBeLessThan(10_000);
    await exited;
    const messages = out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; role?: string });
    expect(
      messages.some((m) => m.role === 'worker' && m.msg === 'stopped'),
      out,
    ).toBe(true);
    expect(
      messages.some((m) => m.role === 'supervisor' && m.msg === 'worker stopped; exiting'),
      out,
    ).toBe(true);
    expect(
      messages.some((m) => m.msg.includes('killing it')),
      out,
    ).toBe(false);
  });
});
