/**
 * The fastify app of a peer. It never listens by itself: peer.ts listens, tests use `inject()`.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerFactory,
  LogController,
} from 'fastify';
import type { HealthMonitor } from '../actors/health-monitor.js';
import type { PeerActors } from '../actors/root.js';
import type { Config } from '../config.js';
import { QbError } from '../errors.js';
import type { FeatureSet } from '../features/compose.js';
import type { Logger } from '../logger.js';
import type { MeshCounters } from '../mesh/node.js';
import type { MeshPeerView } from '../mesh/view.js';
import type { Queue } from '../queue/types.js';
import type { Identity } from '../store/identity.js';
import type { KillSwitchStore } from '../store/kill-switch.js';
import { bearerToken, tokenMatches } from './auth.js';
import { installErrorHandling } from './errors.js';
import { type BrowserPolicy, browserPolicy, hostAllowed } from './origin.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { faultRoutes } from './routes/faults.js';
import { healthRoutes } from './routes/health.js';
import { killSwitchRoutes } from './routes/kill-switch.js';
import { meshRoutes } from './routes/mesh.js';
import { metricsRoutes } from './routes/metrics.js';
import { queueRoutes } from './routes/queues.js';
import { statusRoutes } from './routes/status.js';
import { subsystemRoutes } from './routes/subsystems.js';
import { tokenHintRoutes } from './routes/token-hint.js';

/** What the mesh shows of itself (GET /mesh, /status.mesh). */
export interface MeshView {
  /** False when this peer runs alone (no MESH_SECRET). */
  enabled: boolean;
  /** Why it runs alone, when it does. */
  reason?: string;
  self: { peerId: string; bootId: string; cluster: string } & Record<string, unknown>;
  peers: MeshPeerView[];
  reconnectAttempts: number;
  counters: MeshCounters | undefined;
}

export interface AppDeps {
  config: Readonly<Config>;
  logger: Logger;
  identity: Identity;
  apiToken: string;
  /** Where the token can be read (never the token): see auth.ts tokenHint. */
  tokenHint: string;
  actors: PeerActors;
  killSwitch: KillSwitchStore;
  health: HealthMonitor;
  /** Feature routes, /status fields and metrics (AI, freelance...); see features/feature.ts. */
  features?: FeatureSet;
  /** The autonomous-mode prompt logged at start. */
  prompt: string;
  mesh: () => MeshView;
  /** How often the process supervisor has respawned this worker. */
  workerRespawns: number;
  /** Which process to signal: the supervisor (null without one) and the process running the peer. */
  pids: { supervisor: number | null; worker: number };
  /** The durable queue (SQLite, or PostgreSQL with DATABASE_URL); absent in apps built without one. */
  queue?: Queue;
  /** Crashes the worker process; present only with FAULT_INJECTION=true. */
  crashWorker?: () => void;
}

/**
 * Who may read a route, as its `config.access` says: `fleet` (the fleet summary: /status, /mesh)
 * needs the API token only with DASHBOARD_TOKEN_REQUIRED; `private` (an account's or a task's
 * contents: balances, positions, prompts and results) always needs it; unset: open (health,
 * metrics, the dashboard's files) or guarded by the route itself (every mutating route).
 */
export type ReadAccess = 'fleet' | 'private';

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: ReadAccess;
  }
}

/** Request bodies above this are refused with 413. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface BuildAppOptions {
  /** A server that already listens (the boot gate); without it the caller listens with `app.listen`. */
  serverFactory?: FastifyServerFactory;
}

export async function buildApp(deps: AppDeps, options: BuildAppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(options.serverFactory ? { serverFactory: options.serverFactory } : {}),
    loggerInstance: deps.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Health checks arrive every few seconds; per-request lines would drown the log.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
    // Without a timeout a half-open keep-alive socket can delay shutdown forever.
    forceCloseConnections: true,
    // Fastify's 10 s default made a peer exit at start on an overloaded machine (50 peers on 2
    // cores: loading the dashboard's plugin took longer); a real hang still ends the start.
    pluginTimeout: 120_000,
  });
  installErrorHandling(app);
  installBrowserGuards(app, deps, policyOf(deps.config));
  await app.register(healthRoutes, { deps });
  await app.register(statusRoutes, { deps });
  await app.register(killSwitchRoutes, { deps });
  await app.register(subsystemRoutes, { deps });
  await app.register(meshRoutes, { deps });
  await app.register(metricsRoutes, { deps });
  await app.register(queueRoutes, { deps });
  await app.register(faultRoutes, { deps });
  await app.register(tokenHintRoutes, { deps });
  await app.register(dashboardRoutes);
  await deps.features?.registerRoutes(app, deps.apiToken, deps.tokenHint);
  return app;
}

/** The Host/Origin allow-lists of a configuration (also used for WebSocket upgrades). */
export function policyOf(config: Readonly<Config>): BrowserPolicy {
  return browserPolicy({
    allowedHosts: config.http?.allowedHosts,
    allowedOrigins: config.http?.allowedOrigins ?? [],
    boundHost: config.host,
  });
}

/** Host check on every request, then the read access of the route (see ReadAccess). */
function installBrowserGuards(app: FastifyInstance, deps: AppDeps, policy: BrowserPolicy): void {
  app.addHook('onRequest', async (request) => {
    if (!hostAllowed(policy, request.headers.host)) {
      request.log.warn({ host: request.headers.host, ip: request.ip }, 'refused: Host not allowed');
      throw new QbError(
        'QB_ERR_HOST_NOT_ALLOWED',
        `Host "${String(request.headers.host).slice(0, 100)}" is not allowed (HTTP_ALLOWED_HOSTS)`,
      );
    }
    const access = request.routeOptions.config?.access;
    if (!access || (access === 'fleet' && !deps.config.dashboardTokenRequired)) return;
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !tokenMatches(presented, deps.apiToken)) {
      throw new QbError(
        'QB_ERR_UNAUTHORIZED',
        access === 'fleet'
          ? 'DASHBOARD_TOKEN_REQUIRED: reading the fleet needs Authorization: Bearer <API_TOKEN>'
          : 'reading this needs Authorization: Bearer <API_TOKEN>',
      );
    }
  });
}
