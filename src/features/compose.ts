/**
 * Builds the features of a peer and presents them to their consumers as one set: peer.ts hands
 * `registrations` to the supervisor, app.ts registers `routes`, GET /status spreads `status()`,
 * the mesh summary takes `summary()`, GET /metrics calls `metrics()`.
 */
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { SubsystemRegistration } from '../actors/root.js';
import { applyNamedMigrations } from '../store/migrations.js';
import type { Feature, FeatureContext, FeatureDefinition } from './feature.js';

export interface FeatureSet {
  readonly features: readonly Feature[];
  get<T extends Feature>(name: string): T | undefined;
  registrations(): SubsystemRegistration[];
  registerRoutes(app: FastifyInstance, apiToken: string, tokenHint: string): Promise<void>;
  /** `{ [feature]: status }` for GET /status. */
  status(): Record<string, unknown>;
  /** The features' part of the mesh status summary. */
  summary(): { queues: Record<string, number>; extra: Record<string, unknown> };
  metrics(registry: Registry): void;
  close(): void;
}

export function buildFeatures(
  definitions: readonly FeatureDefinition[],
  ctx: Omit<FeatureContext, 'feature'>,
): FeatureSet {
  const built = new Map<string, Feature>();
  for (const def of definitions) {
    if (built.has(def.name)) throw new Error(`two features are named ${def.name}`);
    applyNamedMigrations(ctx.db, def.migrations);
    const feature = def.create({
      ...ctx,
      feature: <T extends Feature>(name: string) => built.get(name) as T | undefined,
    });
    built.set(def.name, feature);
  }
  const features = [...built.values()];
  return {
    features,
    get: <T extends Feature>(name: string) => built.get(name) as T | undefined,
    registrations: () => features.flatMap((f) => f.registrations ?? []),
    registerRoutes: async (app, apiToken, tokenHint) => {
      for (const f of features) if (f.routes) await app.register(f.routes, { apiToken, tokenHint });
    },
    status: () => Object.fromEntries(features.flatMap((f) => (f.status ? [[f.name, f.status()]] : []))),
    summary: () => {
      const queues: Record<string, number> = {};
      const extra: Record<string, unknown> = {};
      for (const f of features) {
        const s = f.summary?.();
        if (!s) continue;
        Object.assign(queues, s.queues ?? {});
        if (s.extra !== undefined) extra[f.name] = s.extra;
      }
      return { queues, extra };
    },
    metrics: (registry) => {
      for (const f of features) f.metrics?.(registry);
    },
    close: () => {
      for (const f of features) f.close?.();
    },
  };
}

/** A set without features (HTTP tests that build an app by hand). */
export const NO_FEATURES: FeatureSet = {
  features: [],
  get: () => undefined,
  registrations: () => [],
  registerRoutes: async () => {},
  status: () => ({}),
  summary: () => ({ queues: {}, extra: {} }),
  metrics: () => {},
  close: () => {},
};
