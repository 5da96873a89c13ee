/**
 * PM2 runs the peers of ecosystem.config.cjs: 2 peers mesh over loopback (static discovery), a
 * worker killed with SIGKILL is restarted by PM2 (not by our own supervisor: CONTINUOUS_MODE=false)
 * and relinks with the same peer id, and everything is deleted at the end.
 *
 * PM2 runs from node_modules with PM2_HOME in a temp directory, so a user's ~/.pm2 is never touched;
 * its first-run version check (an HTTPS request to version.pm2.io) is disabled.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { http, isAlive, LOOPBACK } from '../helpers/process.js';
import { freePortRange } from './helpers/ports.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PM2 = join(ROOT, 'node_modules', '.bin', 'pm2');

const unavailable = existsSync(PM2) ? undefined : `${PM2} is missing (npm install)`;
if (unavailable) console.log(`[deploy/pm2] skipped: ${unavailable}`);

interface Pm2App {
  name: string;
  pid: number;
  pm2_env: { status: string; restart_time: number; kill_timeout: number; CONTINUOUS_MODE?: string };
}

describe.skipIf(unavailable !== undefined)('PM2 with ecosystem.config.cjs', () => {
  let home: string;
  let env: Record<string, string>;
  let basePort = 0;
  /** Every app PID seen, with its start time (cleanup kills only these, and only if still the same process). */
  const seenPids = new Map<number, string>();

  const pm2 = async (...args: string[]) => {
    const { stdout } = await run(PM2, args, { cwd: ROOT, env, timeout: 60_000 });
    return stdout;
  };

  const list = async (): Promise<Pm2App[]> => {
    const out = await pm2('jlist');
    const apps = JSON.parse(out.slice(out.indexOf('['))) as Pm2App[];
    for (const app of apps) {
      if (app.pid > 0 && !seenPids.has(app.pid)) seenPids.set(app.pid, startTimeOf(app.pid) ?? '');
    }
    return apps;
  };

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'qb-pm2-'));
    // PM2 checks its version over the network on its first run only (no `touch` file yet).
    writeFileSync(join(home, 'touch'), String(Date.now()));
    basePort = await freePortRange(2);
    env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      PM2_HOME: home,
      PM2_DISABLE_VERSION_CHECK: '1',
      QB_PEERS: '2',
      QB_BASE_PORT: String(basePort),
      QB_DATA_ROOT: join(home, 'data'),
      MESH_SECRET: randomBytes(32).toString('hex'),
      API_TOKEN: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'info',
    };
  });

  afterAll(async () => {
    const problems: string[] = [];
    for (const args of [['delete', 'all'], ['kill']]) {
      try {
        await pm2(...args);
      } catch (err) {
        problems.push(`pm2 ${args.join(' ')}: ${(err as Error).message}`);
      }
    }
    // Belt and braces, by PID: the daemon this test started, and the apps it ran.
    const daemonPidFile = join(home, 'pm2.pid');
    if (existsSync(daemonPidFile)) {
      const pid = Number(readFileSync(daemonPidFile, 'utf8'));
      if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
    }
    for (const [pid, startTime] of seenPids) {
      if (isAlive(pid, startTime)) {
        problems.push(`app pid ${pid} survived pm2 delete`);
        process.kill(pid, 'SIGKILL');
      }
    }
    rmSync(home, { recursive: true, force: true });
    expect(problems).toEqual([]);
  });

  it('starts 2 meshed peers, restarts a SIGKILLed worker, and the peer relinks with its persisted id', async () => {
    await pm2('start', join(ROOT, 'ecosystem.config.cjs'));
    const urls = [0, 1].map((i) => `http://${LOOPBACK}:${basePort + i}`);

    const apps = await list();
    expect(apps.map((a) => a.name).sort()).toEqual(['quantum-bot-1', 'quantum-bot-2']);
    for (const app of apps) {
      // PM2 is the supervisor: one process per peer, and a stop has time to finish.
      expect(app.pm2_env.CONTINUOUS_MODE).toBe('false');
      expect(app.pm2_env.kill_timeout).toBeGreaterThanOrEqual(10_000);
    }

    const ids = await Promise.all(urls.map((url) => waitFor(`${url}/mesh`, async () => selfId(url))));
    await waitForLink(urls[0] as string, ids[1] as string);
    await waitForLink(urls[1] as string, ids[0] as string);
    const status = (await http(`${urls[1]}/status`)).json();
    expect(status.continuousMode).toBe(false);

    // The worker is the PM2 app's process itself (no supervisor of ours in between).
    const before = (await list()).find((a) => a.name === 'quantum-bot-2') as Pm2App;
    expect(before.pm2_env.status).toBe('online');
    const listening = await http(`${urls[1]}/status`);
    expect(listening.status).toBe(200);
    process.kill(before.pid, 'SIGKILL');

    const after = await waitFor('PM2 to restart quantum-bot-2', async () => {
      const app = (await list()).find((a) => a.name === 'quantum-bot-2');
      return app && app.pid > 0 && app.pid !== before.pid && app.pm2_env.status === 'online'
        ? app
        : undefined;
    });
    expect(after.pm2_env.restart_time).toBe(before.pm2_env.restart_time + 1);
    // Same DATA_DIR, same peer id; the other peer links to it again.
    expect(await waitFor(`${urls[1]}/mesh again`, async () => selfId(urls[1] as string))).toBe(ids[1]);
    await waitForLink(urls[0] as string, ids[1] as string);
    // PM2 restarted it; the surviving peer was never touched.
    const first = (await list()).find((a) => a.name === 'quantum-bot-1') as Pm2App;
    expect(first.pm2_env.restart_time).toBe(0);
  }, 120_000);
});

async function selfId(url: string): Promise<string | undefined> {
  const answer = await http(`${url}/mesh`, { timeoutMs: 2_000 });
  return answer.status === 200 ? (answer.json().self.peerId as string) : undefined;
}

async function waitForLink(url: string, peerId: string): Promise<void> {
  await waitFor(`${url} to see ${peerId} connected`, async () => {
    const mesh = (await http(`${url}/mesh`, { timeoutMs: 2_000 })).json();
    return mesh.peers.some(
      (p: { peerId: string; state: string }) => p.peerId === peerId && p.state === 'connected',
    )
      ? true
      : undefined;
  });
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
