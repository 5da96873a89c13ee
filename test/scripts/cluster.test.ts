/**
 * `npm run cluster` started twice: the second run must refuse at once, with a clear message and a
 * non-zero exit, instead of printing its banner while its peers loop on EADDRINUSE and write into
 * the first cluster's files. Real processes: the script and the peers it starts on 127.0.0.1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { childPids, deferred, freePort, isAlive, waitForHealth } from '../helpers/process.js';

const CLUSTER = fileURLToPath(new URL('../../scripts/cluster.mjs', import.meta.url));
const REFUSED_WITHIN_MS = 10_000;

interface Run {
  child: ChildProcess;
  out(): string;
  exited: Promise<number | null>;
}

/** Every descendant of `pid`, deepest last, while they live. */
function descendants(pid: number): number[] {
  const found: number[] = [];
  for (const child of childPids(pid)) found.push(child, ...descendants(child));
  return found;
}

/** `node scripts/cluster.mjs ARGS`, stopped with its whole tree (by pid) when the test ends. */
function runCluster(args: string[], cwd: string): Run {
  // A clean environment: no MESH_SECRET or ports of the developer's shell leak in.
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: cwd };
  const child = spawn(process.execPath, [CLUSTER, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const exited = deferred<number | null>();
  child.once('exit', (code) => exited.resolve(code));
  const seen = new Set<number>();
  const tracker = setInterval(() => {
    if (child.pid) for (const p of descendants(child.pid)) seen.add(p);
  }, 50);
  onTestFinished(async () => {
    clearInterval(tracker);
    if (child.pid) for (const p of descendants(child.pid)) seen.add(p);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const p of seen) {
      try {
        if (isAlive(p)) process.kill(p, 'SIGKILL');
      } catch {
        // Gone meanwhile.
      }
    }
    await exited.promise;
  });
  return { child, out: () => out, exited: exited.promise };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

describe('npm run cluster, twice', () => {
  it('refuses a second cluster on the same folder or the same ports; the first runs on untouched', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'qb-cluster-'));
    onTestFinished(() => rmSync(cwd, { recursive: true, force: true }));
    const port = await freePort();
    const otherPort = await freePort();
    const dataDir = join(cwd, 'cluster');
    const first = runCluster(['--peers', '1', '--base-port', String(port), '--data-dir', dataDir], cwd);
    await waitForHealth(`http://127.0.0.1:${port}`, { alive: () => first.child.exitCode === null });
    const firstLog = () => readFileSync(join(dataDir, 'peer-1', 'out.log'), 'utf8');
    const logBefore = firstLog();

    // The same command again: same folder, same ports.
    const again = runCluster(['--peers', '1', '--base-port', String(port), '--data-dir', dataDir], cwd);
    const againCode = await within(again.exited, REFUSED_WITHIN_MS, 'the second cluster did not refuse');
    expect(againCode, again.out()).not.toBe(0);
    expect(again.out()).toContain(`${dataDir} is in use by npm run cluster (pid ${first.child.pid})`);
    expect(again.out()).not.toContain('Ctrl-C stops every peer');

    // Another folder on the same ports.
    const samePorts = runCluster(
      ['--peers', '1', '--base-port', String(port), '--data-dir', join(cwd, 'elsewhere')],
      cwd,
    );
    const samePortsCode = await within(samePorts.exited, REFUSED_WITHIN_MS, 'same ports were not refused');
    expect(samePortsCode, samePorts.out()).not.toBe(0);
    expect(samePorts.out()).toContain(`port ${port} on 127.0.0.1 is in use`);
    expect(samePorts.out()).not.toContain('Ctrl-C stops every peer');

    // The same folder on other ports.
    const sameFolder = runCluster(
      ['--peers', '1', '--base-port', String(otherPort), '--data-dir', dataDir],
      cwd,
    );
    const sameFolderCode = await within(
      sameFolder.exited,
      REFUSED_WITHIN_MS,
      'the same folder was not refused',
    );
    expect(sameFolderCode, sameFolder.out()).not.toBe(0);
    expect(sameFolder.out()).toContain(`${dataDir} is in use`);

    // Nothing of the refused runs reached the first cluster.
    expect(first.child.exitCode).toBeNull();
    expect((await waitForHealth(`http://127.0.0.1:${port}`)).status).toBe(200);
    expect(firstLog().slice(logBefore.length)).not.toMatch(/EADDRINUSE|is in use/);
  });
});
