/**
 * The lifecycle every subsystem shares, and its supervisor: one machine per subsystem, which runs
 * the subsystem's own `run` actor and restarts it with exponential backoff when it fails.
 *
 *   settle ──▶ active(starting ─READY─▶ running) ──STOP/HALT──▶ stopping ──▶ settle
 *                 │ FAIL / throw                                               │
 *                 ▼                                                            ├─▶ stopped
 *              backoff ──restartDelay──▶ active                                ├─▶ halted (kill switch)
 *                 │ 10th failure in a row                                      └─▶ active
 *                 ▼
 *              failed ──RESTART/START (operator)──▶ settle
 *
 * Errors never escape: a throw in `run` (synchronous, or from its `receive` handler) and a FAIL it
 * sends back both become a failure here. `settle` is the one place that decides where a subsystem
 * belongs given what the operator wants (`desired`) and the kill switch.
 */
import { type AnyActorLogic, assign, fromCallback, fromPromise, raise, sendTo, setup } from 'xstate';
import type { SupervisorConfig } from '../config.js';
import { describeError, QbError } from '../errors.js';
import { backoffDelay } from './backoff.js';

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
  random?: () => number;
  now?: () => number;
}

export interface SubsystemContext {
  name: string;
  operates: boolean;
  desired: Desired;
  killSwitchActive: boolean;
  /** Failures since the last stable period or operator (re)start. */
  consecutiveFailures: number;
  /** Automatic restarts since this process started. */
  restarts: number;
  lastError: SubsystemError | null;
  nextDelayMs: number;
  /** Epoch ms of the scheduled restart while in backoff. */
  nextRestartAt: number | null;
  /** Epoch ms of the last state change. */
  since: number;
  policy: SupervisorConfig;
  runInput: unknown;
  startTimeoutMs: number;
  drainTimeoutMs: number;
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

/** Events a `run` actor receives from its lifecycle machine. */
export type RunEvent = { type: 'INJECT_FAULT' };

export const DEFAULT_START_TIMEOUT_MS = 30_000;
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

export interface RunArgs<I> {
  input: I;
  /** Report that the subsystem is up. */
  ready(): void;
  /** Report an asynchronous failure (a callback or promise that failed). */
  fail(error: unknown): void;
}

/**
 * Builds a subsystem's `run` actor from a start function that returns its cleanup. Every subsystem
 * gets fault injection for free: INJECT_FAULT throws inside the actor, exactly like a real bug.
 */
export function defineRun<I>(start: (args: RunArgs<I>) => () => void) {
  return fromCallback<RunEvent, I>(({ input, sendBack, receive }) => {
    let cleanup: (() => void) | undefined;
    const dispose = () => {
      const c = cleanup;
      cleanup = undefined;
      c?.();
    };
    receive((event) => {
      if (event.type === 'INJECT_FAULT') {
        // XState calls a callback actor's cleanup only when it is stopped, never after it threw:
        // clean up first, or the subsystem's timers and sockets outlive it.
        dispose();
        throw new QbError('QB_ERR_INJECTED_FAULT', 'fault injected on request');
      }
    });
    cleanup = start({
      input,
      ready: () => sendBack({ type: 'READY' }),
      fail: (error) => sendBack({ type: 'FAIL', error }),
    });
    return dispose;
  });
}

/** Failure transitions, shared by a thrown error (onError) and a reported one (FAIL). */
const onFailure = [
  { guard: 'exhausted', target: '#subsystem.failed', actions: 'recordFailure' },
  { target: '#subsystem.backoff', actions: 'recordFailure' },
] as const;

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
    /** Awaitable teardown after `run` is stopped (server close, unpublish). */
    drain: fromPromise<void, unknown>(async () => {}) as AnyActorLogic,
  },
  delays: {
    restartDelay: ({ context }) => context.nextDelayMs,
    stablePeriod: ({ context }) => context.policy.stablePeriodMs,
    startTimeout: ({ context }) => context.startTimeoutMs,
    drainTimeout: ({ context }) => context.drainTimeoutMs,
  },
  guards: {
    exhausted: ({ context }) => context.consecutiveFailures + 1 >= context.policy.maxConsecutiveFailures,
    operates: ({ context }) => context.operates,
    heldByKillSwitch: ({ context }) =>
      context.desired === 'running' && context.operates && context.killSwitchActive,
    wantsToRun: ({ context }) => context.desired === 'running',
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
      const now = context.now();
      return {
        consecutiveFailures,
        lastError: { ...describeError(error), at: new Date(now).toISOString() },
        nextDelayMs,
        nextRestartAt: now + nextDelayMs,
      };
    }),
    markChange: assign({ since: ({ context }) => context.now() }),
    wantRunning: assign({ desired: 'running' as Desired, consecutiveFailures: 0, nextRestartAt: null }),
    wantStopped: assign({ desired: 'stopped' as Desired, nextRestartAt: null }),
    killSwitchOn: assign({ killSwitchActive: true }),
    killSwitchOff: assign({ killSwitchActive: false }),
    forgiveFailures: assign({ consecutiveFailures: 0 }),
    countRestart: assign({ restarts: ({ context }) => context.restarts + 1, nextRestartAt: null }),
    noRestartScheduled: assign({ nextRestartAt: null }),
  },
}).createMachine({
  id: 'subsystem',
  context: ({ input }) => ({
    name: input.name,
    operates: input.operates,
    desired: input.autoStart ? 'running' : 'stopped',
    killSwitchActive: input.killSwitchActive,
    consecutiveFailures: 0,
    restarts: 0,
    lastError: null,
    nextDelayMs: 0,
    nextRestartAt: null,
    since: (input.now ?? Date.now)(),
    policy: input.policy,
    runInput: input.runInput,
    startTimeoutMs: input.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS,
    drainTimeoutMs: input.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    random: input.random ?? Math.random,
    now: input.now ?? Date.now,
  }),
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
        { guard: 'wantsToRun', target: 'active' },
        { target: 'stopped' },
      ],
    },
    active: {
      entry: 'markChange',
      invoke: {
        id: 'run',
        src: 'run',
        input: ({ context }: { context: SubsystemContext }) => context.runInput,
        onError: onFailure,
      },
      on: {
        FAIL: onFailure,
        STOP: { target: 'stopping', actions: 'wantStopped' },
        RESTART: { target: 'active', reenter: true, actions: 'wantRunning' },
        HALT: [
          { guard: 'operates', target: 'stopping', actions: 'killSwitchOn' },
          { actions: 'killSwitchOn' },
        ],
        INJECT_FAULT: { actions: sendTo('run', { type: 'INJECT_FAULT' }) },
      },
      initial: 'starting',
      states: {
        starting: {
          on: { READY: 'running' },
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
          after: { stablePeriod: { actions: 'forgiveFailures' } },
        },
      },
    },
    backoff: {
      entry: 'markChange',
      after: { restartDelay: { target: 'active', actions: 'countRestart' } },
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
      entry: ['markChange', 'noRestartScheduled'],
      on: {
        START: { target: 'settle', actions: 'wantRunning' },
        RESTART: { target: 'settle', actions: 'wantRunning' },
        STOP: { target: 'settle', actions: 'wantStopped' },
      },
    },
    stopping: {
      entry: 'markChange',
      invoke: {
        src: 'drain',
        input: ({ context }: { context: SubsystemContext }) => context.runInput,
        onDone: 'settle',
        // A teardown that fails still ends in a stopped subsystem; the run actor is already gone.
        onError: {
          target: 'settle',
          actions: assign({ lastError: ({ event, context }) => errorAt(event.error, context) }),
        },
      },
      after: { drainTimeout: 'settle' },
    },
    stopped: {
      entry: 'markChange',
      on: {
        START: { target: 'settle', actions: 'wantRunning' },
        RESTART: { target: 'settle', actions: 'wantRunning' },
      },
    },
    halted: {
      entry: 'markChange',
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

/** Maps a machine snapshot to the flat name the API shows. */
export function stateName(value: unknown): SubsystemStateName {
  if (typeof value === 'object' && value !== null && 'active' in value) {
    return (value as { active: 'starting' | 'running' }).active;
  }
  if (value === 'settle') return 'starting';
  return value as SubsystemStateName;
}
