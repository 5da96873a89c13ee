// MeshNodes on the in-memory network (src/mesh/memory-transport.ts) and virtual time: the same
// node, handshake and sealed links as production, with fake pipes and fake time, so a test walks a
// minute of mesh life in well under a second and the same way every run.
import { onTestFinished } from 'vitest';
import { DEFAULT_MESH_SYNC_INTERVAL_MS } from '../../src/config/mesh.js';
import type { Logger } from '../../src/logger.js';
import { Keyring } from '../../src/mesh/auth.js';
import type { Discovery } from '../../src/mesh/discovery/types.js';
import { MEMORY_PORT, type MemoryHost, MemoryNetwork } from '../../src/mesh/memory-transport.js';
import { MeshNode, type MeshNodeOptions, type MeshTimers } from '../../src/mesh/node.js';
import type { Summary } from '../../src/mesh/protocol.js';
import { MemoryKillSwitch, SECRET, silentLogger, staticDiscovery } from './harness.js';

export interface MemoryPeer {
  id: string;
  host: MemoryHost;
  node: MeshNode;
  killSwitch: MemoryKillSwitch;
  /** Static discovery's list (addresses, host:port). */
  peers: string[];
}

export interface MemoryPeerOpts {
  bootId?: string;
  secrets?: string[];
  /** An existing host (a second process at the same address after a restart). */
  host?: MemoryHost;
  killSwitch?: MemoryKillSwitch;
  alsoDiscover?: Discovery;
  timers?: Partial<MeshTimers>;
  logger?: Logger;
  node?: Partial<MeshNodeOptions>;
}

/** A deterministic random source (mulberry32), so backoff jitter is the same every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Production timers with the fast-detection heartbeat (MESH_HEARTBEAT_INTERVAL=200; the default is
 * 1 s): these tests measure what such a fleet would see. The deadlines follow the interval (see
 * failure-detector.ts), so what holds at 200 ms holds at the default, 0.8 s later.
 */
export const FAST_HEARTBEAT_MS = 200;
export const PRODUCTION_TIMERS: MeshTimers = {
  heartbeatIntervalMs: FAST_HEARTBEAT_MS,
  syncIntervalMs: DEFAULT_MESH_SYNC_INTERVAL_MS,
  reconnectIntervalMs: 5_000,
};

export class MemoryMesh {
  readonly net = new MemoryNetwork();
  readonly time = this.net.time;
  private readonly all: MemoryPeer[] = [];
  private seed = 1;

  constructor() {
    onTestFinished(async () => {
      // A stop may wait on virtual timers (a slow discovery withdrawal): run time meanwhile.
      const stops = Promise.all(this.all.map((p) => p.node.stop()));
      await this.time.advance(10_000);
      await stops;
    });
  }

  peer(id: string, opts: MemoryPeerOpts = {}): MemoryPeer {
    const host = opts.host ?? this.net.host(id);
    const killSwitch = opts.killSwitch ?? new MemoryKillSwitch();
    const bootId = opts.bootId ?? `${id}-boot`;
    const peer: MemoryPeer = { id, host, killSwitch, peers: [], node: undefined as unknown as MeshNode };
    peer.node = new MeshNode({
      self: { peerId: id, bootId, cluster: 'quantum-bot' },
      listenPort: () => MEMORY_PORT,
      keyring: new Keyring(opts.secrets ?? [SECRET]),
      discoveries: () => [
        ...(opts.alsoDiscover ? [opts.alsoDiscover] : []),
        staticDiscovery(() => peer.peers),
      ],
      killSwitch,
      summary: (): Summary => ({
        peerId: id,
        bootId,
        version: 'test',
        uptime: 1,
        apiPort: MEMORY_PORT,
        killSwitch: killSwitch.get(),
        subsystems: [],
        queues: {},
        links: peer.node.linkStates(),
      }),
      timers: { ...PRODUCTION_TIMERS, ...opts.timers },
      autoReconnect: true,
      logger: opts.logger ?? silentLogger,
      random: seeded(this.seed++),
      clock: host.clock,
      scheduler: host.scheduler,
      transport: host.transport,
      ...opts.node,
    });
    this.all.push(peer);
    return peer;
  }

  /** Peers that all know each other's address (each dials the others). */
  full(ids: string[], opts: MemoryPeerOpts = {}): MemoryPeer[] {
    const peers = ids.map((id) => this.peer(id, opts));
    for (const p of peers) p.peers = peers.filter((q) => q !== p).map((q) => q.host.address);
    return peers;
  }

  async startAll(peers: MemoryPeer[]): Promise<void> {
    await Promise.all(peers.map((p) => p.node.start()));
  }

  /** Runs virtual time until every pair of `peers` is connected both ways. */
  async linked(peers: MemoryPeer[], maxMs = 10_000): Promise<number> {
    return this.time.until(
      () =>
        peers.every((p) =>
          peers.every((q) => q === p || (stateIn(p, q.id) === 'connected' && p.node.linkCount >= 1)),
        ),
      maxMs,
    );
  }
}

export const stateIn = (p: MemoryPeer, id: string) => p.node.peers().find((v) => v.peerId === id)?.state;

/** When each observer first saw a peer `suspect` and `down`, in ms from the pause. */
export type Verdicts = Map<string, { suspect?: number; down?: number }>;

/**
 * Pauses `victim` (SIGSTOP, a cut cable) and runs virtual time until every observer sees it `down`,
 * noting when each first saw it `suspect` and `down`.
 */
export async function pauseAndTimeVerdicts(
  m: MemoryMesh,
  victim: MemoryPeer,
  observers: MemoryPeer[],
): Promise<Verdicts> {
  const stoppedAt = m.time.now;
  victim.host.pause();
  const seen: Verdicts = new Map();
  await m.time.until(() => {
    for (const o of observers) {
      const s = seen.get(o.id) ?? {};
      const state = stateIn(o, victim.id);
      if (state === 'suspect') s.suspect ??= m.time.now - stoppedAt;
      if (state === 'down') s.down ??= m.time.now - stoppedAt;
      seen.set(o.id, s);
    }
    return observers.every((o) => seen.get(o.id)?.down !== undefined);
  }, 10_000);
  return seen;
}
