import { describe, expect, it } from 'vitest';
import { judge, openAiProvider, retryAfter } from '../../../src/actors/ai/provider.js';
import { startFakeOpenAi } from '../../helpers/fake-openai.js';

const request = { model: 'test-model', system: 'be brief', prompt: 'hello', maxTokens: 50 };

async function outcome(behaviour: Parameters<typeof startFakeOpenAi>[0], timeoutMs = 5_000) {
  const server = await startFakeOpenAi(behaviour);
  const provider = openAiProvider({ baseUrl: server.baseUrl, apiKey: 'sk-test', timeoutMs });
  try {
    return { answer: await provider(request, new AbortController().signal), server };
  } catch (err) {
    return { err, verdict: judge(err), server };
  }
}

describe('AI provider through the openai SDK against a local server', () => {
  it('sends the system prompt, the prompt, the model and max_tokens, and reads the usage', async () => {
    const { answer, server } = await outcome(() => ({
      kind: 'ok',
      text: 'hi',
      promptTokens: 7,
      completionTokens: 3,
    }));
    expect(answer).toEqual({ text: 'hi', usage: { promptTokens: 7, completionTokens: 3, totalTokens: 10 } });
    expect(server.calls[0]).toMatchObject({
      model: 'test-model',
      maxTokens: 50,
      authorization: 'Bearer sk-test',
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hello' },
      ],
    });
  });

  it('429 is retried after the Retry-After it names, and does not count against the breaker', async () => {
    const { verdict, server } = await outcome(() => ({
      kind: 'status',
      status: 429,
      headers: { 'retry-after': '7' },
    }));
    expect(verdict).toMatchObject({ retry: true, providerFault: false, retryAfterMs: 7_000 });
    // maxRetries 0: the SDK did not retry on its own; the queue does.
    expect(server.calls).toHaveLength(1);
  });

  it('500 is retried and counts against the breaker', async () => {
    const { verdict } = await outcome(() => ({ kind: 'status', status: 500, message: 'boom' }));
    expect(verdict).toMatchObject({ retry: true, providerFault: true });
    expect(verdict?.message).toContain('500');
  });

  it("400 is not retried, and the provider's message is kept", async () => {
    const { verdict } = await outcome(() => ({
      kind: 'status',
      status: 400,
      message: 'max_tokens is too large',
    }));
    expect(verdict).toMatchObject({ retry: false, providerFault: false });
    expect(verdict?.message).toContain('max_tokens is too large');
  });

  it('a body that is not JSON, a truncated body and a reset connection are all retried', async () => {
    for (const kind of ['non-json', 'truncated', 'reset'] as const) {
      const { verdict, answer } = await outcome(() => ({ kind }));
      expect(answer, kind).toBeUndefined();
      expect(verdict, kind).toMatchObject({ retry: true, providerFault: true });
      expect(verdict?.message.length, kind).toBeGreaterThan(0);
    }
  });

  it('a slow answer times out after AI_TIMEOUT and is retried', async () => {
    const started = performance.now();
    const { verdict } = await outcome(() => ({ kind: 'ok', delayMs: 5_000 }), 300);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(verdict).toMatchObject({ retry: true, providerFault: true });
    expect(verdict?.message).toMatch(/timed out/i);
  });
});

describe('retryAfter', () => {
  it('reads seconds, an HTTP date and retry-after-ms', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfter(new Headers({ 'retry-after': '2' }), now)).toBe(2_000);
    expect(retryAfter(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:05 GMT' }), now)).toBe(5_000);
    expect(retryAfter(new Headers({ 'retry-after-ms': '150' }), now)).toBe(150);
    expect(retryAfter(new Headers({}), now)).toBeUndefined();
    expect(retryAfter(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
  });
});
