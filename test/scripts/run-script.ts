/**
 * Runs one of scripts/*.mjs as a child process for a test: a clean environment (no MESH_SECRET or
 * ports of the developer's shell leak in), output kept, and the whole process tree killed (by PID)
 * when the test ends, whatever happened.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { childPids, isAlive } from '../helpers/process.js';

export interface ScriptRun {
  out(): string;
  /** Resolves to the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
}

function descendants(pid: number): number[] {
  const found: number[] = [];
  for (const child of childPids(pid)) found.push(child, ...descendants(child));
  return found;
}

export function runScript(name: string, args: string[], cwd: string): ScriptRun {
  const script = fileURLToPath(new URL(`../../scripts/${name}`, import.meta.url));
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? cwd };
  const child = spawn(process.execPath, [script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => {
    out += s;
  });
  const { promise: exited, resolve } = Promise.withResolvers<number | null>();
  child.once('exit', (code) => resolve(code));
  // Descendants are remembered while they live: a peer whose parent died is still ours.
  const seen = new Set<number>();
  const tracker = setInterval(() => {
    if (child.pid) for (const p of descendants(child.pid)) seen.add(p);
  }, 200);
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
    await exited;
  });
  return { out: () => out, exited };
}
