import { execFile, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMdnsDiscovery, type MdnsDiscoveryOptions } from '../../../src/mesh/discovery/mdns.js';
import { fakeFactory, peerService } from './fake-bonjour.js';
import { describeDiscoveryLifecycle, stopUnderFakeTime } from './lifecycle.js';
import { recorder } from './recorder.js';

const base = { peerId: 'peer-a', cluster: 'alpha', protocolVersion: 1, port: 9001 };

function setup(options: Partial<MdnsDiscoveryOptions> = {}, before?: Parameters<typeof fakeFactory>[0]) {
  const fake = fakeFactory(before);
  const discovery = createMdnsDiscovery({
    ...base,
    requeryMs: 1_000,
    bonjourFactory: fake.factory,
    ...options,
  });
  return { discovery, instances: fake.instances, rec: recorder() };
}

describe('mdns discovery over a fake bonjour', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes qb-<peerId> with TXT {peerId, cluster, v} and browses quantum-bot', async () => {
    const { discovery, instances, rec } = setup({ interface: '10.9.0.1' });
    await discovery.start(rec.context);
    expect(instances).toHaveLength(1);
    const [bonjour] = instances;
    expect(bonjour?.options.interface).toBe('10.9.0.1');
    expect(bonjour?.published).toEqual([
      {
        name: 'qb-peer-a',
        type: 'quantum-bot',
        port: 9001,
        txt: { peerId: 'peer-a', cluster: 'alpha', v: '1' },
      },
    ]);
    expect(bonjour?.browser.type).toBe('quantum-bot');
    await stopUnderFakeTime(discovery);
  });

  it('reports peers of its cluster and version at their source address, and nobody else', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const browser = instances[0]?.browser;
    browser?.emit('up', peerService('peer-a', 9001)); // itself, heard over multicast loopback
    browser?.emit('up', peerService('peer-b', 9002));
    browser?.emit('up', peerService('peer-x', 9009, { cluster: 'beta' }));
    browser?.emit('up', peerService('peer-y', 9008, { v: '2' }));
    browser?.emit(
      'up',
      peerService('peer-c', 9003, { referer: undefined, addresses: ['fd00::3', '10.0.0.3'] }),
    );
    // A peer restarted on another port, or whose TXT changed, is a new sighting too.
    browser?.emit('srv-update', peerService('peer-b', 9012));
    browser?.emit('txt-update', peerService('peer-d', 9004));
    expect(rec.sightings).toEqual([
      { address: '127.0.0.1:9002', peerId: 'peer-b', source: 'mdns' },
      { address: '10.0.0.3:9003', peerId: 'peer-c', source: 'mdns' },
      { address: '127.0.0.1:9012', peerId: 'peer-b', source: 'mdns' },
      { address: '127.0.0.1:9004', peerId: 'peer-d', source: 'mdns' },
    ]);
    await stopUnderFakeTime(discovery);
  });

  it('re-queries every requeryMs with a new browser, so live peers are sighted again', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const bonjour = instances[0];
    const first = bonjour?.browser;
    first?.emit('up', peerService('peer-b', 9002));
    await vi.advanceTimersByTimeAsync(999);
    expect(bonjour?.browsers).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(bonjour?.browsers).toHaveLength(2);
    expect(first?.stopped).toBe(true);
    bonjour?.browser.emit('up', peerService('peer-b', 9002));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(bonjour?.browsers).toHaveLength(5);
    expect(bonjour?.browsers.filter((b) => !b.stopped)).toHaveLength(1);
    expect(rec.addresses()).toEqual(['127.0.0.1:9002', '127.0.0.1:9002']);
    expect(instances).toHaveLength(1); // the socket and the announcement are kept
    await stopUnderFakeTime(discovery);
  });

  it('stop: browser stopped, goodbye awaited, then the socket destroyed', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const bonjour = instances[0];
    let stopped = false;
    const stopping = discovery.stop().then(() => {
      stopped = true;
    });
    expect(bonjour?.browser.stopped).toBe(true);
    expect(bonjour?.calls).toEqual(['publish', 'find', 'unpublishAll']);
    await vi.advanceTimersByTimeAsync(4);
    expect(bonjour?.destroyed).toBe(false); // never before the goodbye is out
    await vi.advanceTimersByTimeAsync(1);
    expect(bonjour?.calls).toEqual(['publish', 'find', 'unpublishAll', 'destroy']);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(stopped).toBe(true);
    expect(rec.errors).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop does not hang on a goodbye that is never sent: it reports it and still closes', async () => {
    const { discovery, instances, rec } = setup({ unpublishTimeoutMs: 500 }, (b) => {
      b.answerUnpublish = false;
    });
    await discovery.start(rec.context);
    const stopping = discovery.stop();
    await vi.advanceTimersByTimeAsync(499);
    expect(instances[0]?.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(instances[0]?.destroyed).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(rec.errors.map((e) => String(e.error))).toEqual(['Error: mDNS goodbye not sent within 500 ms']);
  });

  it('a fatal socket error is reported once; the next tick replaces the instance without a goodbye', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const broken = instances[0];
    const bindError = Object.assign(new Error('bind EADDRINUSE 0.0.0.0:5353'), { code: 'EADDRINUSE' });
    broken?.options.onFatal(bindError);
    broken?.options.onFatal(bindError);
    expect(rec.errors).toEqual([{ error: bindError, source: 'mdns' }]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(broken?.calls).toEqual(['publish', 'find', 'destroy']);
    expect(instances).toHaveLength(2);
    const fresh = instances[1];
    expect(fresh?.calls).toEqual(['publish', 'find']);
    fresh?.browser.emit('up', peerService('peer-b', 9002));
    expect(rec.addresses()).toEqual(['127.0.0.1:9002']);
    // Late noise from the replaced instance is not ours to report any more.
    broken?.options.onError(new Error('late warning'));
    broken?.options.onFatal(new Error('late fatal'));
    expect(rec.errors).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(instances).toHaveLength(2); // a healthy instance is kept
    await stopUnderFakeTime(discovery);
  });

  it('non-fatal errors (send failures, socket warnings) go to onError and change nothing', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const sendError = Object.assign(new Error('send EHOSTUNREACH 224.0.0.251:5353'), {
      code: 'EHOSTUNREACH',
    });
    instances[0]?.options.onError(sendError);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(rec.errors).toEqual([{ error: sendError, source: 'mdns' }]);
    expect(instances).toHaveLength(1);
    await stopUnderFakeTime(discovery);
  });

  it('a factory that throws is reported and retried on the next tick', async () => {
    let attempts = 0;
    const { discovery, instances, rec } = setup({}, () => {
      attempts += 1;
      if (attempts === 1) throw new Error('no socket today');
    });
    await discovery.start(rec.context);
    expect(rec.errors.map((e) => String(e.error))).toEqual(['Error: no socket today']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(instances).toHaveLength(1);
    expect(instances[0]?.published).toHaveLength(1);
    await stopUnderFakeTime(discovery);
  });

  it('refuses non-positive timings with QB_ERR_CONFIG', () => {
    expect(() => createMdnsDiscovery({ ...base, requeryMs: 0 })).toThrow(
      expect.objectContaining({ code: 'QB_ERR_CONFIG' }),
    );
  });
});

describeDiscoveryLifecycle('mdns', () => {
  const fake = fakeFactory();
  const discovery = createMdnsDiscovery({ ...base, requeryMs: 1_000, bonjourFactory: fake.factory });
  return {
    discovery,
    provoke: async () => {
      fake.instances.at(-1)?.browsers.at(-1)?.emit('up', peerService('peer-b', 9002));
    },
  };
});

// --- Real bonjour-service, real multicast, inside a network namespace of our own ---------------
//
// mDNS never runs in the root network namespace here: it would multicast out of the machine's real
// interface. `unshare -n` gives the probe a namespace with nothing but loopback; the shell checks
// that `ip -o link` lists a single link before node starts, and the probe checks it again.

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const unshare = spawnSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
const namespaceSkipReason =
  unshare.error !== undefined
    ? `unshare is not available (${unshare.error.message})`
    : unshare.status !== 0
      ? `unshare -n exited ${unshare.status}: this sandbox cannot create a network namespace`
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
