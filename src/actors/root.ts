/**
 * The root actor of a peer: spawns one lifecycle machine per enabled subsystem, forwards operator
 * commands and kill-switch changes to them, and observes every error so none can reach the process
 * (XState re-throws an error nobody observes). A lifecycle machine that itself crashes, which only a
 * bug in it can cause, is logged and spawned again.
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
import type { Logger } from '../logger.js';
import {
  type SubsystemContext,
  type SubsystemError,
  type SubsystemStateName,
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

interface RootInput {
  registrations: SubsystemRegistration[];
  autoStart: boolean;
  /** Without it, operator commands last as long as the process. */
  intents?: IntentPort;
  killSwitchActive: boolean;
  policy: SupervisorConfig;
  logger: Logger;
  random?: () => number;
  now?: () => number;
}

type RootEvent =
  | { type: 'COMMAND'; name: string; command: SubsystemCommand }
  | { type: 'KILL_SWITCH'; active: boolean }
  | { type: 'INJECT_FAULT'; name: string }
  | { type: 'STOP_ALL' };

const COMMAND_EVENTS = { start: 'START', stop: 'STOP', restart: 'RESTART' } as const;
const ERROR_EVENT_PREFIX = 'xstate.error.actor.';

function spawnSubsystem(
  enqueue: { spawnChild: (...args: never[]) => void },
  input: RootInput & { killSwitchActive: boolean },
  r: SubsystemRegistration,
  autoStart: boolean,
): void {
  const logic = subsystemMachine.provide({
    actors: { run: r.run, ...(r.drain ? { drain: r.drain } : {}) },
  });
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
      random: input.random,
      now: input.now,
    },
  });
}

/** The operator's last command wins over AUTO_START. */
function wantsToRun(input: RootInput, name: string): boolean {
  const intent = input.intents?.get(name);
  return intent === undefined ? input.autoStart : intent === 'running';
}

const rootMachine = setup({
  types: {
    input: {} as RootInput,
    context: {} as RootInput,
    events: {} as RootEvent,
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => input,
  entry: enqueueActions(({ context, enqueue }) => {
    for (const r of context.registrations) {
      if (r.enabled) spawnSubsystem(enqueue as never, context, r, wantsToRun(context, r.name));
    }
  }),
  on: {
    COMMAND: {
      actions: enqueueActions(({ event, enqueue }) => {
        enqueue.sendTo(event.name, { type: COMMAND_EVENTS[event.command] });
      }),
    },
    INJECT_FAULT: {
      actions: enqueueActions(({ event, enqueue }) => enqueue.sendTo(event.name, { type: 'INJECT_FAULT' })),
    },
    KILL_SWITCH: {
      actions: enqueueActions(({ event, context, enqueue }) => {
        enqueue.assign({ killSwitchActive: event.active });
        for (const r of context.registrations) {
          if (r.enabled) enqueue.sendTo(r.name, { type: event.active ? 'HALT' : 'RESUME' });
        }
      }),
    },
    STOP_ALL: {
      actions: enqueueActions(({ context, enqueue }) => {
        for (const r of context.registrations) if (r.enabled) enqueue.sendTo(r.name, { type: 'STOP' });
      }),
    },
    '*': {
      actions: enqueueActions(({ event, context, enqueue }) => {
        if (!event.type.startsWith(ERROR_EVENT_PREFIX)) return;
        const name = event.type.slice(ERROR_EVENT_PREFIX.length);
        const r = context.registrations.find((x) => x.name === name);
        context.logger.error(
          { err: (event as { error?: unknown }).error, subsystem: name },
          'lifecycle crashed',
        );
        if (!r) return;
        enqueue(stopChild(name));
        spawnSubsystem(enqueue as never, context, r, wantsToRun(context, r.name));
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
    const children = this.root.getSnapshot().children as Record<string, AnyActorRef | undefined>;
    return this.input.registrations.map((r) => {
      const snap = children[r.name]?.getSnapshot() as SubsystemSnapshot | undefined;
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
