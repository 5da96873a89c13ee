/**
 * Pure rules both backends share: the settings of a queue and the retry delay after a failed
 * attempt. No I/O, so the backoff schedule is unit-tested without a database.
 */
import { DEFAULT_QUEUE_SETTINGS, type QueueOptions, type QueueSettings } from './types.js';

/** Holds the defaults and the per-queue overrides; `define` merges more in. */
export class QueueSettingsTable {
  readonly #defaults: QueueSettings;
  readonly #perQueue = new Map<string, QueueSettings>();

  constructor(options: Pick<QueueOptions, 'defaults' | 'queues'> = {}) {
    this.#defaults = checked({ ...DEFAULT_QUEUE_SETTINGS, ...options.defaults });
    for (const [name, settings] of Object.entries(options.queues ?? {})) this.define(name, settings);
  }

  define(queue: string, settings: Partial<QueueSettings>): void {
    this.#perQueue.set(queue, checked({ ...this.get(queue), ...settings }));
  }

  get(queue: string): Readonly<QueueSettings> {
    return this.#perQueue.get(queue) ?? this.#defaults;
  }

  /** Queue names with settings of their own. */
  defined(): string[] {
    return [...this.#perQueue.keys()];
  }
}

function checked(s: QueueSettings): QueueSettings {
  const positive: Array<keyof QueueSettings> = [
    'maxAttempts',
    'leaseMs',
    'concurrency',
    'concurrencyPerOwner',
  ];
  for (const key of positive) {
    if (!(s[key] >= 1)) throw new RangeError(`queue setting ${key} must be >= 1, got ${s[key]}`);
  }
  for (const key of ['backoffBaseMs', 'backoffMaxMs', 'retentionMs'] as const) {
    if (!(s[key] >= 0)) throw new RangeError(`queue setting ${key} must be >= 0, got ${s[key]}`);
  }
  if (!(s.jitter >= 0 && s.jitter <= 1))
    throw new RangeError(`queue setting jitter must be in [0, 1], got ${s.jitter}`);
  return Object.freeze({ ...s });
}

/**
 * Delay before the next attempt after failed attempt `attempt` (1-based):
 * min(backoffMaxMs, backoffBaseMs * 2^(attempt-1)) times a uniform factor in [1 - jitter, 1 + jitter].
 * Jitter spreads retries of items that failed together (e.g. an endpoint outage) over time.
 */
export function backoffDelayMs(settings: QueueSettings, attempt: number, random: () => number): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 52);
  const base = Math.min(settings.backoffMaxMs, settings.backoffBaseMs * 2 ** exponent);
  const factor = 1 - settings.jitter + 2 * settings.jitter * random();
  return Math.max(0, Math.round(base * factor));
}

/** A JSON-safe message for `lastError`. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    return String(error);
  }
}
