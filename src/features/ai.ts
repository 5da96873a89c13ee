/**
 * The AI-task feature: durable tasks (store.ts), the worker with breaker and spending guard
 * (engine.ts), its subsystem, routes, /status fields, mesh summary and metrics.
 */
import { Gauge, type Registry } from 'prom-client';
import { AiEngine } from '../actors/ai/engine.js';
import { AI_MIGRATIONS } from '../actors/ai/migrations.js';
import { openAiProvider, type Provider } from '../actors/ai/provider.js';
import { aiRun } from '../actors/ai/run.js';
import { HOUR_MS, hourOf, TASK_STATUSES, TaskStore } from '../actors/ai/store.js';
import { aiRoutes } from '../http/routes/ai.js';
import { autonomousPrompt } from '../prompt.js';
import type { Feature, FeatureDefinition } from './feature.js';

export const AI_FEATURE = 'ai';

export interface AiFeature extends Feature {
  store: TaskStore;
  engine: AiEngine;
}

export interface AiFeatureOptions {
  /** Replaces the OpenAI SDK provider (unit tests). */
  provider?: Provider;
}

export function aiFeature(options: AiFeatureOptions = {}): FeatureDefinition {
  return {
    name: AI_FEATURE,
    migrations: AI_MIGRATIONS,
    create(ctx): AiFeature {
      const cfg = ctx.config.ai;
      const store = new TaskStore(ctx.db);
      const logger = ctx.logger.child({ component: 'ai' });
      const provider =
        options.provider ??
        (cfg.baseUrl ? openAiProvider({ baseUrl: cfg.baseUrl, apiKey: cfg.apiKey, timeoutMs: cfg.timeoutMs }) : undefined);
      const engine = new AiEngine({
        store,
        config: cfg,
        provider,
        // The guide's autonomous prompt is what every task runs under unless it brings its own.
        defaultSystem: autonomousPrompt(ctx.config),
        owner: `${ctx.peerId}:${ctx.bootId}`,
        logger,
      });

      const spend = () => {
        const u = store.usage();
        return {
          hour: new Date(hourOf(Date.now()) * HOUR_MS).toISOString(),
          requests: u.requests,
          maxRequests: cfg.maxRequestsPerHour,
          tokens: u.tokens,
          maxTokens: cfg.maxTokensPerHour,
        };
      };
      const state = () => {
        if (!ctx.config.aiEnabled) return 'disabled';
        if (!engine.isRunning) return ctx.killSwitchActive() ? 'halted' : 'stopped';
        return engine.paused ? 'paused' : 'running';
      };

      return {
        name: AI_FEATURE,
        store,
        engine,
        registrations: [
          { name: AI_FEATURE, enabled: ctx.config.aiEnabled, operates: true, run: aiRun, runInput: { engine } },
        ],
        routes: aiRoutes({ store, engine, maxPromptBytes: cfg.maxPromptBytes }),
        status: () => ({
          state: state(),
          provider: cfg.baseUrl
            ? { configured: true, baseUrl: cfg.baseUrl, model: cfg.model ?? null }
            : { configured: false, message: 'no provider configured (AI_BASE_URL is not set)' },
          paused: engine.paused,
          breaker: engine.breakerState,
          concurrency: cfg.concurrency,
          inFlight: engine.inFlightCount,
          tasks: store.counts(),
          spend: spend(),
          usageByHour: store.usageHistory(24),
        }),
        summary: () => {
          const counts = store.counts();
          return {
            queues: { 'ai.queued': counts.queued, 'ai.running': counts.running, 'ai.dead': counts.dead },
            extra: {
              state: state(),
              breaker: engine.breakerState,
              paused: engine.paused?.reason.slice(0, 300) ?? null,
              spend: spend(),
            },
          };
        },
        metrics: (registry: Registry) => aiMetrics(registry, store, engine),
        close: () => engine.stop(),
      };
    },
  };
}

function aiMetrics(registry: Registry, store: TaskStore, engine: AiEngine): void {
  new Gauge({
    name: 'qb_ai_tasks',
    help: 'AI tasks by status',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const counts = store.counts();
      for (const s of TASK_STATUSES) this.set({ status: s }, counts[s]);
    },
  });
  new Gauge({
    name: 'qb_ai_hour_requests',
    help: 'Provider calls started in the current clock hour (spending guard)',
    registers: [registry],
    collect() {
      this.set(store.usage().requests);
    },
  });
  new Gauge({
    name: 'qb_ai_hour_tokens',
    help: 'Tokens used in the current clock hour (spending guard)',
    registers: [registry],
    collect() {
      this.set(store.usage().tokens);
    },
  });
  new Gauge({
    name: 'qb_ai_breaker_open',
    help: '1 while the AI circuit breaker keeps calls away from a failing provider',
    registers: [registry],
    collect() {
      this.set(engine.breakerState === 'open' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'qb_ai_paused',
    help: '1 while AI tasks are paused, by reason',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      const p = engine.paused;
      for (const kind of ['no-provider', 'spend-cap', 'breaker']) this.set({ reason: kind }, p?.kind === kind ? 1 : 0);
    },
  });
}
