/**
 * One call to an OpenAI-compatible Chat Completions endpoint through the official SDK, and the
 * verdict on its failures. The SDK's own retries are off (maxRetries 0): a retry is a durable
 * queue step here (the task is requeued with its error and a due time), so it survives a restart
 * and counts against the spending guard like any other call.
 */
import type OpenAI from 'openai';
import type { Usage } from './tasks.js';

type Sdk = typeof import('openai');
/**
 * The SDK, loaded with the first request (about 35 MiB of modules): a peer without AI_BASE_URL
 * never loads it. `judge` only sees the SDK's errors after a request, so by then it is here.
 */
let sdk: Sdk | undefined;
const loadSdk = async (): Promise<Sdk> => {
  sdk ??= await import('openai');
  return sdk;
};

export interface ChatRequest {
  model: string;
  system: string;
  prompt: string;
  maxTokens?: number | undefined;
}

export interface ChatAnswer {
  text: string;
  usage: Usage | undefined;
}

export interface ProviderOptions {
  baseUrl: string;
  apiKey: string | undefined;
  timeoutMs: number;
}

export type Provider = (request: ChatRequest, signal: AbortSignal) => Promise<ChatAnswer>;

export function openAiProvider(options: ProviderOptions): Provider {
  let client: OpenAI | undefined;
  return async (request, signal) => {
    client ??= new (await loadSdk()).default({
      baseURL: options.baseUrl,
      // Local servers (Ollama, vLLM) take any key; the SDK refuses to run without one.
      apiKey: options.apiKey ?? 'none',
      timeout: options.timeoutMs,
      maxRetries: 0,
    });
    const completion = await client.chat.completions.create(
      {
        model: request.model,
        messages: [
          { role: 'system', content: request.system },
          { role: 'user', content: request.prompt },
        ],
        ...(request.maxTokens ? { max_tokens: request.maxTokens } : {}),
      },
      { signal },
    );
    // A server that answers 200 with HTML or a cut body gives no choices: that is a provider
    // failure to retry, not a task result.
    const choice = (completion as Partial<typeof completion>)?.choices?.[0];
    const text = choice?.message?.content;
    if (typeof text !== 'string') throw new MalformedAnswerError('the provider answered without a message');
    const u = completion.usage;
    return {
      text,
      usage: u
        ? {
            promptTokens: u.prompt_tokens,
            completionTokens: u.completion_tokens,
            totalTokens: u.total_tokens,
          }
        : undefined,
    };
  };
}

export class MalformedAnswerError extends Error {
  override name = 'MalformedAnswerError';
}

export interface Verdict {
  /** Try again later (429, 5xx, timeouts, resets, bad bodies); false: the task fails now. */
  retry: boolean;
  /** Counts against the circuit breaker: the provider itself is unwell. */
  providerFault: boolean;
  /** ms the provider asked us to wait (Retry-After / retry-after-ms). */
  retryAfterMs: number | undefined;
  message: string;
}

export function judge(err: unknown, now = Date.now()): Verdict {
  const message = describe(err);
  if (isApiError(err) && !(sdk && err instanceof sdk.APIConnectionError) && err.status !== undefined) {
    const status = err.status;
    const retryAfterMs = retryAfter(err.headers, now);
    if (status === 429) return { retry: true, providerFault: false, retryAfterMs, message };
    if (status === 408 || status >= 500) return { retry: true, providerFault: true, retryAfterMs, message };
    // Any other 4xx is our request's fault: retrying would fail the same way.
    return { retry: false, providerFault: false, retryAfterMs: undefined, message };
  }
  // Timeouts, resets, refused connections, non-JSON or truncated bodies.
  return { retry: true, providerFault: true, retryAfterMs: undefined, message };
}

/** An error the SDK raised for an HTTP answer; none exists before the SDK is loaded. */
function isApiError(err: unknown): err is InstanceType<Sdk['APIError']> {
  return sdk !== undefined && err instanceof sdk.APIError;
}

function describe(err: unknown): string {
  if (isApiError(err)) {
    const status = err.status === undefined ? '' : `provider answered ${err.status}: `;
    return `${status}${err.message}`.slice(0, 1000);
  }
  if (err instanceof Error) return `${err.name}: ${err.message}`.slice(0, 1000);
  return String(err).slice(0, 1000);
}

/** Retry-After in seconds or as an HTTP date, or the non-standard retry-after-ms. */
export function retryAfter(headers: Headers | undefined, now = Date.now()): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const value = headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
