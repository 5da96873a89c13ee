/**
 * The freelance subsystem as the supervisor sees it: running means feeds are polled, drafted
 * proposals move jobs on, and approved jobs are delivered. The kill switch stops all three at once
 * (an in-flight delivery is aborted and its item retried later); nothing stored is lost.
 */
import type { Logger } from '../../logger.js';
import type { AiTask } from '../ai/tasks.js';
import { defineRun } from '../subsystem.js';
import type { DeliveryWorker } from './delivery.js';
import type { FeedPoller } from './feeds/poller.js';
import type { FreelancePipeline } from './pipeline.js';

/** How often stalled steps are repaired (a crash between a state change and its enqueue), ms. */
const RECONCILE_MS = 5_000;

export interface FreelanceRunInput {
  pipeline: FreelancePipeline;
  poller: FeedPoller;
  delivery: DeliveryWorker;
  /** Subscribes to settled AI tasks; returns the unsubscribe. */
  onAiSettled: (listener: (task: AiTask) => void) => () => void;
  logger: Logger;
}

export const freelanceRun = defineRun<FreelanceRunInput>(({ input, ready }) => {
  const { pipeline, poller, delivery, logger } = input;
  const unsubscribe = input.onAiSettled(
    (task) =>
      void pipeline
        .onTaskSettled(task)
        .catch((err) => logger.warn({ err }, 'freelance job not moved on; reconcile retries')),
  );
  const reconcile = () =>
    pipeline.reconcile().catch((err) => logger.error({ err }, 'freelance reconcile failed'));
  void reconcile();
  const timer = setInterval(reconcile, RECONCILE_MS);
  poller.start();
  delivery.start();
  ready();
  return () => {
    clearInterval(timer);
    unsubscribe();
    poller.stop();
    delivery.stop();
  };
});
