/**
 * The root actor of a peer: spawns one lifecycle machine per enabled subsystem, forwards operator
 * commands and kill-switch changes to them, and observes every error so none can reach the process
 * (XState re-throws an error nobody observes). A lifecycle machine that itself crashes, which only a
 * bug in it (or a journal that cannot write) can cause, is logged and spawned again after a backoff
 * that grows with each crash in a row, so a machine that crashes at once is never respawned in a
 * hot loop.
 */
import {
  type Actor,
  type AnyActorLogic,
  type AnyActorRef,
  createActor,
  enqueueActions,
  type SnapshotFrom,
  setup,
  stopChild,
} from 'xstate';
import type { SupervisorConfig } from '../config.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import { backoffDelay } from './backoff.js';
import { watchSubsystemCrashes } from './blame.js';
import {
  type RestoredSupervision,
  type SubsystemContext,
  type SubsystemError,
  type SubsystemStateName,
  type SupervisionJournal,
  stateName,
  subsystemMachine,
} from './subsystem.js';

/** How a subsystem plugs in; see registry.ts. */
export interface SubsystemRegistration {
  name: string;
  /** False when configuration turns it off (e.g. BOT_ENABLED=false): it is listed, never started. */
  enabled: boolean;
  /** Acts on the world, so the kill switch halts it. */
  operates: boolean;
  /**
   * One phrase for the start-up message (`prompt` in /status): what it does while enabled
   * ("trading paper on sim (BTC/USDT)"), or why it is off. Without it the name stands alone.
   */
  describe?: string;
  run: AnyActorLogic;
  drain?: AnyActorLogic;
  runInput?: unknown;
}

export type SubsystemCommand = 'start' | 'stop' | 'restart';

export interface SubsystemStatus {
  name: string;
  enabled: boolean;
  state: SubsystemStateName | 'disabled';
  operates: boolean;
  desired: 'running' | 'stopped';
  restarts: number;
  consecutiveFailures: number;
  lastError: SubsystemError | null;
  /** ISO time of the last state change. */
  since: string | null;
  /** ISO time of the scheduled restart while in backoff. */
  nextRestartAt: string | null;
}

/** Persists operator commands so they outlive the process; see store/intents.ts. */
export interface IntentPort {
  get(name: string): 'running' | 'stopped' | undefined;
  set(name: string, desired: 'running' | 'stopped'): void;
}

/** Keeps failure counts across processes; see store/supervision.ts. */
export interface SupervisionPort extends SupervisionJournal {
  /** What an earlier process (or an earlier lifecycle machine of this one) left for `name`. */
  load(name: string): RestoredSupervision | undefined;
  /** Pins the coming death of the process on `name` (synchronously: the process is about to exit). */
  blame?(name: string, error: unknown): void;
}

interface RootInput {
  registrations: SubsystemRegistration[];
  autoStart: boolean;
  /** Without it, operator commands last as long as the process. */
  intents?: IntentPort;
  /** Without it, failure counts last as long as the process. */
  supervision?: SupervisionPort;
  killSwitchActive: boolean;
  policy: SupervisorConfig;
  logger: Logger;
  random?: () => number;
  now?: () => number;
}

/** A lifecycle machine that crashed, while it waits to be spawned again. */
interface LifecycleCrash {
  /** Crashes in a row: a machine that ran a stable period since its last respawn starts over. */
  count: number;
  error: SubsystemError;
  /** Epoch ms of the respawn; null once respawned. */
  respawnAt: number | null;
  /** Epoch ms of the last respawn. */
  respawnedAt: number | null;
}

interface RootContext extends RootInput {
  crashes: Record<string, LifecycleCrash>;
  /** Set by STOP_ALL: a crashed machine is no longer respawned. */
  stoppingAll: boolean;
}

type RootEvent =
  | { type: 'COMMAND'; name: string; command: SubsystemCommand }
  | { type: 'RESPAWN'; name: string }
  | { type: 'KILL_SWITCH'; active: boolean }
  | { type: 'INJECT_FAULT'; name: string }
  | { type: 'STOP_ALL' };

const COMMAND_EVENTS = { start: 'START', stop: 'STOP', restart: 'RESTART' } as const;
const ERROR_EVENT_PREFIX = 'xstate.error.actor.';
const respawnId = (name: string) => `respawn.${name}`;

function spawnSubsystem(
  enqueue: { spawnChild: (...args: never[]) => void },
  input: RootInput & { killSwitchActive: boolean },
  r: SubsystemRegistration,
  autoStart: boolean,
): void {
  const logic = subsystemMachine.provide({
    actors: { run: r.run, ...(r.drain ? { drain: r.drain } : {}) },
  });
  const restored = input.supervision?.load(r.name);
  (enqueue.spawnChild as (...args: unknown[]) => void)(logic, {
    id: r.name,
    systemId: r.name,
    input: {
      name: r.name,
      operates: r.operates,
      autoStart,
      killSwitchActive: input.killSwitchActive,
      policy: input.policy,
      runInput: r.runInput,
      hasDrain: r.drain !== undefined,
      ...(restored ? { restored } : {}),
      ...(input.supervision ? { journal: input.supervision } : {}),
      logger: input.logger,
      random: input.random,
      now: input.now,
    },
  });
}

/** Its lifecycle machine crashed and has not been spawned again yet: there is no child to talk to. */
function respawnPending(context: RootContext, name: string): boolean {
  return context.crashes[name]?.respawnAt != null;
}

function withoutCrash(crashes: Record<string, LifecycleCrash>, name: string): Record<string, LifecycleCrash> {
  const { [name]: _gone, ...rest } = crashes;
  return rest;
}

/** The operator's last command wins over AUTO_START. */
function wantsToRun(input: RootInput, name: string): boolean {
  const intent = input.intents?.get(name);
  return intent === undefined ? input.autoStart : intent === 'running';
}

const rootMachine = setup({
  types: {
    input: {} as RootInput,
    context: {} as RootContext,
    events: {} as RootEvent,
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({ ...input, crashes: {}, stoppingAll: false }),
  entry: enqueueActions(({ context, enqueue }) => {
    for (const r of context.registrations) {
      if (r.enabled) spawnSubsystem(enqueue as never, context, r, wantsToRun(context, r.name));
    }
  }),
  on: {
    COMMAND: {
      actions: enqueueActions(({ event, context, enqueue }) => {
        const r = context.registrations.find((x) => x.name === event.name);
        if (r && respawnPending(context, r.name)) {
          // The operator does not wait out a crashed machine's backoff: it is spawned now, as asked.
          enqueue.cancel(respawnId(r.name));
          enqueue.assign({ crashes: withoutCrash(context.crashes, r.name) });
          spawnSubsystem(enqueue as never, context, r, event.command !== 'stop');
          return;
        }
        enqueue.sendTo(event.name, { type: COMMAND_EVENTS[event.command] });
      }),
    },
    INJECT_FAULT: {
      actions: enqueueActions(({ event, context, enqueue }) => {
        if (!respawnPending(context, event.name)) enqueue.sendTo(event.name, { type: 'INJECT_FAULT' });
      }),
    },
    KILL_SWITCH: {
      actions: enqueueActions(({ event, context, enqueue }) => {
        // A machine waiting to be respawned reads the switch from the context when it is spawned.
        enqueue.assign({ killSwitchActive: event.active });
        for (const r of context.registrations) {
          if (r.enabled && !respawnPending(context, r.name)) {
            enqueue.sendTo(r.name, { type: event.active ? 'HALT' : 'RESUME' });
          }
        }
      }),
    },
    STOP_ALL: {
      actions: enqueueActions(({ context, enqueue }) => {
        enqueue.assign({ stoppingAll: true });
        for (const r of context.registrations) {
          if (!r.enabled) continue;
          if (respawnPending(context, r.name)) enqueue.cancel(respawnId(r.name));
          else enqueue.sendTo(r.name, { type: 'STOP' });
        }
      }),
    },
    RESPAWN: {
      actions: enqueueActions(({ event, context, enqueue }) => {
        const r = context.registrations.find((x) => x.name === event.name);
        const crash = context.crashes[event.name];
        if (!r || !crash || context.stoppingAll) return;
        const now = (context.now ?? Date.now)();
        context.logger.warn({ subsystem: r.name, crashes: crash.count }, 'respawning the lifecycle machine');
        enqueue.assign({
          crashes: { ...context.crashes, [r.name]: { ...crash, respawnAt: null, respawnedAt: now } },
        });
        spawnSubsystem(enqueue as never, context, r, wantsToRun(context, r.name));
      }),
    },
    '*': {
      actions: enqueueActions(({ event, context, enqueue, self }) => {
        if (!event.type.startsWith(ERROR_EVENT_PREFIX)) return;
        const name = event.type.slice(ERROR_EVENT_PREFIX.length);
        const r = context.registrations.find((x) => x.name === name);
        const error = (event as { error?: unknown }).error;
        if (!r) {
          context.logger.error({ err: error, subsystem: name }, 'lifecycle crashed');
          return;
        }
        // XState does not stop the children of a machine that crashed: the subsystem's run actor
        // would keep its timers and sockets. Stop them, which runs the subsystem's cleanup. `stop()`
        // refuses a child actor, so this calls the internal `_stop` that XState's own stopChild uses.
        const crashed = (self.getSnapshot().children as Record<string, AnyActorRef | undefined>)[name];
        enqueue(() => {
          const orphans = crashed?.getSnapshot()?.children as Record<string, AnyActorRef | undefined>;
          for (const orphan of Object.values(orphans ?? {})) {
            (orphan as unknown as { _stop?: () => void } | undefined)?._stop?.();
          }
        });
        enqueue(stopChild(name));
        if (context.stoppingAll) {
          context.logger.error({ err: error, subsystem: name }, 'lifecycle crashed while stopping');
          return;
        }
        const now = (context.now ?? Date.now)();
        const previous = context.crashes[name];
        const stable =
          previous?.respawnedAt != null && now - previous.respawnedAt >= context.policy.stablePeriodMs;
        const count = previous && !stable ? previous.count + 1 : 1;
        const delayMs = backoffDelay(
          count,
          { baseMs: context.policy.restartBaseMs, maxMs: context.policy.restartMaxMs },
          context.random,
        );
        context.logger.error(
          { err: error, subsystem: name, crashes: count, respawnInMs: delayMs },
          'lifecycle machine crashed; respawning it after a backoff',
        );
        enqueue.assign({
          crashes: {
            ...context.crashes,
            [name]: {
              count,
              error: { ...describeError(error), at: new Date(now).toISOString() },
              respawnAt: now + delayMs,
              respawnedAt: previous?.respawnedAt ?? null,
            },
          },
        });
        enqueue.raise({ type: 'RESPAWN', name }, { delay: delayMs, id: respawnId(name) });
      }),
    },
  },
});

type SubsystemSnapshot = SnapshotFrom<typeof subsystemMachine>;

/** The actor system of one peer, as the rest of the program sees it. */
export class PeerActors {
  private readonly root: Actor<typeof rootMachine>;
  private readonly listeners = new Set<() => void>();
  private readonly subscribed = new Set<AnyActorRef>();
  private started = false;
  private stopping: Promise<void> | undefined;
  private unwatchCrashes: (() => void) | undefined;

  constructor(private readonly input: RootInput) {
    this.root = createActor(rootMachine, { input });
    // The error observer: without it XState would re-throw into the process.
    this.root.subscribe({
      next: () => this.watchChildren(),
      error: (err) => input.logger.fatal({ err }, 'root actor failed'),
    });
  }

  /** Starts the subsystems; a second call, or a call after stop, does nothing. */
  start(): void {
    if (this.started || this.stopping) return;
    this.started = true;
    const { supervision, logger } = this.input;
    if (supervision?.blame) {
      const blame = supervision.blame.bind(supervision);
      this.unwatchCrashes = watchSubsystemCrashes((subsystem, err) => {
        logger.fatal(
          { subsystem, err },
          "an uncaught exception in this subsystem's code takes the worker down",
        );
        try {
          blame(subsystem, err);
        } catch (writeError) {
          logger.error({ err: writeError }, 'could not journal which subsystem took the worker down');
        }
      });
    }
    this.root.start();
    this.watchChildren();
  }

  /**
   * Stops every subsystem (letting each drain), then the root; resolves within `timeoutMs`.
   * Idempotent: every call returns the same promise, and a stop before start only prevents a start.
   */
  stop(timeoutMs = 10_000): Promise<void> {
    this.stopping ??= this.stopAll(timeoutMs);
    return this.stopping;
  }

  private async stopAll(timeoutMs: number): Promise<void> {
    // An XState actor that never started still reports itself `active`: do not send it anything.
    if (!this.started) return;
    this.root.send({ type: 'STOP_ALL' });
    await this.until(() => !this.status().some((s) => s.state === 'stopping'), timeoutMs);
    this.root.stop();
    this.unwatchCrashes?.();
  }

  /** Resolves when `done()` holds after some subsystem change, or after `timeoutMs` at the latest. */
  private until(done: () => boolean, timeoutMs: number): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        unsubscribe();
        resolve();
      };
      const timer = setTimeout(finish, timeoutMs);
      const unsubscribe = this.onChange(() => {
        if (done()) finish();
      });
    });
  }

  has(name: string): boolean {
    return this.input.registrations.some((r) => r.name === name);
  }

  isEnabled(name: string): boolean {
    return this.input.registrations.some((r) => r.name === name && r.enabled);
  }

  command(name: string, command: SubsystemCommand): void {
    this.input.intents?.set(name, command === 'stop' ? 'stopped' : 'running');
    this.root.send({ type: 'COMMAND', name, command });
  }

  injectFault(name: string): void {
    this.root.send({ type: 'INJECT_FAULT', name });
  }

  setKillSwitch(active: boolean): void {
    this.root.send({ type: 'KILL_SWITCH', active });
  }

  status(): SubsystemStatus[] {
    const root = this.root.getSnapshot();
    const children = root.children as Record<string, AnyActorRef | undefined>;
    return this.input.registrations.map((r) => {
      const snap = children[r.name]?.getSnapshot() as SubsystemSnapshot | undefined;
      const crash = root.context.crashes[r.name];
      if (r.enabled && !snap && crash?.respawnAt != null) return respawningStatus(r, crash);
      if (!r.enabled || !snap) return disabledStatus(r);
      const c: SubsystemContext = snap.context;
      return {
        name: r.name,
        enabled: true,
        state: stateName(snap.value),
        operates: r.operates,
        desired: c.desired,
        restarts: c.restarts,
        consecutiveFailures: c.consecutiveFailures,
        lastError: c.lastError,
        since: new Date(c.since).toISOString(),
        nextRestartAt: c.nextRestartAt === null ? null : new Date(c.nextRestartAt).toISOString(),
      };
    });
  }

  /** Called after any subsystem changes; returns an unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private watchChildren(): void {
    const children = this.root.getSnapshot().children as Record<string, AnyActorRef | undefined>;
    for (const child of Object.values(children)) {
      if (!child || this.subscribed.has(child)) continue;
      this.subscribed.add(child);
      child.subscribe({
        next: () => this.emit(),
        error: () => this.subscribed.delete(child),
        complete: () => this.subscribed.delete(child),
      });
    }
    this.emit();
  }

  private emit(): void {
    for (const listener of this.listeners) {
      try {
        listener();
      } catch (err) {
        this.input.logger.error({ err }, 'subsystem change listener failed');
      }
    }
  }
}

/** A subsystem whose lifecycle machine crashed and waits to be spawned again. */
function respawningStatus(r: SubsystemRegistration, crash: LifecycleCrash): SubsystemStatus {
  return {
    name: r.name,
    enabled: true,
    state: 'backoff',
    operates: r.operates,
    desired: 'running',
    restarts: 0,
    consecutiveFailures: crash.count,
    lastError: crash.error,
    since: crash.error.at,
    nextRestartAt: crash.respawnAt === null ? null : new Date(crash.respawnAt).toISOString(),
  };
}

function disabledStatus(r: SubsystemRegistration): SubsystemStatus {
  return {
    name: r.name,
    enabled: false,
    state: 'disabled',
    operates: r.operates,
    desired: 'stopped',
    restarts: 0,
    consecutiveFailures: 0,
    lastError: null,
    since: null,
    nextRestartAt: null,
  };
}
