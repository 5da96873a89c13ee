/**
 * The composition root: the only module that wires store, actors and HTTP together.
 * createPeer(config) -> { start, stop }. start is safe to await once; stop is idempotent and safe
 * before start.
 */
import { accessSync, constants, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { HealthMonitor } from './actors/health.js';
import { subsystemRegistrations } from './actors/registry.js';
import { PeerActors } from './actors/root.js';
import type { Config } from './config.js';
import { QbError } from './errors.js';
import { type AppDeps, buildApp, type MeshView } from './http/app.js';
import { buildFleet } from './http/fleet.js';
import { LIVE_PATH, LiveFeed } from './http/live.js';
import { routeUpgrades } from './http/upgrade.js';
import type { Logger } from './logger.js';
import { Keyring } from './mesh/auth.js';
import { createDiscoveries } from './mesh/discovery/index.js';
import { MeshNode } from './mesh/node.js';
import { MESH_PATH, PROTOCOL_VERSION, type Summary } from './mesh/protocol.js';
import { autonomousPrompt } from './prompt.js';
import { type Db, openDb } from './store/db.js';
import { type Identity, loadApiToken, loadIdentity } from './store/identity.js';
import { KillSwitchStore } from './store/kill-switch.js';
import { VERSION } from './version.js';

export interface PeerOptions {
  /** Crashes the process (fault injection); the worker passes one that throws uncaught. */
  crashWorker?: () => void;
}

export interface Peer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The bound port (useful with PORT=0); undefined before start. */
  port(): number | undefined;
  identity(): Identity | undefined;
}

/** Milliseconds the actors get to drain on stop; the process must exit within 10 s of SIGTERM. */
const ACTOR_STOP_TIMEOUT_MS = 5_000;

export function createPeer(config: Readonly<Config>, logger: Logger, options: PeerOptions = {}): Peer {
  let db: Db | undefined;
  let app: FastifyInstance | undefined;
  let actors: PeerActors | undefined;
  let health: HealthMonitor | undefined;
  let identity: Identity | undefined;
  let stopping: Promise<void> | undefined;
  let live: LiveFeed | undefined;
  let openSockets = 0;

  async function start(): Promise<void> {
    ensureWritable(config.dataDir, 'DATA_DIR');
    ensureWritable(config.logDir, 'LOG_DIR');
    identity = loadIdentity(config.dataDir, config.peerId);
    const token = loadApiToken(config.dataDir, config.apiToken);
    const log = logger.child({ peerId: identity.peerId });
    if (token.generated)
      log.warn({ file: token.file }, 'generated an API token (mode 0600); read it from this file');
    else if (token.file) log.info({ file: token.file }, 'API token loaded from file');

    db = openDb(config.dataDir);
    const killSwitch = new KillSwitchStore(db);
    health = new HealthMonitor({
      countConnections: () => ({ http: openSockets, mesh: meshNode?.linkCount ?? 0 }),
    });
    const self = identity;
    const meshNode = config.mesh.secrets.length
      ? new MeshNode({
          self: { peerId: self.peerId, bootId: self.bootId, cluster: config.mesh.cluster },
          listenPort: () => port() ?? config.port,
          keyring: new Keyring(config.mesh.secrets),
          discoveries: createDiscoveries({
            kinds: config.mesh.discovery,
            peers: config.mesh.peers,
            dnsName: config.mesh.dnsName,
            port: config.port,
            peerId: self.peerId,
            cluster: config.mesh.cluster,
            protocolVersion: PROTOCOL_VERSION,
            mdnsInterface: config.mesh.mdnsInterface,
          }),
          killSwitch,
          summary: () => summary(),
          timers: {
            heartbeatIntervalMs: config.mesh.heartbeatIntervalMs,
            syncIntervalMs: config.mesh.syncIntervalMs,
            reconnectIntervalMs: config.reconnectIntervalMs,
          },
          autoReconnect: config.autoReconnect,
          logger: log.child({ component: 'mesh' }),
        })
      : undefined;
    if (!meshNode) log.warn('MESH_SECRET is not set: this peer runs alone and starts no discovery');
    actors = new PeerActors({
      registrations: subsystemRegistrations({ config, logger: log, healthMonitor: health, meshNode }),
      autoStart: config.autoStart,
      killSwitchActive: killSwitch.get().active,
      policy: config.supervisor,
      logger: log.child({ component: 'supervisor' }),
    });
    // The kill switch acts locally first and at once; nothing waits for the network.
    killSwitch.onChange((state) => actors?.setKillSwitch(state.active));
    if (killSwitch.get().active)
      log.warn({ killSwitch: killSwitch.get() }, 'starting halted: the kill switch is active');

    const prompt = autonomousPrompt(config);
    const deps: AppDeps = {
      config,
      logger: log,
      identity,
      apiToken: token.token,
      actors,
      killSwitch,
      health,
      prompt,
      mesh: meshView(config, identity, meshNode),
      workerRespawns: config.internal.workerRespawns,
      ...(config.faultInjection && options.crashWorker ? { crashWorker: options.crashWorker } : {}),
    };
    const summary = (): Summary => {
      const ks = killSwitch.get();
      return {
        peerId: self.peerId,
        bootId: self.bootId,
        version: VERSION,
        uptime: Math.round(process.uptime()),
        apiPort: port() ?? config.port,
        killSwitch: {
          active: ks.active,
          reason: ks.reason,
          since: ks.since,
          origin: ks.origin,
          epoch: ks.epoch,
        },
        subsystems: (actors?.status() ?? []).map((s) => ({
          name: s.name,
          state: s.state,
          restarts: s.restarts,
        })),
        queues: {},
        links: (meshNode?.peers() ?? []).flatMap((p) =>
          p.peerId ? [{ peerId: p.peerId, state: p.state }] : [],
        ),
      };
    };
    app = await buildApp(deps);
    const liveFeed = new LiveFeed({
      fleet: () =>
        buildFleet(
          {
            peerId: self.peerId,
            address: `${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port() ?? config.port}`,
            version: VERSION,
            uptime: Math.round(process.uptime()),
            subsystems: actors?.status() ?? [],
            killSwitch: killSwitch.get(),
            summary: summary(),
            now: Date.now(),
          },
          meshNode?.peers() ?? [],
        ),
      killSwitch: () => killSwitch.get(),
      onKillSwitchChange: (listener) => killSwitch.onChange(listener),
      tokenRequired: config.dashboardTokenRequired,
      apiToken: token.token,
      logger: log.child({ component: 'live' }),
    });
    live = liveFeed;
    routeUpgrades(app.server, {
      [LIVE_PATH]: (req, socket, head) => liveFeed.handleUpgrade(req, socket, head),
      [MESH_PATH]: (req, socket, head) => {
        if (meshNode) meshNode.handleUpgrade(req, socket, head);
        else socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      },
    });
    app.server.on('connection', (socket) => {
      openSockets++;
      socket.once('close', () => openSockets--);
    });
    await app.listen({ port: config.port, host: config.host });
    actors.start();
    liveFeed.start();
    log.info({ prompt }, 'autonomous prompt');
    log.info(
      {
        port: port(),
        host: config.host,
        bootId: identity.bootId,
        subsystems: actors.status().map((s) => s.name),
      },
      'peer started',
    );
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      live?.stop();
      await actors?.stop(ACTOR_STOP_TIMEOUT_MS);
      await app?.close();
      health?.close();
      db?.close();
    })();
    return stopping;
  }

  function port(): number | undefined {
    const address = app?.server.address() as AddressInfo | null | undefined;
    return address?.port;
  }

  return { start, stop, port, identity: () => identity };
}

/** The mesh as /status and GET /mesh show it. */
function meshView(config: Readonly<Config>, identity: Identity, node: MeshNode | undefined): () => MeshView {
  const self = { peerId: identity.peerId, bootId: identity.bootId, cluster: config.mesh.cluster };
  if (!node) {
    const reason = 'MESH_SECRET is not set: this peer runs alone and starts no discovery';
    return () => ({ enabled: false, reason, self, peers: [], reconnectAttempts: 0, counters: undefined });
  }
  return () => ({
    enabled: true,
    self: { ...self, running: node.isRunning, discovery: config.mesh.discovery },
    peers: node.peers(),
    reconnectAttempts: node.totalReconnectAttempts,
    counters: node.counters,
  });
}

function ensureWritable(dir: string, name: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw new QbError(
      'QB_ERR_DATA_DIR',
      `${name} ${dir} cannot be created or written: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}
