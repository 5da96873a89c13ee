// MeshNodes in one process, each on its own real HTTP server on 127.0.0.1 (port 0), linked by
// static discovery: shared by the node tests.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import { routeUpgrades } from '../../src/http/upgrade.js';
import { createLogger, type Logger } from '../../src/logger.js';
import { Keyring } from '../../src/mesh/auth.js';
import type { Discovery } from '../../src/mesh/discovery/types.js';
import { type KillSwitchPort, MeshNode, type MeshNodeOptions } from '../../src/mesh/node.js';
import { MESH_PATH, type Summary } from '../../src/mesh/protocol.js';
import { type KillSwitchState, shouldAdopt } from '../../src/store/kill-switch.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';

export const SECRET = 'a shared secret of enough length';
export const silentLogger = createLogger({ level: 'silent' });

/** An in-memory kill switch with the store's semantics. */
export class MemoryKillSwitch implements KillSwitchPort {
  state: KillSwitchState = KILL_SWITCH_NEVER_SET;
  readonly listeners = new Set<(s: KillSwitchState) => void>();
  get() {
    return this.state;
  }
  set(active: boolean, reason: string, origin: string) {
    this.state = { active, reason, origin, since: new Date().toISOString(), epoch: this.state.epoch + 1 };
    for (const l of this.listeners) l(this.state);
  }
  adopt(remote: KillSwitchState) {
    if (!shouldAdopt(remote, this.state)) return false;
    this.state = remote;
    for (const l of this.listeners) l(remote);
    return true;
  }
  onChange(l: (s: KillSwitchState) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
}

export interface TestPeer {
  id: string;
  node: MeshNode;
  server: Server;
  port: number;
  killSwitch: MemoryKillSwitch;
  peers: string[];
}

export async function listen(): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

export function staticDiscovery(list: () => string[]): Discovery {
  return {
    source: 'static',
    async start(ctx) {
      for (const address of list()) ctx.onSighting({ address, source: 'static' });
    },
    async stop() {},
  };
}

export interface PeerOpts {
  secrets?: string[];
  cluster?: string;
  alsoDiscover?: Discovery;
  bootId?: string;
  /** Changes the summary this peer sends (fields of a hostile or buggy peer). */
  summary?: (base: Summary) => Summary;
  killSwitch?: MemoryKillSwitch;
  logger?: Logger;
  node?: Partial<MeshNodeOptions>;
}

export async function makePeer(id: string, opts: PeerOpts = {}): Promise<TestPeer> {
  const { server, port } = await listen();
  const killSwitch = opts.killSwitch ?? new MemoryKillSwitch();
  const bootId = opts.bootId ?? `${id}-boot`;
  const peer: TestPeer = { id, server, port, killSwitch, peers: [], node: undefined as unknown as MeshNode };
  peer.node = new MeshNode({
    self: { peerId: id, bootId, cluster: opts.cluster ?? 'quantum-bot' },
    listenPort: () => port,
    keyring: new Keyring(opts.secrets ?? [SECRET]),
    discoveries: () => [...(opts.alsoDiscover ? [opts.alsoDiscover] : []), staticDiscovery(() => peer.peers)],
    killSwitch,
    summary: (): Summary => {
      const base: Summary = {
        peerId: id,
        bootId,
        version: 'test',
        uptime: 1,
        apiPort: port,
        killSwitch: killSwitch.get(),
        subsystems: [],
        queues: {},
        links: peer.node.linkStates(),
      };
      return opts.summary ? opts.summary(base) : base;
    },
    timers: { heartbeatIntervalMs: 200, syncIntervalMs: 500, reconnectIntervalMs: 1000 },
    autoReconnect: true,
    logger: opts.logger ?? silentLogger,
    ...opts.node,
  });
  routeUpgrades(server, { [MESH_PATH]: (req, socket, head) => peer.node.handleUpgrade(req, socket, head) });
  onTestFinished(async () => {
    await peer.node.stop();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return peer;
}

export const stateOf = (p: TestPeer, id: string) => p.node.peers().find((v) => v.peerId === id)?.state;
