/**
 * The lifecycle every subsystem shares, and its supervisor: one machine per subsystem, which runs
 * the subsystem's own `run` actor and restarts it with exponential backoff when it fails.
 *
 *   settle ──▶ active(starting ─READY─▶ running) ──STOP/HALT/RESTART/FAIL──▶ stopping (drain)
 *                                                                               │
 *     settle ◀── (stop, halt, restart) ─────────────────────────────────────────┤
 *     backoff ◀── (a failure) ──────────────────────────────────────────────────┤
 *     failed ◀── (the 10th failure in a row) ───────────────────────────────────┘
 *     backoff ──restartDelay──▶ settle;  failed ──RESTART/START (operator)──▶ settle
 *
 * Errors never escape: a throw in `run` (synchronous, from its `receive` handler, or inside a
 * callback it wrapped with `guard`) and a FAIL it sends back all become a failure here. Every way
 * out of `active` passes through `stopping`, so a subsystem's `drain` (close sockets, give back
 * leases) always finishes before the next `run` starts. `settle` is the one place that decides where
 * a subsystem belongs given what the operator wants (`desired`) and the kill switch.
 *
 * Failure counts and whether the subsystem is live are written to a journal (SQLite) on every
 * change, so the 10-failure limit holds when a subsystem's failure takes the whole worker process
 * down (see store/supervision.ts). Every failure, restart, `failed` and recovery is logged.
 */
import { type AnyActorLogic, assign, fromPromise, raise, sendTo, setup } from 'xstate';
import type { SupervisorConfig } from '../config.js';
import { describeError, QbError } from '../errors.js';
import type { Logger } from '../logger.js';
import { backoffDelay } from './backoff.js';
import { defineRun } from './run.js';

export { defineRun, type RunArgs, type RunEvent } from './run.js';

/** What the operator (or AUTO_START) wants this subsystem to do. */
export type Desired = 'running' | 'stopped';

/** The flat state names /status and /metrics show. */
export type SubsystemStateName =
  | 'starting'
  | 'running'
  | 'stopping'
  | 'stopped'
  | 'backoff'
  | 'failed'
  | 'halted';

export const SUBSYSTEM_STATES: readonly SubsystemStateName[] = [
  'starting',
  'running',
  'stopping',
  'stopped',
  'backoff',
  'failed',
  'halted',
];

export interface SubsystemError {
  code: string;
  message: string;
  at: string;
}

/** What the journal keeps of a subsystem between processes. */
export interface SupervisionRecord {
  /** True from the moment `run` is about to start until it has been stopped. */
  live: boolean;
  consecutiveFailures: number;
  lastError: SubsystemError | null;
}

/** A record as loaded at boot. */
export interface RestoredSupervision extends SupervisionRecord {
  /** The previous process died while this subsystem was live; that death is already counted. */
  diedWhileLive: boolean;
}

/**
 * Where the lifecycle writes its failure count, so it outlives the process (store/supervision.ts).
 * `save` is synchronous on purpose: the record must be on disk before `run` can crash the process.
 */
export interface SupervisionJournal {
  save(name: string, record: SupervisionRecord): void;
}

export interface SubsystemInput {
  name: string;
  /** Does it act on the world (trade, execute jobs, call AI)? Then the kill switch halts it. */
  operates: boolean;
  autoStart: boolean;
  killSwitchActive: boolean;
  policy: SupervisorConfig;
  /** Passed to the subsystem's `run` actor. */
  runInput?: unknown;
  /** ms a `run` actor may take to report READY. */
  startTimeoutMs?: number;
  /** ms `drain` may take before the subsystem counts as stopped anyway. */
  drainTimeoutMs?: number;
  /** Does the subsystem provide a `drain`? Without one, `stopping` is passed through at once. */
  hasDrain?: boolean;
  /** Failures carried over from an earlier process (see SupervisionJournal). */
  restored?: RestoredSupervision;
  journal?: SupervisionJournal;
  logger?: Logger;
  random?: () => number;
  now?: () => number;
}

/** Where `stopping` leads once the drain is done. */
type AfterStop = 'settle' | 'backoff' | 'failed';

export interface SubsystemContext {
  name: string;
  operates: boolean;
  desired: Desired;
  killSwitchActive: boolean;
  /** Failures since the last stable period or operator (re)start, across processes. */
  consecutiveFailures: number;
  /** Automatic restarts since this process started. */
  restarts: number;
  lastError: SubsystemError | null;
  nextDelayMs: number;
  /** Epoch ms of the scheduled restart while in backoff. */
  nextRestartAt: number | null;
  /** Epoch ms of the last state change. */
  since: number;
  afterStop: AfterStop;
  hasDrain: boolean;
  policy: SupervisorConfig;
  runInput: unknown;
  startTimeoutMs: number;
  drainTimeoutMs: number;
  restored: RestoredSupervision | undefined;
  journal: SupervisionJournal | undefined;
  logger: Logger | undefined;
  random: () => number;
  now: () => number;
}

export type SubsystemEvent =
  | { type: 'START' }
  | { type: 'STOP' }
  | { type: 'RESTART' }
  | { type: 'HALT' }
  | { type: 'RESUME' }
  | { type: 'READY' }
  | { type: 'FAIL'; error: unknown }
  | { type: 'INJECT_FAULT' };

export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/** Failure transitions, shared by a thrown error (onError) and a reported one (FAIL). */
const onFailure = {
  target: '#subsystem.stopping',
  actions: ['recordFailure', 'logFailure'],
} as const;

export const subsystemMachine = setup({
  types: {
    context: {} as SubsystemContext,
    events: {} as SubsystemEvent,
    input: {} as SubsystemInput,
  },
  actors: {
    /** The subsystem itself; every subsystem provides its own. */
    run: defineRun<unknown>(({ ready }) => {
      ready();
      return () => {};
    }) as AnyActorLogic,
    /** Awaitable teardown after `run` is stopped (server close, unpublish, lease release). */
    drain: fromPromise<void, unknown>(async () => {}) as AnyActorLogic,
  },
  delays: {
    restartDelay: ({ context }) => context.nextDelayMs,
    stablePeriod: ({ context }) => context.policy.stablePeriodMs,
    startTimeout: ({ context }) => context.startTimeoutMs,
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
  guards: {
    operates: ({ context }) => context.operates,
    heldByKillSwitch: ({ context }) =>
      context.desired === 'running' && context.operates && context.killSwitchActive,
    wantsToRun: ({ context }) => context.desired === 'running',
    /** Failures carried over from an earlier process already reached the limit. */
    exhaustedAtBoot: ({ context }) =>
      context.desired === 'running' && context.consecutiveFailures >= context.policy.maxConsecutiveFailures,
    hasDrain: ({ context }) => context.hasDrain,
    thenBackoff: ({ context }) => context.afterStop === 'backoff',
    thenFailed: ({ context }) => context.afterStop === 'failed',
  },
  actions: {
    recordFailure: assign(({ context, event }) => {
      const error = 'error' in event ? event.error : new Error('unknown failure');
      const consecutiveFailures = context.consecutiveFailures + 1;
      const nextDelayMs = backoffDelay(
        consecutiveFailures,
        { baseMs: context.policy.restartBaseMs, maxMs: context.policy.restartMaxMs },
        context.random,
      );
      return {
        consecutiveFailures,
        lastError: errorAt(error, context),
        nextDelayMs,
        afterStop: (consecutiveFailures >= context.policy.maxConsecutiveFailures
          ? 'failed'
          : 'backoff') as AfterStop,
      };
    }),
    // Error level: failures must reach bot-errors.log, where the README's troubleshooting looks.
    logFailure: ({ context, event }) => {
      const err = 'error' in event ? event.error : undefined;
      const fields = {
        subsystem: context.name,
        err,
        consecutiveFailures: context.consecutiveFailures,
        maxConsecutiveFailures: context.policy.maxConsecutiveFailures,
      };
      if (context.afterStop === 'failed') {
        context.logger?.error(
          fields,
          `subsystem failed ${context.consecutiveFailures} times in a row; it stays failed until an operator restarts it`,
        );
      } else {
        context.logger?.error(
          { ...fields, restartInMs: context.nextDelayMs },
          'subsystem failed; restarting it after a backoff',
        );
      }
    },
    logRestart: ({ context }) =>
      context.logger?.warn(
        { subsystem: context.name, attempt: context.consecutiveFailures + 1, restarts: context.restarts },
        'restarting subsystem after its backoff',
      ),
    logFailed: ({ context }) =>
      context.logger?.error(
        {
          subsystem: context.name,
          consecutiveFailures: context.consecutiveFailures,
          lastError: context.lastError,
        },
        'subsystem is failed: no automatic restart; POST /subsystems/:name/restart starts it again',
      ),
    logRecovered: ({ context }) => {
      if (context.consecutiveFailures > 0) {
        context.logger?.info(
          { subsystem: context.name, consecutiveFailures: context.consecutiveFailures },
          'subsystem recovered: running again',
        );
      }
    },
    logStable: ({ context }) => {
      if (context.consecutiveFailures > 0) {
        context.logger?.info(
          { subsystem: context.name, stablePeriodMs: context.policy.stablePeriodMs },
          'subsystem ran a stable period; its failure count is reset',
        );
      }
    },
    logRestored: ({ context }) => {
      const r = context.restored;
      if (!r?.diedWhileLive) return;
      context.logger?.error(
        { subsystem: context.name, consecutiveFailures: r.consecutiveFailures, lastError: r.lastError },
        'the previous worker process died while this subsystem was live: counted as its failure',
      );
    },
    markChange: assign({ since: ({ context }) => context.now() }),
    persistLive: ({ context }) => persist(context, true),
    persistIdle: ({ context }) => persist(context, false),
    wantRunning: assign({ desired: 'running' as Desired, consecutiveFailures: 0, nextRestartAt: null }),
    wantStopped: assign({ desired: 'stopped' as Desired, nextRestartAt: null }),
    // An operator command while a failure drains overrides the failure's backoff.
    thenSettle: assign({ afterStop: 'settle' as AfterStop }),
    killSwitchOn: assign({ killSwitchActive: true }),
    killSwitchOff: assign({ killSwitchActive: false }),
    forgiveFailures: assign({ consecutiveFailures: 0 }),
    scheduleRestart: assign({ nextRestartAt: ({ context }) => context.now() + context.nextDelayMs }),
    countRestart: assign({ restarts: ({ context }) => context.restarts + 1, nextRestartAt: null }),
    noRestartScheduled: assign({ nextRestartAt: null }),
    recordDrainError: assign({
      lastError: ({ event, context }) => errorAt((event as { error?: unknown }).error, context),
    }),
    logDrainError: ({ context, event }) =>
      context.logger?.error(
        { subsystem: context.name, err: (event as { error?: unknown }).error },
        'subsystem teardown (drain) failed; it counts as stopped',
      ),
    logDrainTimeout: ({ context }) =>
      context.logger?.error(
        { subsystem: context.name, drainTimeoutMs: context.drainTimeoutMs },
        'subsystem teardown (drain) did not finish in time; it counts as stopped',
      ),
  },
}).createMachine({
  id: 'subsystem',
  context: ({ input }) => ({
    name: input.name,
    operates: input.operates,
    desired: input.autoStart ? 'running' : 'stopped',
    killSwitchActive: input.killSwitchActive,
    consecutiveFailures: input.restored?.consecutiveFailures ?? 0,
    restarts: 0,
    lastError: input.restored?.lastError ?? null,
    nextDelayMs: 0,
    nextRestartAt: null,
    since: (input.now ?? Date.now)(),
    afterStop: 'settle',
    hasDrain: input.hasDrain ?? false,
    policy: input.policy,
    runInput: input.runInput,
    startTimeoutMs: input.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    drainTimeoutMs: input.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    restored: input.restored,
    journal: input.journal,
    logger: input.logger,
    random: input.random ?? Math.random,
    now: input.now ?? Date.now,
  }),
  entry: 'logRestored',
  initial: 'settle',
  // Defaults for every state; states that must react differently override them.
  on: {
    START: { actions: 'wantRunning' },
    RESTART: { actions: 'wantRunning' },
    STOP: { actions: 'wantStopped' },
    HALT: { actions: 'killSwitchOn' },
    RESUME: { actions: 'killSwitchOff' },
  },
  states: {
    settle: {
      always: [
        { guard: 'heldByKillSwitch', target: 'halted' },
        { guard: 'exhaustedAtBoot', target: 'failed' },
        { guard: 'wantsToRun', target: 'active' },
        { target: 'stopped' },
      ],
    },
    active: {
      // Journaled as live in the same synchronous step that starts `run` (XState runs the write just
      // before it, or at the very first start just after it), so before any callback of the
      // subsystem can run: if one takes the process down, the next boot knows.
      entry: ['markChange', 'persistLive'],
      invoke: {
        id: 'run',
        src: 'run',
        input: ({ context }: { context: SubsystemContext }) => context.runInput,
        onError: onFailure,
      },
      on: {
        FAIL: onFailure,
        STOP: { target: 'stopping', actions: ['wantStopped', 'thenSettle'] },
        RESTART: { target: 'stopping', actions: ['wantRunning', 'thenSettle'] },
        HALT: [
          { guard: 'operates', target: 'stopping', actions: ['killSwitchOn', 'thenSettle'] },
          { actions: 'killSwitchOn' },
        ],
        INJECT_FAULT: { actions: sendTo('run', { type: 'INJECT_FAULT' }) },
      },
      initial: 'starting',
      states: {
        starting: {
          on: { READY: { target: 'running', actions: 'logRecovered' } },
          after: {
            startTimeout: {
              actions: raise({
                type: 'FAIL',
                error: new QbError('QB_ERR_SUBSYSTEM_START_TIMEOUT', 'did not report ready in time'),
              }),
            },
          },
        },
        running: {
          entry: 'markChange',
          after: {
            stablePeriod: { actions: ['logStable', 'forgiveFailures', 'persistLive'] },
          },
        },
      },
    },
    /**
     * The run actor is already stopped (its cleanup ran on the way out of `active`); here the
     * subsystem's `drain` finishes its teardown before anything else may start it again.
     */
    stopping: {
      initial: 'routing',
      states: {
        routing: {
          always: [{ guard: 'hasDrain', target: 'draining' }, { target: '#subsystem.stopping.done' }],
        },
        draining: {
          entry: ['markChange', 'persistIdle'],
          invoke: {
            src: 'drain',
            input: ({ context }: { context: SubsystemContext }) => context.runInput,
            onDone: 'done',
            // A teardown that fails still ends the stop; the run actor is already gone.
            onError: { target: 'done', actions: ['recordDrainError', 'logDrainError'] },
          },
          after: { drainTimeout: { target: 'done', actions: 'logDrainTimeout' } },
        },
        done: {
          always: [
            { guard: 'thenFailed', target: '#subsystem.failed' },
            { guard: 'thenBackoff', target: '#subsystem.backoff' },
            { target: '#subsystem.settle' },
          ],
        },
      },
      on: {
        START: { actions: ['wantRunning', 'thenSettle'] },
        RESTART: { actions: ['wantRunning', 'thenSettle'] },
        STOP: { actions: ['wantStopped', 'thenSettle'] },
        // An operating subsystem must not come back from a backoff under the kill switch.
        HALT: [{ guard: 'operates', actions: ['killSwitchOn', 'thenSettle'] }, { actions: 'killSwitchOn' }],
      },
      exit: assign({ afterStop: 'settle' as AfterStop }),
    },
    backoff: {
      entry: ['markChange', 'scheduleRestart', 'persistIdle'],
      after: { restartDelay: { target: 'settle', actions: ['countRestart', 'logRestart'] } },
      on: {
        START: { target: 'settle', actions: 'wantRunning' },
        RESTART: { target: 'settle', actions: 'wantRunning' },
        STOP: { target: 'settle', actions: 'wantStopped' },
        // The kill switch does not concern a subsystem that does not operate: it waits out its delay.
        HALT: [{ guard: 'operates', target: 'settle', actions: 'killSwitchOn' }, { actions: 'killSwitchOn' }],
      },
    },
    failed: {
      // recordFailure computed a delay, but no restart is scheduled from here.
      entry: ['markChange', 'noRestartScheduled', 'persistIdle', 'logFailed'],
      on: {
        START: { target: 'settle', actions: 'wantRunning' },
        RESTART: { target: 'settle', actions: 'wantRunning' },
        STOP: { target: 'settle', actions: 'wantStopped' },
      },
    },
    stopped: {
      entry: ['markChange', 'persistIdle'],
      on: {
        START: { target: 'settle', actions: 'wantRunning' },
        RESTART: { target: 'settle', actions: 'wantRunning' },
      },
    },
    halted: {
      entry: ['markChange', 'persistIdle'],
      on: {
        RESUME: { target: 'settle', actions: 'killSwitchOff' },
        STOP: { target: 'settle', actions: 'wantStopped' },
      },
    },
  },
});

function errorAt(error: unknown, context: SubsystemContext): SubsystemError {
  return { ...describeError(error), at: new Date(context.now()).toISOString() };
}

function persist(context: SubsystemContext, live: boolean): void {
  context.journal?.save(context.name, {
    live,
    consecutiveFailures: context.consecutiveFailures,
    lastError: context.lastError,
  });
}

/** Maps a machine snapshot to the flat name the API shows. */
export function stateName(value: unknown): SubsystemStateName {
  if (typeof value === 'object' && value !== null) {
    if ('active' in value) return (value as { active: 'starting' | 'running' }).active;
    if ('stopping' in value) return 'stopping';
  }
  if (value === 'settle') return 'starting';
  return value as SubsystemStateName;
}
