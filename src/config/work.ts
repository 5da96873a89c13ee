/** The work the bots do besides trading: AI tasks and freelance jobs. */

import type { Parser } from './define.js';
import { optional, type ValuesOf, withDefault } from './define.js';
import { bool, decimal, integer, list, text, url } from './parsers.js';

export const MAX_AI_CONCURRENCY = 32;
/** Bytes a freelance job (title, description, tags...) may carry; 413 above. */
export const DEFAULT_FREELANCE_MAX_JOB_BYTES = 32 * 1024;

const between =
  (min: number, max: number): Parser<number> =>
  (raw, name, warn) => {
    const n = integer(min)(raw, name, warn);
    if (n > max) throw new Error(`${name} must be at most ${max}; got "${raw}"`);
    return n;
  };

const urlList: Parser<string[]> = (raw, name, warn) => list(raw, name, warn).map((u) => url(u, name, warn));

/** A Standard Webhooks secret: `whsec_` and base64, as receivers print it. */
const webhookSecret: Parser<string> = (raw, name) => {
  const value = raw.trim();
  const body = value.startsWith('whsec_') ? value.slice(6) : value;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body) || Buffer.from(body, 'base64').length < 16) {
    throw new Error(`${name} must be whsec_ followed by at least 16 bytes of base64`);
  }
  return value;
};

export const AI_VARS = {
  baseUrl: optional('AI_BASE_URL', url, 'OpenAI-compatible endpoint (OpenAI, Ollama, vLLM...)'),
  apiKey: optional('AI_API_KEY', text, 'API key of the AI endpoint', { secret: true }),
  model: optional('AI_MODEL', text, 'default model of AI tasks'),
  /** Provider calls in flight at once. */
  concurrency: withDefault(
    'AI_CONCURRENCY',
    '2',
    between(1, MAX_AI_CONCURRENCY),
    `provider calls in flight at once (1-${MAX_AI_CONCURRENCY})`,
  ),
  /** ms one provider call may take; it also sets a task's lease (leaseMsFor: 1.5 x this + 1 s). */
  timeoutMs: withDefault(
    'AI_TIMEOUT',
    '60000',
    integer(100),
    "ms one provider call may take; a task's lease is 1.5 x this + 1 s (a dead peer's tasks are taken over after it)",
  ),
  maxRequestsPerHour: withDefault(
    'AI_MAX_REQUESTS_PER_HOUR',
    '600',
    integer(1),
    'spending guard: provider calls per clock hour; reaching it pauses AI until the next hour',
  ),
  maxTokensPerHour: withDefault(
    'AI_MAX_TOKENS_PER_HOUR',
    '500000',
    integer(1),
    'spending guard: tokens (prompt + completion) per clock hour',
  ),
  /** Attempts before a task is `dead`. */
  maxAttempts: withDefault('AI_MAX_ATTEMPTS', '6', integer(1), 'attempts of an AI task before it is dead'),
  /** First retry delay without Retry-After, ms; doubles per attempt. */
  retryBaseMs: withDefault(
    'AI_RETRY_BASE_MS',
    '1000',
    integer(1),
    'first retry delay of an AI task when the provider sends no Retry-After, ms (doubles)',
  ),
  /** Consecutive provider failures that open the circuit breaker. */
  breakerFailures: withDefault(
    'AI_BREAKER_FAILURES',
    '5',
    integer(1),
    'consecutive provider failures (5xx, timeouts, resets) that open the circuit breaker',
  ),
  /** ms the breaker stays open before it lets one probe through. */
  breakerHalfOpenMs: withDefault(
    'AI_BREAKER_HALF_OPEN_MS',
    '30000',
    integer(1),
    'ms the open breaker pauses AI before one probe call',
  ),
  /** Bytes of prompt + system prompt a task may carry (413 above). */
  maxPromptBytes: withDefault(
    'AI_MAX_PROMPT_BYTES',
    String(32 * 1024),
    integer(1),
    'bytes of prompt plus system prompt one task may carry (413 above)',
  ),
};

export const FREELANCE_VARS = {
  autoExecute: withDefault('FREELANCE_AUTO_EXECUTE', 'false', bool, 'execute matched jobs without approval'),
  feeds: optional('FREELANCE_FEEDS', urlList, 'comma list of RSS, Atom or JSON Feed URLs to poll', {
    unset: [],
  }),
  pollIntervalMs: withDefault(
    'FREELANCE_POLL_INTERVAL',
    '300000',
    integer(100),
    'ms between polls of each feed',
  ),
  feedTimeoutMs: withDefault(
    'FREELANCE_FEED_TIMEOUT',
    '15000',
    integer(100),
    'ms one feed request may take, body included',
  ),
  webhookUrl: optional(
    'FREELANCE_WEBHOOK_URL',
    url,
    'where approved jobs and proposals are delivered (Standard Webhooks)',
  ),
  webhookSecret: optional(
    'FREELANCE_WEBHOOK_SECRET',
    webhookSecret,
    'whsec_... signing secret of the deliveries',
    {
      secret: true,
    },
  ),
  keywords: optional(
    'FREELANCE_KEYWORDS',
    list,
    'comma list; a job matches when its text holds one (unset: every job)',
    { unset: [] },
  ),
  excludeWords: optional('FREELANCE_EXCLUDE', list, 'comma list of words that skip a job', { unset: [] }),
  minBudget: optional('FREELANCE_MIN_BUDGET', decimal(0), 'jobs with a lower stated budget are skipped'),
  maxExecutionsPerHour: withDefault(
    'FREELANCE_MAX_EXECUTIONS_PER_HOUR',
    '10',
    integer(1),
    'deliveries started per clock hour, with or without approval',
  ),
  webhookMaxAttempts: withDefault(
    'FREELANCE_WEBHOOK_MAX_ATTEMPTS',
    '8',
    integer(1),
    'delivery attempts before a job is dead',
  ),
};

export type AiConfig = ValuesOf<typeof AI_VARS>;
export type FreelanceConfig = ValuesOf<typeof FREELANCE_VARS> & {
  /** Bytes a job may carry (413 above). */
  maxJobBytes: number;
};

export function checkWork(freelance: Partial<FreelanceConfig>, problems: string[]): void {
  if (freelance.webhookUrl && !freelance.webhookSecret) {
    problems.push('FREELANCE_WEBHOOK_URL needs FREELANCE_WEBHOOK_SECRET to sign the deliveries');
  }
}
