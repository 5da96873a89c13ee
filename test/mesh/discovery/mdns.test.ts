import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// --- Real bonjour-service, real multicast, inside a network namespace of our own ---------------
//
// mDNS never runs in the root network namespace here: it would multicast out of the machine's real
// interface. `unshare -n` gives the probe a namespace with nothing but loopback; the shell checks
// that `ip -o link` lists a single link before node starts, and the probe checks it again.

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const unshare = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
const iproute = spawnSync('ip', ['-V'], { stdio: 'ignore' });
const namespaceSkipReason =
  unshare.error !== undefined
    ? `unshare is not available (${unshare.error.message})`
    : unshare.status !== 0
      ? `unshare -n exited ${unshare.status}: this sandbox cannot create a network namespace`
      : iproute.error !== undefined || iproute.status !== 0
        ? 'iproute2 (ip) is not installed: loopback cannot be brought up in the namespace'
        : undefined;
if (namespaceSkipReason) console.log(`SKIP mDNS end to end: ${namespaceSkipReason}`);

interface ProbeSighting {
  address: string;
  peerId: string;
  source: string;
  at: number;
}
interface ProbePeer {
  options: { port: number };
  sightings: ProbeSighting[];
  errors: { code?: string; message: string; at: number }[];
  started: boolean;
  stopMs: number | null;
  exit: { code: number | null; signal: string | null; at: number } | null;
  lingered?: boolean;
  stderr: string;
}
interface ProbeReport {
  interfaces: string[];
  phases: {
    discovery?: { fullMeshMs: number };
    crash?: { killedAt: number; graceMs: number; windowEnd: number };
    stop?: { stoppingAt: number };
    blocked?: { recoveredMs: number };
    unreachable?: { done: boolean };
  };
  peers: Record<string, ProbePeer>;
  /** What a plain bonjour-service browser in the namespace saw: announcements and goodbyes. */
  observer: {
    up: { name: string; txt: Record<string, string>; port: number; at: number }[];
    down: { name: string; at: number }[];
    errors: string[];
  };
  error?: string;
  totalMs: number;
}

describe.skipIf(namespaceSkipReason !== undefined)('mdns end to end in a fresh network namespace', () => {
  let workDir = '';
  let report: ProbeReport;

  beforeAll(async () => {
    // The probe's peers are plain node processes: compile the discovery modules for them.
    await mkdir(path.join(root, 'test-artifacts'), { recursive: true });
    workDir = await mkdtemp(path.join(root, 'test-artifacts', 'mdns-'));
    await writeFile(
      path.join(workDir, 'tsconfig.json'),
      JSON.stringify({
        extends: path.join(root, 'tsconfig.build.json'),
        compilerOptions: {
          rootDir: path.join(root, 'src'),
          outDir: path.join(workDir, 'dist'),
          sourceMap: false,
        },
        include: [],
        files: [path.join(root, 'src/mesh/discovery/index.ts')],
      }),
    );
    const run = promisify(execFile);
    await run(path.join(root, 'node_modules/.bin/tsc'), ['-p', path.join(workDir, 'tsconfig.json')], {
      cwd: root,
    });
    const modulePath = path.join(workDir, 'dist/mesh/discovery/mdns.js');
    const probe = path.join(here, 'mdns-probe.mjs');
    const script = `ip link set lo up && [ "$(ip -o link | wc -l)" = 1 ] || exit 9; exec node "$0" "$1"`;
    // A failing probe still prints its JSON (with `error`): the tests below then say what went wrong.
    const stdout = await run('unshare', ['-n', 'sh', '-c', script, probe, modulePath], {
      cwd: root,
      timeout: 30_000,
    })
      .then((r) => r.stdout)
      .catch((err: { stdout?: string; stderr?: string; code?: unknown }) => {
        if (err.stdout?.trim().startsWith('{')) return err.stdout;
        throw new Error(`probe failed (exit ${String(err.code)}): ${err.stdout ?? ''}${err.stderr ?? ''}`);
      });
    report = JSON.parse(stdout) as ProbeReport;
  }, 60_000);

  afterAll(async () => {
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  const peer = (id: string): ProbePeer => {
    const p = report.peers[id];
    if (!p) throw new Error(`no report for ${id}`);
    return p;
  };
  const seen = (id: string, until = Number.POSITIVE_INFINITY) =>
    [
      ...new Set(
        peer(id)
          .sightings.filter((s) => s.at < until)
          .map((s) => `${s.peerId}@${s.address}`),
      ),
    ].sort();

  it('ran isolated: loopback only, every phase completed', () => {
    expect(report.error).toBeUndefined();
    expect(report.interfaces).toEqual(['lo']);
    expect(Object.keys(report.phases)).toEqual(['discovery', 'crash', 'stop', 'blocked', 'unreachable']);
  });

  it('each peer sees exactly the other peers of its cluster and version, at their real address', () => {
    const crash = report.phases.crash?.killedAt ?? 0;
    expect(seen('peer-a', crash)).toEqual(['peer-b@127.0.0.1:9102', 'peer-c@127.0.0.1:9103']);
    expect(seen('peer-b', crash)).toEqual(['peer-a@127.0.0.1:9101', 'peer-c@127.0.0.1:9103']);
    // c announces and listens on an interface address (MDNS_INTERFACE).
    expect(seen('peer-c')).toEqual(['peer-a@127.0.0.1:9101', 'peer-b@127.0.0.1:9102']);
    expect(seen('peer-d')).toEqual([]); // cluster beta: alone
    expect(seen('peer-e')).toEqual([]); // protocol version 2: nobody compatible
    for (const id of ['peer-a', 'peer-b', 'peer-c', 'peer-d', 'peer-e']) {
      expect(peer(id).errors, id).toEqual([]);
      expect(peer(id).sightings.every((s) => s.source === 'mdns')).toBe(true);
    }
    expect(report.phases.discovery?.fullMeshMs).toBeLessThan(5_000);
  });

  it('announces qb-<peerId> with TXT {peerId, cluster, v} on the wire', () => {
    const announced = report.observer.up.map((u) => [u.name, u.port, u.txt]);
    expect(announced).toEqual(
      expect.arrayContaining([
        ['qb-peer-a', 9101, { peerId: 'peer-a', cluster: 'alpha', v: '1' }],
        ['qb-peer-c', 9103, { peerId: 'peer-c', cluster: 'alpha', v: '1' }],
        ['qb-peer-d', 9104, { peerId: 'peer-d', cluster: 'beta', v: '1' }],
        ['qb-peer-e', 9105, { peerId: 'peer-e', cluster: 'alpha', v: '2' }],
      ]),
    );
    expect(report.observer.errors).toEqual([]);
  });

  it('stopped peers send goodbyes; a SIGKILLed one cannot, so its record outlives it', () => {
    const stoppingAt = report.phases.stop?.stoppingAt ?? Number.POSITIVE_INFINITY;
    const goodbyes = report.observer.down.filter((d) => d.at >= stoppingAt).map((d) => d.name);
    expect(goodbyes.sort()).toEqual(['qb-peer-a', 'qb-peer-b', 'qb-peer-d', 'qb-peer-e']);
    expect(report.observer.down.map((d) => d.name)).not.toContain('qb-peer-c');
  });

  it('re-queries: a live peer is sighted again and again, not only once', () => {
    const ofB = peer('peer-a').sightings.filter((s) => s.peerId === 'peer-b');
    expect(ofB.length).toBeGreaterThanOrEqual(4);
  });

  it('a SIGKILLed peer stops being sighted once it no longer answers, while live peers still are', () => {
    const crash = report.phases.crash;
    if (!crash) throw new Error('no crash phase');
    expect(peer('peer-c').exit?.signal).toBe('SIGKILL');
    const after = crash.killedAt + crash.graceMs;
    for (const [id, other] of [
      ['peer-a', 'peer-b'],
      ['peer-b', 'peer-a'],
    ] as const) {
      const late = peer(id).sightings.filter((s) => s.at >= after);
      expect(
        late.filter((s) => s.peerId === 'peer-c'),
        id,
      ).toEqual([]);
      expect(late.filter((s) => s.peerId === other).length, id).toBeGreaterThanOrEqual(2);
    }
  });

  it('stop says goodbye, closes the socket and leaves nothing running: each peer exits by itself', () => {
    for (const id of ['peer-a', 'peer-b', 'peer-d', 'peer-e', 'peer-f', 'peer-g', 'peer-h']) {
      const p = peer(id);
      expect(p.lingered, id).toBeUndefined();
      expect(p.exit, id).toMatchObject({ code: 0, signal: null });
      expect(p.stopMs, id).toBeLessThan(1_500);
      expect(p.stderr, id).toBe('');
    }
  });

  it('a socket error (5353 held without SO_REUSEADDR) is reported, not thrown, and the peer recovers', () => {
    const f = peer('peer-f');
    expect(f.errors[0]).toMatchObject({ code: 'EADDRINUSE' });
    expect(f.errors).toHaveLength(1);
    expect(seen('peer-f')).toEqual(['peer-g@127.0.0.1:9107']);
    expect(seen('peer-g')).toEqual(['peer-f@127.0.0.1:9106']);
    expect(report.phases.blocked?.recoveredMs).toBeLessThan(4_000);
  });

  it('send failures (network unreachable) go to onError; the process neither crashes nor hangs', () => {
    const h = peer('peer-h');
    expect(h.errors.length).toBeGreaterThan(0);
    expect(h.errors.every((e) => /^E(NETUNREACH|HOSTUNREACH|ADDRNOTAVAIL)$/.test(e.code ?? ''))).toBe(true);
    expect(h.exit).toMatchObject({ code: 0, signal: null });
  });
});
