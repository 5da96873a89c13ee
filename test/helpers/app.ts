/**
 * A peer's HTTP app for inject() tests, assembled by src/peer.ts's assemblePeer (real PeerActors,
 * real SQLite in a temp dir, a HealthMonitor) but never listening. Everything it starts is stopped when the current test finishes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { onTestFinished } from 'vitest';
import type { SubsystemRegistration, SubsystemStatus } from '../../src/actors/root.js';
import { type Config, testConfig } from '../../src/config.js';
import type { AppDeps } from '../../src/http/app.js';
import { assemblePeer } from '../../src/peer.js';
import type { Db } from '../../src/store/db.js';
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
  const peer = await assemblePeer(config, silentLogger(), {
    ...(options.crashWorker ? { crashWorker: options.crashWorker } : {}),
    ...(options.extraRegistrations ? { extraRegistrations: options.extraRegistrations } : {}),
  });
  cleanups.push(() => peer.close());
  cleanups.push(() => peer.actors.stop());
  cleanups.push(() => peer.app.close());
  const { app, deps, actors, db } = peer;
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
