/**
 * The freelance feature: job intake (API and feeds), matching, proposals drafted by AI tasks,
 * approval and webhook delivery; its subsystem, routes, /status fields, summary and metrics.
 */
import { Gauge, type Registry } from 'prom-client';
import { DeliveryWorker } from '../actors/freelance/delivery.js';
import {
  type ExecutionCounter,
  SharedExecutionCounter,
  SqliteExecutionCounter,
} from '../actors/freelance/executions.js';
import { FeedPoller } from '../actors/freelance/feeds/poller.js';
import { FeedStore } from '../actors/freelance/feeds/store.js';
import { importLocalJobs } from '../actors/freelance/import-local.js';
import { JOB_STATUSES, type JobStore, SqliteJobStore } from '../actors/freelance/jobs.js';
import { FREELANCE_MIGRATIONS } from '../actors/freelance/migrations.js';
import { deliveryQueue, FreelancePipeline } from '../actors/freelance/pipeline.js';
import { freelanceRun } from '../actors/freelance/run.js';
import { FREELANCE_SHARED_MIGRATIONS, SharedJobStore } from '../actors/freelance/shared-jobs.js';
import { freelanceRoutes } from '../http/routes/freelance.js';
import { AI_FEATURE, type AiFeature } from './ai.js';
import type { Feature, FeatureDefinition } from './feature.js';

export const FREELANCE_FEATURE = 'freelance';

export interface FreelanceFeature extends Feature {
  jobs: JobStore;
  pipeline: FreelancePipeline;
  delivery: DeliveryWorker;
  poller: FeedPoller;
}

export function freelanceFeature(): FeatureDefinition {
  return {
    name: FREELANCE_FEATURE,
    migrations: FREELANCE_MIGRATIONS,
    sharedMigrations: FREELANCE_SHARED_MIGRATIONS,
    create(ctx): FreelanceFeature {
      const cfg = ctx.config.freelance;
      const logger = ctx.logger.child({ component: 'freelance' });
      const ai = ctx.feature<AiFeature>(AI_FEATURE);
      // With a shared PostgreSQL every peer sees every job and the execution cap holds fleet-wide;
      // alone, jobs and the cap are this peer's (SQLite).
      const shared = ctx.queue.shared;
      const jobs: JobStore = shared ? new SharedJobStore(shared) : new SqliteJobStore(ctx.db);
      const executions: ExecutionCounter = shared
        ? new SharedExecutionCounter(shared)
        : new SqliteExecutionCounter(ctx.db);
      const queueName = deliveryQueue(ctx.peerId, shared !== undefined);
      // /status, the summary and /metrics are synchronous: keep the shared figures fresh.
      let imported = !shared;
      const refresh = async () => {
        try {
          // Once per start, when the shared database first answers: this peer's SQLite jobs join the fleet's.
          if (shared && !imported) {
            const copied = await importLocalJobs(ctx.db, shared);
            imported = true;
            if (copied > 0)
              logger.info({ copied }, 'freelance jobs of this peer copied into the shared database');
          }
          await Promise.all([jobs.refresh(), executions.refresh()]);
        } catch {
          // Unreachable now: /status keeps the last figures; the next round tries again.
        }
      };
      const refreshTimer = shared ? setInterval(refresh, 2_000) : undefined;
      refreshTimer?.unref();
      if (shared) void refresh();
      const delivery = new DeliveryWorker({
        queue: ctx.queue,
        jobs,
        executions,
        queueName,
        webhookUrl: cfg.webhookUrl,
        webhookSecret: cfg.webhookSecret,
        maxAttempts: cfg.webhookMaxAttempts,
        maxExecutionsPerHour: cfg.maxExecutionsPerHour,
        owner: ctx.peerId,
        logger,
        defineQueue: ctx.config.freelanceEnabled,
      });
      const pipeline = new FreelancePipeline({
        jobs,
        queue: ctx.queue,
        rules: { keywords: cfg.keywords, excludeWords: cfg.excludeWords, minBudget: cfg.minBudget },
        autoExecute: cfg.autoExecute,
        deliveryQueue: queueName,
        wakeAi: () => ai?.engine.wake(),
        wakeDelivery: () => delivery.wake(),
        logger,
      });
      const poller = new FeedPoller({
        feeds: cfg.feeds,
        store: new FeedStore(ctx.db),
        intervalMs: cfg.pollIntervalMs,
        timeoutMs: cfg.feedTimeoutMs,
        // A failed intake (the shared job store unreachable) fails the poll: the feed is retried.
        intake: (item, url) => pipeline.intakeFeedItem(item, url),
        logger,
      });

      const state = () => {
        if (!ctx.config.freelanceEnabled) return 'disabled';
        return ctx.killSwitchActive() ? 'halted' : 'enabled';
      };
      const feedsView = () =>
        poller.states().map((f) => ({
          url: f.url,
          state: f.failing ? 'failing' : f.lastOkAt ? 'ok' : 'pending',
          failures: f.failures,
          lastError: f.lastError,
          lastOkAt: f.lastOkAt ? new Date(f.lastOkAt).toISOString() : null,
          nextPollAt: new Date(f.nextPollAt).toISOString(),
          itemsSeen: f.itemsSeen,
        }));

      return {
        name: FREELANCE_FEATURE,
        jobs,
        pipeline,
        delivery,
        poller,
        registrations: [
          {
            name: FREELANCE_FEATURE,
            enabled: ctx.config.freelanceEnabled,
            operates: true,
            run: freelanceRun,
            runInput: {
              pipeline,
              poller,
              delivery,
              onAiSettled: (listener: Parameters<NonNullable<AiFeature['engine']>['onSettled']>[0]) =>
                ai ? ai.engine.onSettled(listener) : () => {},
              logger,
            },
          },
        ],
        routes: freelanceRoutes({ jobs, pipeline, maxJobBytes: cfg.maxJobBytes }),
        status: () => ({
          state: state(),
          autoExecute: cfg.autoExecute,
          jobs: jobs.counts(),
          feeds: feedsView(),
          delivery: {
            webhookConfigured: Boolean(cfg.webhookUrl),
            paused: delivery.paused,
            executionsThisHour: delivery.executionsThisHour(),
            maxExecutionsPerHour: cfg.maxExecutionsPerHour,
          },
          rules: { keywords: cfg.keywords, excludeWords: cfg.excludeWords, minBudget: cfg.minBudget ?? null },
        }),
        summary: () => {
          const counts = jobs.counts();
          return {
            queues: {
              'freelance.awaiting': counts['awaiting-approval'],
              'freelance.approved': counts.approved,
            },
            extra: {
              awaitingApproval: counts['awaiting-approval'],
              failingFeeds: poller.states().filter((f) => f.failing).length,
              deliveryPaused: delivery.paused?.slice(0, 200) ?? null,
            },
          };
        },
        metrics: (registry: Registry) => {
          new Gauge({
            name: 'qb_freelance_jobs',
            help: 'Freelance jobs by status',
            labelNames: ['status'],
            registers: [registry],
            collect() {
              const counts = jobs.counts();
              for (const s of JOB_STATUSES) this.set({ status: s }, counts[s]);
            },
          });
          new Gauge({
            name: 'qb_freelance_feeds_failing',
            help: 'Feeds whose last poll failed',
            registers: [registry],
            collect() {
              this.set(poller.states().filter((f) => f.failing).length);
            },
          });
        },
        close: () => {
          clearInterval(refreshTimer);
          poller.stop();
          delivery.stop();
        },
      };
    },
  };
}
