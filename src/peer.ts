/**
 * The composition root: the only module that wires store, mesh, actors and HTTP together.
 * assemblePeer builds everything without listening or starting (HTTP inject tests use it);
 * createPeer(config) -> { start, stop } adds the listening socket and the lifecycle. start and stop
 * are idempotent; stop is safe before start and during it.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { HealthMonitor } from './actors/health-monitor.js';
import { subsystemRegistrations } from './actors/registry.js';
import { PeerActors, type SubsystemRegistration } from './actors/root.js';
import type { Config } from './config.js';
import { buildFeatures, type FeatureSet } from './features/compose.js';
import type { FeatureDefinition } from './features/feature.js';
import { defaultFeatures } from './features/index.js';
import { type AppDeps, buildApp, type MeshView, policyOf } from './http/app.js';
import { tokenHint } from './http/auth.js';
import type { BootGate } from './http/boot-gate.js';
import { buildFleet } from './http/fleet.js';
import { LIVE_PATH, LiveFeed } from './http/live.js';
import { upgradeRouter } from './http/upgrade.js';
import type { Logger } from './logger.js';
import type { MeshNode } from './mesh/node.js';
import type { Summary } from './mesh/protocol.js';
import { autonomousPrompt } from './prompt.js';
import { openQueue, type Queue } from './queue/index.js';
import { QueueSummary } from './queue/summary.js';
import { type PreparedDataDir, prepareDataDir } from './store/data-dir.js';
import { acquireDataDirLock, type DataDirLock } from './store/data-dir-lock.js';
import { type Db, openDb } from './store/db.js';
import { ensureWritableDir } from './store/dirs.js';
import type { Identity } from './store/identity.js';
import { IntentStore } from './store/intents.js';
import { KillSwitchStore, killSwitchView } from './store/kill-switch.js';
import { SupervisionStore } from './store/supervision.js';
import { VERSION } from './version.js';

export interface PeerOptions {
  /** Crashes the process (fault injection); the worker passes one that throws uncaught. */
  crashWorker?: () => void;
  /** Subsystems beyond the registry's (tests). */
  extraRegistrations?: SubsystemRegistration[];
  /**
   * A server already listening on config.port that answers /health while the rest loads (the
   * worker's); the app takes it over when ready. Without it, start() listens itself.
   */
  gate?: BootGate;
  /** DATA_DIR already prepared (the worker does it before its port listens). */
  prepared?: PreparedDataDir;
  /** Replaces the build's features (tests: a fake AI provider). */
  features?: FeatureDefinition[];
}

/** Everything a peer is made of, built but not started. */
export interface PeerAssembly {
  identity: Identity;
  log: Logger;
  db: Db;
  killSwitch: KillSwitchStore;
  health: HealthMonitor;
  meshNode: MeshNode | undefined;
  actors: PeerActors;
  features: FeatureSet;
  queue: Queue;
  liveFeed: LiveFeed;
  deps: AppDeps;
  app: FastifyInstance;
  /** The bound port once listening. */
  port(): number | undefined;
  /** Frees what assembly opened (queue, db, monitors); stop actors and app first. */
  close(): Promise<void>;
}

export async function assemblePeer(
  config: Readonly<Config>,
  logger: Logger,
  options: PeerOptions = {},
): Promise<PeerAssembly> {
  const { identity, token } = options.prepared ?? prepareDataDir(config);
  const log = logger.child({ peerId: identity.peerId });
  if (token.generated)
    log.warn({ file: token.file }, 'generated an API token (mode 0600); read it from this file');
  else if (token.file) log.info({ file: token.file }, 'API token loaded from file');

  const db = openDb(config.dataDir);
  // SQLite in DATA_DIR (its own connection, synchronous=FULL), or the fleet's PostgreSQL.
  const definitions = options.features ?? defaultFeatures();
  const queue = await openQueue(config, {
    log: log.child({ component: 'queue' }),
    migrations: definitions.flatMap((d) => d.sharedMigrations ?? []),
  });
  const queueSummary = new QueueSummary(queue);
  const killSwitch = new KillSwitchStore(db);
  let app: FastifyInstance | undefined;
  let openSockets = 0;
  const gate = options.gate;
  let boundPort: number | undefined;
  // Cached once bound: server.address() is a syscall, and the fleet view asks several times a second.
  const port = () => {
    if (!app?.server.listening) return undefined;
    boundPort ??= (app.server.address() as AddressInfo).port;
    return boundPort;
  };
  const listenPort = () => port() ?? config.port;
  let meshNode: MeshNode | undefined;
  const health = gate?.health ?? new HealthMonitor();
  health.countConnectionsWith(() => ({
    http: gate ? gate.openSockets : openSockets,
    mesh: meshNode?.linkCount ?? 0,
  }));

  const features = buildFeatures(definitions, {
    config,
    db,
    queue,
    logger: log,
    peerId: identity.peerId,
    bootId: identity.bootId,
    prompt: () => prompt,
    linkedSummaries: () =>
      (meshNode?.peers() ?? []).flatMap((p) =>
        p.state === 'connected' && p.peerId && p.status
          ? [{ peerId: p.peerId, extra: p.status.extra as Record<string, unknown> | undefined }]
          : [],
      ),
    killSwitchActive: () => killSwitch.get().active,
  });
  /** The autonomous prompt, once the registrations are known (below). */
  let prompt = '';

  let actors: PeerActors | undefined;
  const summary = (): Summary => {
    const fromFeatures = features.summary();
    return {
      peerId: identity.peerId,
      bootId: identity.bootId,
      version: VERSION,
      uptime: Math.round(process.uptime()),
      apiPort: listenPort(),
      killSwitch: killSwitchView(killSwitch.get()),
      subsystems: (actors?.status() ?? []).map((s) => ({
        name: s.name,
        state: s.state,
        restarts: s.restarts,
      })),
      // Every queue's backlog, plus any figures a feature adds beside its queues.
      queues: { ...queueSummary.current(), ...fromFeatures.queues },
      extra: fromFeatures.extra,
      links: meshNode?.linkStates() ?? [],
    };
  };

  // The mesh (its protocol schemas alone are ~700 modules of TypeBox) is loaded only when used.
  const mesh = config.mesh.secrets.length ? await loadMesh() : undefined;
  meshNode = mesh?.create(config, identity, log, killSwitch, listenPort, summary);
  if (!meshNode) log.warn('MESH_SECRET is not set: this peer runs alone and starts no discovery');

  const registrations = [
    ...subsystemRegistrations({ config, logger: log, healthMonitor: health, meshNode }),
    ...features.registrations(),
    ...(options.extraRegistrations ?? []),
  ];
  prompt = autonomousPrompt(config, registrations);
  actors = new PeerActors({
    registrations,
    autoStart: config.autoStart,
    intents: new IntentStore(db),
    supervision: new SupervisionStore(db),
    killSwitchActive: killSwitch.get().active,
    policy: config.supervisor,
    logger: log.child({ component: 'supervisor' }),
  });
  const peerActors = actors;
  // The kill switch acts locally at once; nothing waits for the network. Once the store has
  // committed a change, nothing new is placed or claimed (every operation asks the store first);
  // the subsystems' teardown (cancelling orders, pausing queues: a few ms of CPU) runs as a
  // microtask, before any other event is handled, but after the mesh has passed the change on: with
  // 50 peers on 2 cores, every peer's teardown used to delay the next peer's adoption.
  killSwitch.onChange((state) =>
    queueMicrotask(() => {
      try {
        peerActors.setKillSwitch(state.active);
      } catch (err) {
        log.error({ err }, 'kill switch: the subsystems could not be told');
      }
    }),
  );
  if (killSwitch.get().active)
    log.warn({ killSwitch: killSwitch.get() }, 'starting halted: the kill switch is active');

  const deps: AppDeps = {
    config,
    logger: log,
    identity,
    apiToken: token.token,
    tokenHint: tokenHint(token.file, config.internal.tokenHint),
    actors,
    killSwitch,
    health,
    features,
    prompt,
    mesh: meshView(config, identity, meshNode),
    workerRespawns: config.internal.workerRespawns,
    pids: { supervisor: config.internal.isWorker ? process.ppid : null, worker: process.pid },
    queue,
    ...(config.faultInjection && options.crashWorker ? { crashWorker: options.crashWorker } : {}),
  };
  app = await buildApp(deps, gate ? { serverFactory: gate.serverFactory } : {});
  // The gate has counted from its first connection; a server of our own starts counting now.
  if (!gate) {
    app.server.on('connection', (socket) => {
      openSockets++;
      socket.once('close', () => openSockets--);
    });
  }

  const node = meshNode;
  const liveFeed = new LiveFeed({
    fleet: ({ links }) =>
      buildFleet(
        {
          peerId: identity.peerId,
          address: `${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${listenPort()}`,
          version: VERSION,
          uptime: Math.round(process.uptime()),
          subsystems: peerActors.status(),
          killSwitch: killSwitch.get(),
          summary: summary(),
          now: Date.now(),
        },
        node?.peers() ?? [],
        { links },
      ),
    killSwitch: () => killSwitch.get(),
    onKillSwitchChange: (listener) => killSwitch.onChange(listener),
    tokenRequired: config.dashboardTokenRequired,
    apiToken: token.token,
    logger: log.child({ component: 'live' }),
  });
  // Without a mesh, /mesh is an unknown path: the router answers 404.
  // Host and Origin are checked on every upgrade but the mesh's, which peers dial by service name
  // and which authenticates by HMAC.
  const upgrades = upgradeRouter(
    {
      [LIVE_PATH]: (req, socket, head) => liveFeed.handleUpgrade(req, socket, head),
      ...(node && mesh ? { [mesh.path]: node.handleUpgrade.bind(node) } : {}),
    },
    { policy: policyOf(config), exempt: mesh ? [mesh.path] : [] },
  );
  // Behind the gate, upgrades wait with it: a listener of our own would see them twice.
  if (gate) gate.upgradesTo(upgrades);
  else app.server.on('upgrade', upgrades);

  return {
    identity,
    log,
    db,
    killSwitch,
    health,
    meshNode,
    actors,
    features,
    queue,
    liveFeed,
    deps,
    app,
    port,
    close: async () => {
      features.close();
      health.close();
      await queue.close();
      db.close();
    },
  };
}

/** The mesh's modules, imported on first use. */
async function loadMesh() {
  const [
    { Keyring },
    { createDiscoveries },
    { MeshNode },
    { MESH_PATH, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION },
  ] = await Promise.all([
    import('./mesh/auth.js'),
    import('./mesh/discovery/index.js'),
    import('./mesh/node.js'),
    import('./mesh/protocol.js'),
  ]);

  function create(
    config: Readonly<Config>,
    identity: Identity,
    log: Logger,
    killSwitch: KillSwitchStore,
    listenPort: () => number,
    summary: () => Summary,
  ): MeshNode {
    return new MeshNode({
      self: { peerId: identity.peerId, bootId: identity.bootId, cluster: config.mesh.cluster },
      listenPort,
      keyring: new Keyring(config.mesh.secrets),
      // Built at each mesh start: mDNS must announce the port actually bound (PORT=0 in tests).
      discoveries: () =>
        createDiscoveries({
          discovery: config.mesh.discovery,
          peers: config.mesh.peers,
          ...(config.mesh.dnsName ? { dnsName: config.mesh.dnsName } : {}),
          ...(config.mesh.mdnsInterface ? { mdnsInterface: config.mesh.mdnsInterface } : {}),
          port: listenPort(),
          peerId: identity.peerId,
          cluster: config.mesh.cluster,
          protocolVersion: PROTOCOL_VERSION,
          protocolVersionMin: MIN_PROTOCOL_VERSION,
        }),
      killSwitch,
      summary,
      timers: {
        heartbeatIntervalMs: config.mesh.heartbeatIntervalMs,
        syncIntervalMs: config.mesh.syncIntervalMs,
        reconnectIntervalMs: config.reconnectIntervalMs,
      },
      autoReconnect: config.autoReconnect,
      logger: log.child({ component: 'mesh' }),
    });
  }

  return { create, path: MESH_PATH };
}

export interface Peer {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The bound port (useful with PORT=0); undefined before start. */
  port(): number | undefined;
  identity(): Identity | undefined;
}

/** How long a worker left by a killed supervisor may take to stop and free DATA_DIR (its stop budget). */
const ORPHAN_STOP_WAIT_MS = 10_000;

/** Milliseconds the actors get to drain on stop; the process must exit within 10 s of SIGTERM. */
const ACTOR_STOP_TIMEOUT_MS = 5_000;

export function createPeer(config: Readonly<Config>, logger: Logger, options: PeerOptions = {}): Peer {
  let peer: PeerAssembly | undefined;
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let dirLock: DataDirLock | undefined;

  /** Starts once: a second call gets the first call's promise, and after stop nothing starts again. */
  function start(): Promise<void> {
    starting ??= stopping ? Promise.resolve() : startOnce();
    return starting;
  }

  async function startOnce(): Promise<void> {
    // One process per DATA_DIR: taken before anything in the folder is read; stop() releases it.
    ensureWritableDir(config.dataDir, 'DATA_DIR');
    dirLock = await acquireDataDirLock(
      config.dataDir,
      { pid: process.pid, ...(config.internal.isWorker ? { supervisorPid: process.ppid } : {}) },
      { orphanWaitMs: ORPHAN_STOP_WAIT_MS },
    );
    peer = await assemblePeer(config, logger, options);
    if (options.gate) {
      await peer.app.ready();
      peer.actors.start();
      peer.liveFeed.start();
      // The requests the gate held are served once the subsystems had a turn to report ready, as a
      // request right after a plain listen would find them.
      await new Promise((resolve) => setImmediate(resolve));
      options.gate.open();
    } else {
      await peer.app.listen({ port: config.port, host: config.host });
      peer.actors.start();
      peer.liveFeed.start();
    }
    peer.log.info({ prompt: peer.deps.prompt }, 'autonomous prompt');
    peer.log.info(
      {
        port: peer.port(),
        host: config.host,
        bootId: peer.identity.bootId,
        subsystems: peer.actors.status().map((s) => s.name),
      },
      'peer started',
    );
  }

  function stop(): Promise<void> {
    stopping ??= (async () => {
      // Let a start in progress finish first, or what it opens after this point would outlive the stop.
      await starting?.catch(() => {});
      if (peer) {
        peer.liveFeed.stop();
        await peer.actors.stop(ACTOR_STOP_TIMEOUT_MS);
        await peer.app.close();
        // fastify leaves alone a server it did not listen itself.
        await options.gate?.close();
        await peer.close();
      }
      dirLock?.release();
    })();
    return stopping;
  }

  return { start, stop, port: () => peer?.port(), identity: () => peer?.identity };
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
