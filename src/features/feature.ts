/**
 * The one seam a feature (AI tasks, freelance jobs, trading...) plugs in through, so the composition
 * root never grows a branch per feature. A feature is declared once (its name, its schema
 * migrations and a factory); peer.ts applies the migrations, builds it and hands each part to its
 * consumer: the subsystem registrations to the supervisor, the routes to the HTTP app, `status()`
 * to GET /status under the feature's name, `summary()` to the mesh status every peer sends, and
 * `metrics()` to GET /metrics.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Registry } from 'prom-client';
import type { SubsystemRegistration } from '../actors/root.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Queue } from '../queue/types.js';
import type { Db } from '../store/db.js';
import type { NamedMigration } from '../store/migrations.js';

/** What a feature's routes get: the API token, and where an operator finds it (for 401 answers). */
export interface RouteOptions {
  apiToken: string;
  tokenHint: string;
}

/** What a feature may read of the peer it runs in. */
export interface FeatureContext {
  config: Readonly<Config>;
  db: Db;
  /** The durable queue (SQLite in DATA_DIR, or the fleet's PostgreSQL). */
  queue: Queue;
  logger: Logger;
  peerId: string;
  bootId: string;
  /** The peer's autonomous prompt (the guide's): known once every subsystem is registered. */
  prompt(): string;
  /** What each peer linked right now reported in its mesh status (its features' `extra`). */
  linkedSummaries(): { peerId: string; extra: Record<string, unknown> | undefined }[];
  /** Is the kill switch in force now? */
  killSwitchActive(): boolean;
  /** Features built before this one, by name (freelance drafts its proposals through AI). */
  feature<T extends Feature>(name: string): T | undefined;
}

/** The part of the mesh status summary a feature contributes. */
export interface FeatureSummary {
  /** Queue depths by name (`ai.queued`...), shown on every peer's card. */
  queues?: Record<string, number>;
  /** A small JSON object, kept under the feature's name in the summary's `extra`. */
  extra?: unknown;
}

/** A built feature. Every part is optional; a feature that has none of a kind simply omits it. */
export interface Feature {
  readonly name: string;
  /** Subsystems the supervisor runs (restart with backoff, kill switch, operator commands). */
  registrations?: SubsystemRegistration[];
  /** A fastify plugin with the feature's endpoints; it gets the API token for its auth checks. */
  routes?: FastifyPluginAsync<RouteOptions>;
  /** The object GET /status shows under `name`. */
  status?(): unknown;
  summary?(): FeatureSummary;
  /** Registers the feature's metrics (read at scrape time) in the peer's registry. */
  metrics?(registry: Registry): void;
  /** Frees what the factory opened (prepared statements need nothing; timers do). */
  close?(): void;
}

export interface FeatureDefinition {
  name: string;
  /** Named schema steps (`ai/001-usage`), applied once each; a released one is never edited. */
  migrations: readonly NamedMigration[];
  /**
   * PostgreSQL steps for the fleet-wide tables the feature keeps in the shared database
   * (`queue.shared`) when DATABASE_URL is set; applied with the queue's own migrations.
   */
  sharedMigrations?: readonly NamedMigration[];
  create(ctx: FeatureContext): Feature;
}
