/**
 * A private network for tests, shaped like a docker compose network: a Linux bridge of its own in the
 * root namespace (10.x.y.1/24, x.y random) and one network namespace per host, each joined to the
 * bridge by a veth pair and given 10.x.y.(10+i). Nothing is attached to a real interface and no
 * namespace has a default route, so no packet can leave the bridge. Each namespace can get its own
 * /etc/resolv.conf through /etc/netns/<ns>/resolv.conf, which `ip netns exec` bind-mounts.
 *
 * Everything made is recorded and removed by cleanup() (synchronous, so it also runs from a process
 * 'exit' handler), even when the setup failed halfway.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';

export interface Namespace {
  name: string;
  /** 10.x.y.(10+i) */
  address: string;
}

export interface NetLab {
  readonly tag: string;
  /** 10.x.y */
  readonly prefix: string;
  readonly bridge: string;
  /** 10.x.y.1, the root namespace's address on the bridge. */
  readonly bridgeAddress: string;
  addNamespace(index: number, options?: { nameserver?: string }): Namespace;
  /** Starts `command` inside the namespace (`ip netns exec` execs it: the PID is the command's). */
  spawnIn(ns: Namespace, command: string, args: string[], options: SpawnInOptions): ChildProcess;
  cleanup(): string[];
}

export interface SpawnInOptions {
  env: Record<string, string>;
  cwd: string;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why namespaces cannot be made here, or undefined when they can (tries `ip netns add`). */
export function netnsUnavailableReason(): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  const probe = `qbt-${randomBytes(3).toString('hex')}-probe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return `\`ip\` cannot run: ${add.error.message}`;
  if (add.status !== 0) return `\`ip netns add\` failed: ${add.stderr.trim() || `exit ${add.status}`}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

function pickPrefix(): string {
  const used = `${ip('-4', 'addr')}\n${ip('-4', 'route')}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = `10.${randomInt(64, 251)}.${randomInt(0, 256)}`;
    if (!used.includes(`${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.x.y.0/24 for the test bridge');
}

export function createNetLab(): NetLab {
  const tag = randomBytes(3).toString('hex');
  const prefix = pickPrefix();
  const bridge = `qbt${tag}br`;
  const bridgeAddress = `${prefix}.1`;
  // Undo steps, run last-in first-out.
  const undo: { what: string; run: () => void }[] = [];
  const children = new Set<ChildProcess>();
  let cleaned = false;

  const lab: NetLab = {
    tag,
    prefix,
    bridge,
    bridgeAddress,
    addNamespace(index, options = {}) {
      const name = `qbt-${tag}-${index}`;
      const address = `${prefix}.${10 + index}`;
      const hostSide = `qbt${tag}h${index}`;
      const nsSide = `qbt${tag}n${index}`;
      ip('netns', 'add', name);
      undo.push({ what: `netns ${name}`, run: () => ip('netns', 'del', name) });
      if (options.nameserver) {
        if (!existsSync('/etc/netns')) {
          mkdirSync('/etc/netns');
          // Only when this lab made it, and only once it is empty again (others may use it meanwhile).
          undo.push({ what: '/etc/netns', run: () => tolerateNotEmpty(() => rmdirSync('/etc/netns')) });
        }
        const dir = `/etc/netns/${name}`;
        mkdirSync(dir, { recursive: true });
        undo.push({ what: dir, run: () => rmSync(dir, { recursive: true, force: true }) });
        writeFileSync(
          `${dir}/resolv.conf`,
          `nameserver ${options.nameserver}\noptions timeout:1 attempts:3\n`,
        );
      }
      ip('link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide);
      // Deleting one end deletes the pair; when the namespace went first, the pair is gone already.
      undo.push({ what: `veth ${hostSide}`, run: () => tolerateMissing(() => ip('link', 'del', hostSide)) });
      ip('link', 'set', nsSide, 'netns', name);
      ip('-n', name, 'link', 'set', nsSide, 'name', 'veth0');
      quietIpv6([
        'ip',
        'netns',
        'exec',
        name,
        'sh',
        '-c',
        'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6',
      ]);
      ip('-n', name, 'addr', 'add', `${address}/24`, 'dev', 'veth0');
      ip('-n', name, 'link', 'set', 'veth0', 'up');
      ip('-n', name, 'link', 'set', 'lo', 'up');
      ip('link', 'set', hostSide, 'master', bridge);
      ip('link', 'set', hostSide, 'up');
      return { name, address };
    },
    spawnIn(ns, command, args, options) {
      const child = spawn('ip', ['netns', 'exec', ns.name, command, ...args], {
        env: options.env,
        cwd: options.cwd,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    cleanup() {
      if (cleaned) return [];
      cleaned = true;
      const problems: string[] = [];
      // Processes first (by PID: only those this lab started), so no socket keeps a namespace busy.
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
          try {
            process.kill(child.pid, 'SIGKILL');
          } catch {
            // Gone meanwhile.
          }
        }
      }
      for (const step of undo.reverse()) {
        try {
          step.run();
        } catch (err) {
          problems.push(`${step.what}: ${(err as Error).message.trim()}`);
        }
      }
      return problems;
    },
  };

  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    undo.push({ what: `bridge ${bridge}`, run: () => tolerateMissing(() => ip('link', 'del', bridge)) });
    writeSysctl(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1');
    ip('addr', 'add', `${bridgeAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
  } catch (err) {
    lab.cleanup();
    throw err;
  }
  // Even when the test process ends abruptly, the bridge and namespaces go.
  process.once('exit', () => lab.cleanup());
  return lab;
}

function tolerateMissing(run: () => void): void {
  try {
    run();
  } catch (err) {
    const message = (err as { stderr?: string }).stderr ?? (err as Error).message;
    if (!/Cannot find device|does not exist/i.test(message)) throw err;
  }
}

function tolerateNotEmpty(run: () => void): void {
  try {
    run();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'ENOENT') throw err;
  }
}

function writeSysctl(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    // No IPv6 in this kernel: nothing to silence.
  }
}

function quietIpv6(command: string[]): void {
  const [file, ...args] = command;
  if (file) spawnSync(file, args, { stdio: 'ignore' });
}
