/**
 * A peer's HTTP app for inject() tests, assembled as src/peer.ts assembles it (real PeerActors with
 * the registry's subsystems, a real KillSwitchStore on SQLite in a temp dir, a HealthMonitor), but
 * never listening. Everything it starts is stopped when the current test finishes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { onTestFinished } from 'vitest';
import { HealthMonitor } from '../../src/actors/health.js';
import { subsystemRegistrations } from '../../src/actors/registry.js';
import { PeerActors, type SubsystemRegistration, type SubsystemStatus } from '../../src/actors/root.js';
import { type Config, testConfig } from '../../src/config.js';
import { type AppDeps, buildApp } from '../../src/http/app.js';
import { autonomousPrompt } from '../../src/prompt.js';
import { type Db, openDb } from '../../src/store/db.js';
import { loadApiToken, loadIdentity } from '../../src/store/identity.js';
import { KillSwitchStore } from '../../src/store/kill-switch.js';
import { silentLogger } from './logger.js';

export const TEST_TOKEN = 'test-token-0123456789abcdef';

export interface TestAppOptions {
  /** Environment on top of testConfig's preset (API_TOKEN is TEST_TOKEN unless set here). */
  env?: Record<string, string>;
  /** Subsystems registered after the registry's own. */
  extraRegistrations?: SubsystemRegistration[];
  /** Present as AppDeps.crashWorker (fault injection). */
  crashWorker?: () => void;
}

export interface TestApp {
  app: FastifyInstance;
  deps: AppDeps;
  config: Readonly<Config>;
  db: Db;
  dataDir: string;
  /** inject() with the bearer token. */
  authed(options: InjectOptions): Promise<LightMyRequestResponse>;
  subsystem(name: string): SubsystemStatus;
}

export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dataDir = mkdtempSync(join(tmpdir(), 'qb-http-'));
  const cleanups: Array<() => unknown> = [() => rmSync(dataDir, { recursive: true, force: true })];
  // One cleanup, in reverse order of creation, so the temp dir goes last.
  onTestFinished(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const config = testConfig(dataDir, { API_TOKEN: TEST_TOKEN, ...options.env });
  const logger = silentLogger();
  const identity = loadIdentity(config.dataDir, config.peerId);
  const token = loadApiToken(config.dataDir, config.apiToken);
  const db = openDb(config.dataDir);
  cleanups.push(() => db.close());
  const killSwitch = new KillSwitchStore(db);
  const health = new HealthMonitor({ countConnections: () => ({ http: 0, mesh: 0 }) });
  cleanups.push(() => health.close());
  const actors = new PeerActors({
    registrations: [
      ...subsystemRegistrations({ config, logger, healthMonitor: health }),
      ...(options.extraRegistrations ?? []),
    ],
    autoStart: config.autoStart,
    killSwitchActive: killSwitch.get().active,
    policy: config.supervisor,
    logger,
  });
  cleanups.push(() => actors.stop());
  killSwitch.onChange((state) => actors.setKillSwitch(state.active));

  const deps: AppDeps = {
    config,
    logger,
    identity,
    apiToken: token.token,
    actors,
    killSwitch,
    health,
    prompt: autonomousPrompt(config),
    mesh: () => ({ enabled: false, reason: 'MESH_SECRET is not set', peers: [], reconnectAttempts: 0 }),
    workerRespawns: 0,
    ...(options.crashWorker ? { crashWorker: options.crashWorker } : {}),
  };
  const app = await buildApp(deps);
  cleanups.push(() => app.close());
  actors.start();

  return {
    app,
    deps,
    config,
    db,
    dataDir,
    authed: (o) =>
      app.inject({ ...o, headers: { ...(o.headers ?? {}), authorization: `Bearer ${TEST_TOKEN}` } }),
    subsystem: (name) => {
      const s = actors.status().find((x) => x.name === name);
      if (!s) throw new Error(`no subsystem ${name}`);
      return s;
    },
  };
}
