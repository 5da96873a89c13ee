/**
 * The AI-task feature: tasks on the durable queue, the worker with its breaker and spending guard
 * (engine.ts), its subsystem, routes, /status fields, mesh summary and metrics.
 */
import { Gauge, type Registry } from 'prom-client';
import { AiEngine, type Pause } from '../actors/ai/engine.js';
import { AI_MIGRATIONS } from '../actors/ai/migrations.js';
import { openAiProvider, type Provider } from '../actors/ai/provider.js';
import { aiRun } from '../actors/ai/run.js';
import { AI_QUEUE } from '../actors/ai/tasks.js';
import {
  AI_SHARED_MIGRATIONS,
  HOUR_MS,
  hourOf,
  SharedUsageLedger,
  type SpendLedger,
  UsageLedger,
} from '../actors/ai/usage.js';
import { aiRoutes } from '../http/routes/ai.js';
import { QUEUE_ITEM_STATES, type Queue, type QueueDepths } from '../queue/types.js';
import type { Feature, FeatureDefinition } from './feature.js';

export const AI_FEATURE = 'ai';

/** How often the queue depths shown in /status and the mesh summary are refreshed, ms. */
const DEPTHS_REFRESH_MS = 2_000;

export interface AiFeature extends Feature {
  engine: AiEngine;
  usage: SpendLedger;
  queue: Queue;
}

export interface AiFeatureOptions {
  /** Replaces the OpenAI SDK provider (unit tests). */
  provider?: Provider;
}

const emptyDepths = (): QueueDepths =>
  Object.fromEntries(QUEUE_ITEM_STATES.map((s) => [s, 0])) as QueueDepths;

export function aiFeature(options: AiFeatureOptions = {}): FeatureDefinition {
  return {
    name: AI_FEATURE,
    migrations: AI_MIGRATIONS,
    sharedMigrations: AI_SHARED_MIGRATIONS,
    create(ctx): AiFeature {
      const cfg = ctx.config.ai;
      const logger = ctx.logger.child({ component: 'ai' });
      // With a shared PostgreSQL the caps hold for the whole fleet; alone, for this peer.
      const usage: SpendLedger = ctx.queue.shared
        ? new SharedUsageLedger(ctx.queue.shared)
        : new UsageLedger(ctx.db);
      const provider =
        options.provider ??
        (cfg.baseUrl
          ? openAiProvider({ baseUrl: cfg.baseUrl, apiKey: cfg.apiKey, timeoutMs: cfg.timeoutMs })
          : undefined);
      const engine = new AiEngine({
        queue: ctx.queue,
        usage,
        config: cfg,
        provider,
        // The guide's autonomous prompt is what every task runs under unless it brings its own.
        defaultSystem: ctx.prompt,
        owner: ctx.peerId,
        logger,
        defineQueue: ctx.config.aiEnabled,
      });

      // /status and the mesh summary are synchronous; the queue is not: keep the last depths.
      let depths = emptyDepths();
      const refresh = async () => {
        depths = (await ctx.queue.depths())[AI_QUEUE] ?? emptyDepths();
        await usage.refresh();
      };
      const refreshTimer = setInterval(() => refresh().catch(() => {}), DEPTHS_REFRESH_MS);
      refreshTimer.unref();
      void refresh().catch(() => {});

      const spend = () => {
        const u = usage.current();
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
      const pauseView = (p: Pause | null) => p && { kind: p.kind, reason: p.reason, until: p.until };

      return {
        name: AI_FEATURE,
        engine,
        usage,
        queue: ctx.queue,
        registrations: [
          {
            name: AI_FEATURE,
            enabled: ctx.config.aiEnabled,
            operates: true,
            run: aiRun,
            runInput: { engine },
          },
        ],
        routes: aiRoutes({ queue: ctx.queue, engine, maxPromptBytes: cfg.maxPromptBytes }),
        status: () => ({
          state: state(),
          provider: cfg.baseUrl
            ? { configured: true, baseUrl: cfg.baseUrl, model: cfg.model ?? null }
            : { configured: false, message: 'no provider configured (AI_BASE_URL is not set)' },
          paused: pauseView(engine.paused),
          breaker: engine.breakerState,
          concurrency: cfg.concurrency,
          inFlight: engine.inFlightCount,
          tasks: depths,
          spend: spend(),
          usageByHour: usage.history(24),
        }),
        summary: () => ({
          extra: {
            state: state(),
            breaker: engine.breakerState,
            paused: engine.paused?.reason.slice(0, 300) ?? null,
            spend: spend(),
          },
        }),
        metrics: (registry: Registry) => aiMetrics(registry, () => depths, usage, engine),
        close: () => {
          clearInterval(refreshTimer);
          engine.stop();
        },
      };
    },
  };
}

function aiMetrics(
  registry: Registry,
  depths: () => QueueDepths,
  usage: SpendLedger,
  engine: AiEngine,
): void {
  new Gauge({
    name: 'qb_ai_tasks',
    help: 'AI tasks by status',
    labelNames: ['status'],
    registers: [registry],
    collect() {
      const d = depths();
      for (const s of QUEUE_ITEM_STATES) this.set({ status: s }, d[s]);
    },
  });
  new Gauge({
    name: 'qb_ai_hour_requests',
    help: 'Provider calls started in the current clock hour (spending guard)',
    registers: [registry],
    collect() {
      this.set(usage.current().requests);
    },
  });
  new Gauge({
    name: 'qb_ai_hour_tokens',
    help: 'Tokens used in the current clock hour (spending guard)',
    registers: [registry],
    collect() {
      this.set(usage.current().tokens);
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
      const p = engine.paused;
      for (const kind of ['no-provider', 'spend-cap', 'breaker', 'store'])
        this.set({ reason: kind }, p?.kind === kind ? 1 : 0);
    },
  });
}
