/**
 * The chaos run's network: a Linux bridge of its own in the root namespace (10.x.y.1/24, x.y picked
 * free) and one network namespace per peer joined to it by a veth pair, 10.x.y.(10+i). Nothing is
 * attached to eth0 and no namespace has a default route, so no packet leaves the bridge. The fakes
 * (AI provider, feed, webhook receiver) and PostgreSQL listen on the bridge's host address.
 *
 * Network faults act on one peer's links:
 *   partition   `ip link set <host veth> down` (the peer hears nobody and nobody hears it)
 *   loss        `tc netem loss P%` when the kernel has netem, else an nftables rule in the peer's
 *               namespace dropping P% of its packets to and from the bridge (numgen random)
 *   delay       `tc netem delay D ms` when the kernel has netem, else a `tbf` rate limit on both
 *               ends of the veth (a slow link: queueing delay grows with what is sent)
 *
 * Where namespaces cannot be made (not root, no `ip netns`), `loopbackLab` runs the peers on
 * 127.0.0.1 with one port each and refuses network faults (the caller prints a warning).
 *
 * cleanup() is synchronous so it can run from an 'exit' handler; it undoes every step made, last
 * first, even after a setup that failed halfway.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const PEER_PORT = 9000;

function ip(...args) {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function run(file, args, input) {
  const r = spawnSync(file, args, { encoding: 'utf8', input });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${file} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** Why namespaces cannot be made here, or undefined when they can (tries `ip netns add`). */
export function namespacesUnavailable() {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'not root: `ip netns` needs CAP_NET_ADMIN';
  const probe = `qbc-${randomBytes(3).toString('hex')}-probe`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.error) return `\`ip\` cannot run: ${add.error.message}`;
  if (add.status !== 0) return `\`ip netns add\` failed: ${add.stderr.trim() || `exit ${add.status}`}`;
  spawnSync('ip', ['netns', 'del', probe]);
  return undefined;
}

function pickPrefix() {
  const used = `${ip('-4', 'addr')}\n${ip('-4', 'route')}`;
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = `10.${randomInt(64, 251)}.${randomInt(0, 256)}`;
    if (!used.includes(`${prefix}.`)) return prefix;
  }
  throw new Error('no free 10.x.y.0/24 for the chaos bridge');
}

/** Whether this kernel has the netem qdisc (many minimal kernels do not). Probed on `dev`. */
function probeNetem(dev) {
  const add = spawnSync('tc', ['qdisc', 'add', 'dev', dev, 'root', 'netem', 'delay', '1ms'], {
    encoding: 'utf8',
  });
  if (add.status !== 0) return false;
  spawnSync('tc', ['qdisc', 'del', 'dev', dev, 'root']);
  return true;
}

/**
 * @param {number} count peers
 * @returns the lab: { mode, hostAddress, peers: [{address, port, ns, hostVeth}], spawnIn, faults, cleanup }
 */
export function createNetLab(count) {
  const tag = randomBytes(3).toString('hex');
  const prefix = pickPrefix();
  const bridge = `qbc${tag}br`;
  const hostAddress = `${prefix}.1`;
  /** Undo steps, run last-in first-out. */
  const undo = [];
  const peers = [];
  let cleaned = false;

  const cleanup = () => {
    if (cleaned) return [];
    cleaned = true;
    const problems = [];
    for (const step of undo.reverse()) {
      try {
        step.run();
      } catch (err) {
        const message = (err.stderr ?? err.message ?? String(err)).trim();
        if (!/Cannot find device|does not exist|No such file/i.test(message))
          problems.push(`${step.what}: ${message}`);
      }
    }
    return problems;
  };

  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    undo.push({ what: `bridge ${bridge}`, run: () => ip('link', 'del', bridge) });
    quiet(() => writeFileSync(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1'));
    ip('addr', 'add', `${hostAddress}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (let i = 0; i < count; i++) {
      const ns = `qbc-${tag}-${i + 1}`;
      const address = `${prefix}.${10 + i + 1}`;
      const hostVeth = `qbc${tag}h${i + 1}`;
      const nsVeth = `qbc${tag}n${i + 1}`;
      ip('netns', 'add', ns);
      undo.push({ what: `netns ${ns}`, run: () => ip('netns', 'del', ns) });
      ip('link', 'add', hostVeth, 'type', 'veth', 'peer', 'name', nsVeth);
      // Deleting one end deletes the pair; when the namespace went first the pair is gone already.
      undo.push({ what: `veth ${hostVeth}`, run: () => ip('link', 'del', hostVeth) });
      ip('link', 'set', nsVeth, 'netns', ns);
      ip('-n', ns, 'link', 'set', nsVeth, 'name', 'veth0');
      spawnSync(
        'ip',
        ['netns', 'exec', ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6'],
        {
          stdio: 'ignore',
        },
      );
      ip('-n', ns, 'addr', 'add', `${address}/24`, 'dev', 'veth0');
      ip('-n', ns, 'link', 'set', 'veth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      ip('link', 'set', hostVeth, 'master', bridge);
      ip('link', 'set', hostVeth, 'up');
      peers.push({ address, port: PEER_PORT, ns, hostVeth });
    }
  } catch (err) {
    cleanup();
    throw err;
  }
  const netem = probeNetem(peers[0].hostVeth);

  /** Removes whatever impairment a peer's links carry (qdiscs both ends, our nft table). */
  const clear = (i) => {
    const p = peers[i];
    spawnSync('tc', ['qdisc', 'del', 'dev', p.hostVeth, 'root'], { stdio: 'ignore' });
    spawnSync('ip', ['netns', 'exec', p.ns, 'tc', 'qdisc', 'del', 'dev', 'veth0', 'root'], {
      stdio: 'ignore',
    });
    spawnSync('ip', ['netns', 'exec', p.ns, 'nft', 'delete', 'table', 'inet', 'qbchaos'], {
      stdio: 'ignore',
    });
  };

  const faults = {
    supported: true,
    netem,
    partition(i) {
      ip('link', 'set', peers[i].hostVeth, 'down');
      return `ip link set ${peers[i].hostVeth} down`;
    },
    unpartition(i) {
      ip('link', 'set', peers[i].hostVeth, 'up');
      return `ip link set ${peers[i].hostVeth} up`;
    },
    loss(i, percent) {
      const p = peers[i];
      clear(i);
      if (netem) {
        run('tc', ['qdisc', 'add', 'dev', p.hostVeth, 'root', 'netem', 'loss', `${percent}%`]);
        run('ip', [
          'netns',
          'exec',
          p.ns,
          'tc',
          'qdisc',
          'add',
          'dev',
          'veth0',
          'root',
          'netem',
          'loss',
          `${percent}%`,
        ]);
        return `tc qdisc add dev ${p.hostVeth} root netem loss ${percent}% (both ends)`;
      }
      const rules = [
        'add table inet qbchaos',
        'add chain inet qbchaos in { type filter hook input priority 0 ; }',
        'add chain inet qbchaos out { type filter hook output priority 0 ; }',
        `add rule inet qbchaos in iifname "veth0" numgen random mod 100 < ${percent} drop`,
        `add rule inet qbchaos out oifname "veth0" numgen random mod 100 < ${percent} drop`,
      ];
      run('ip', ['netns', 'exec', p.ns, 'nft', '-f', '-'], `${rules.join('\n')}\n`);
      return `nft (in ${p.ns}): numgen random mod 100 < ${percent} drop, veth0 in and out (no netem in this kernel)`;
    },
    delay(i, ms) {
      const p = peers[i];
      clear(i);
      if (netem) {
        const jitter = String(Math.round(ms / 4));
        run('tc', ['qdisc', 'add', 'dev', p.hostVeth, 'root', 'netem', 'delay', `${ms}ms`, `${jitter}ms`]);
        run('ip', [
          'netns',
          'exec',
          p.ns,
          'tc',
          'qdisc',
          'add',
          'dev',
          'veth0',
          'root',
          'netem',
          'delay',
          `${ms}ms`,
        ]);
        return `tc qdisc add dev ${p.hostVeth} root netem delay ${ms}ms ${jitter}ms (both ends)`;
      }
      // No netem: a slow link instead. 8 kB/s makes a status summary of a few kB wait ~0.5 s, and a
      // burst of them seconds, which is what the mesh's timeouts need to feel.
      const tbf = ['root', 'tbf', 'rate', '64kbit', 'burst', '1600', 'latency', `${Math.max(ms, 200) * 4}ms`];
      run('tc', ['qdisc', 'add', 'dev', p.hostVeth, ...tbf]);
      run('ip', ['netns', 'exec', p.ns, 'tc', 'qdisc', 'add', 'dev', 'veth0', ...tbf]);
      return `tc qdisc add dev ${p.hostVeth} ${tbf.join(' ')} (both ends; no netem in this kernel)`;
    },
    clear(i) {
      clear(i);
      return `tc qdisc del dev ${peers[i].hostVeth} root; nft delete table inet qbchaos (in ${peers[i].ns})`;
    },
    /** Established TCP connections inside peer i's namespace: [{local, remote}] as "ip:port". */
    connections(i) {
      const out = run('ip', ['netns', 'exec', peers[i].ns, 'ss', '-Htn', 'state', 'established']);
      return parseSs(out);
    },
  };

  // The lab must go even when the run ends abruptly.
  process.once('exit', cleanup);
  return {
    mode: 'netns',
    tag,
    bridge,
    hostAddress,
    peers,
    faults,
    /** Starts `command` inside peer i's namespace; `ip netns exec` execs it, so the PID is the command's. */
    spawnIn(i, command, args, options) {
      return spawn('ip', ['netns', 'exec', peers[i].ns, command, ...args], options);
    },
    cleanup,
  };
}

/** Peers on 127.0.0.1, one port each, no network faults: the fallback where namespaces cannot be made. */
export function loopbackLab(count, ports) {
  const peers = ports.slice(0, count).map((port) => ({ address: '127.0.0.1', port }));
  return {
    mode: 'loopback',
    hostAddress: '127.0.0.1',
    peers,
    faults: {
      supported: false,
      netem: false,
      connections() {
        return parseSs(run('ss', ['-Htn', 'state', 'established']));
      },
    },
    spawnIn(_i, command, args, options) {
      return spawn(command, args, options);
    },
    cleanup: () => [],
  };
}

function parseSs(out) {
  const rows = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    // Recv-Q Send-Q Local Peer (state filtered, so no State column)
    if (f.length >= 4) rows.push({ local: f[2], remote: f[3] });
  }
  return rows;
}

function quiet(fn) {
  try {
    fn();
  } catch {
    // Optional (an IPv6-less kernel).
  }
}
