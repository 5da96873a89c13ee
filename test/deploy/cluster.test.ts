/**
 * `npm run cluster` (scripts/cluster.mjs) keeps the cluster's API token in its cluster.env; a peer it
 * starts says so in every 401 and in GET /token-hint (QB_TOKEN_HINT), without revealing the token.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { childPids, freePort, http, isAlive, LOOPBACK, waitForHealth } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const CLUSTER = fileURLToPath(new URL('../../scripts/cluster.mjs', import.meta.url));

/** Stops the cluster script the way Ctrl-C would; SIGKILLs what is left (by PID) after 15 s. */
function stopWhenFinished(child: ChildProcess): void {
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const descendants = (pid: number): number[] => childPids(pid).flatMap((c) => [c, ...descendants(c)]);
    const started = descendants(child.pid as number);
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = new Promise((resolve) => setTimeout(resolve, 15_000).unref());
    await Promise.race([exited, timer]);
    for (const pid of [child.pid as number, ...started]) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
}

describe('scripts/cluster.mjs', () => {
  it("points a 401 at the cluster's env file, not at the token", async () => {
    const dataDir = tempDir('qb-cluster-');
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [CLUSTER, '--peers', '1', '--base-port', String(port), '--data-dir', dataDir],
      { stdio: 'ignore', env: { PATH: process.env.PATH ?? '' } },
    );
    stopWhenFinished(child);
    const url = `http://${LOOPBACK}:${port}`;
    await waitForHealth(url, { alive: () => child.exitCode === null });

    const envFile = join(dataDir, 'cluster.env');
    const token = /^API_TOKEN=(.+)$/m.exec(readFileSync(envFile, 'utf8'))?.[1] as string;
    const refused = await http(`${url}/kill-switch`, {
      method: 'POST',
      body: { activate: true, reason: 'x' },
    });
    expect(refused.status).toBe(401);
    expect(refused.json().error.message).toContain(`this peer's token is API_TOKEN in ${envFile}`);
    expect(refused.body).not.toContain(token);
    expect((await http(`${url}/token-hint`)).json().tokenHint).toBe(`API_TOKEN in ${envFile}`);
  });
});
