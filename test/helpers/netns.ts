/**
 * A fresh network namespace for a test (DESIGN.md section 7): peers that multicast (mDNS) run in
 * there, never in the root namespace of this shared machine. `unshare -n` makes it with nothing but
 * a loopback interface; we bring lo up and route multicast to it (see below), and a relay process
 * (netns-relay.mjs) keeps the namespace alive and lets the test, which stays outside, reach
 * 127.0.0.1:<port> in there through Unix sockets. startBot({ netns }) execs peers inside with nsenter.
 *
 * Multicast on a namespace's lo, as measured on Linux 6.18: with lo merely up, multicast-dns already
 * works (it sets IP_MULTICAST_IF to 127.0.0.1 itself), while a socket without IP_MULTICAST_IF gets
 * ENETUNREACH until a 224.0.0.0/4 route via lo exists; lo's MULTICAST flag changed nothing either
 * way. We add the route and set the flag anyway (harmless), so any sender works on any kernel, and
 * the relay proves it with a datagram to 224.0.0.251 before it says ready.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { onTestFinished } from 'vitest';
import { isAlive, type NetNamespace, startTimeOf } from './process.js';

const RELAY = fileURLToPath(new URL('./netns-relay.mjs', import.meta.url));
const READY_TIMEOUT_MS = 15_000;
const SETUP = 'ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo';

/** Why namespaces cannot be made here, or undefined when they can. */
export function namespaceUnavailable(): string | undefined {
  const probe = spawnSync('unshare', ['-n', '--', 'sh', '-c', SETUP], { encoding: 'utf8', timeout: 10_000 });
  if (probe.error) return `unshare -n: ${probe.error.message}`;
  if (probe.status !== 0) return `unshare -n failed (exit ${probe.status}): ${probe.stderr.trim()}`;
  const nsenter = spawnSync('nsenter', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  if (nsenter.error || nsenter.status !== 0) return 'nsenter is not available';
  return undefined;
}

export interface TestNamespace extends NetNamespace {
  /** PID of the relay that holds the namespace. */
  readonly pid: number;
}

/**
 * Makes a namespace whose relay serves `ports`; it is removed with onTestFinished (the relay is
 * SIGKILLed by PID; the namespace goes when its last process does).
 */
export async function makeNetNamespace(ports: readonly number[]): Promise<TestNamespace> {
  const dir = mkdtempSync(join(tmpdir(), 'qb-netns-'));
  // unshare and sh exec without forking, so the PID we get is the relay's, inside the namespace.
  const child = spawn(
    'unshare',
    [
      '-n',
      '--',
      'sh',
      '-c',
      `${SETUP} && exec "$0" "$@"`,
      process.execPath,
      RELAY,
      dir,
      ...ports.map(String),
    ],
    { stdio: ['pipe', 'pipe', 'pipe'] },
  );
  if (child.pid === undefined) throw new Error('could not spawn unshare -n');
  const pid = child.pid;
  // Checked before signalling, so a reused PID is never killed.
  const startTime = startTimeOf(pid);
  onTestFinished(async () => {
    if (isAlive(pid, startTime)) process.kill(pid, 'SIGKILL');
    await exitOf(child);
    rmSync(dir, { recursive: true, force: true });
  });

  const ready = await readyLine(child);
  if (!ready.ready) throw new Error(`the namespace's relay failed: ${ready.error}`);
  const path = `/proc/${pid}/ns/net`;
  if (readlinkSync(path) === readlinkSync('/proc/self/ns/net')) {
    throw new Error('the relay runs in our own network namespace: unshare -n did not take effect');
  }
  return { pid, path, socketFor: (port) => join(dir, `${port}.sock`) };
}

/** The relay's first stdout line, a JSON object; rejects when it exits or stays silent. */
function readyLine(child: ChildProcess): Promise<{ ready: boolean; error?: string }> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => finish(new Error(`the namespace's relay did not say ready within ${READY_TIMEOUT_MS} ms`)),
      READY_TIMEOUT_MS,
    );
    const finish = (error?: Error, line?: string) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      if (error) reject(new Error(`${error.message}; stderr: ${err.trim() || '(empty)'}`));
      else resolve(JSON.parse(line as string));
    };
    const onData = (chunk: string) => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (newline >= 0) finish(undefined, out.slice(0, newline));
    };
    const onExit = (code: number | null, signal: string | null) =>
      finish(new Error(`unshare -n exited (code ${code}, signal ${signal}) before the relay was ready`));
    child.stdout?.setEncoding('utf8').on('data', onData);
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      err += chunk;
    });
    child.once('exit', onExit);
  });
}

function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
