/**
 * The composition root: the only module that wires store, actors and HTTP together.
 * createPeer(config) -> { start, stop }. start and stop are idempotent; stop is safe before start
 * and during it.
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
import type { Logger } from './logger.js';
import { autonomousPrompt } from './prompt.js';
import { type Db, openDb } from './store/db.js';
import { type Identity, loadApiToken, loadIdentity } from './store/identity.js';
import { KillSwitchStore } from './store/kill-switch.js';

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
  let starting: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  let openSockets = 0;

  /** Starts once: a second call gets the first call's promise, and after stop nothing starts again. */
  function start(): Promise<void> {
    starting ??= stopping ? Promise.resolve() : startOnce();
    return starting;
  }

  async function startOnce(): Promise<void> {
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
    health = new HealthMonitor({ countConnections: () => ({ http: openSockets, mesh: 0 }) });
    actors = new PeerActors({
      registrations: subsystemRegistrations({ config, logger: log, healthMonitor: health }),
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
      mesh: aloneMesh(config),
      workerRespawns: config.internal.workerRespawns,
      ...(config.faultInjection && options.crashWorker ? { crashWorker: options.crashWorker } : {}),
    };
    app = await buildApp(deps);
    app.server.on('connection', (socket) => {
      openSockets++;
      socket.once('close', () => openSockets--);
    });
    await app.listen({ port: config.port, host: config.host });
    actors.start();
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
      // Let a start in progress finish first, or what it opens after this point would outlive the stop.
      await starting?.catch(() => {});
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

/** The mesh as /status shows it until the mesh subsystem replaces this. */
function aloneMesh(config: Readonly<Config>): () => MeshView {
  const reason = config.mesh.secrets.length
    ? 'the mesh subsystem is not part of this build yet: this peer runs alone'
    : 'MESH_SECRET is not set: this peer runs alone and starts no discovery';
  return () => ({ enabled: false, reason, peers: [], reconnectAttempts: 0 });
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
