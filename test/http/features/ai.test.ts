import { describe, expect, it, vi } from 'vitest';
import { buildTestApp, type TestApp } from '../../helpers/app.js';
import { type Behaviour, startFakeOpenAi } from '../../helpers/fake-openai.js';

const FAST = { AI_RETRY_BASE_MS: '50', AI_TIMEOUT: '2000', FREELANCE_ENABLED: 'false' };

async function submit(t: TestApp, body: Record<string, unknown>) {
  const res = await t.authed({ method: 'POST', url: '/ai/tasks', payload: body });
  expect(res.statusCode, res.body).toBe(202);
  return res.json() as { id: string; status: string };
}

async function task(t: TestApp, id: string) {
  return (await t.authed({ url: `/ai/tasks/${id}` })).json();
}

async function status(t: TestApp) {
  return (await t.app.inject({ url: '/status' })).json().ai;
}

describe('AI tasks end to end against a local OpenAI-compatible server', () => {
  it('runs a task: 202 after the commit, then completed with the answer, usage and hourly spend', async () => {
    const server = await startFakeOpenAi(() => ({
      kind: 'ok',
      text: 'done',
      promptTokens: 12,
      completionTokens: 8,
    }));
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl, AI_MODEL: 'm1' } });
    const { id, status: first } = await submit(t, { prompt: 'say done' });
    expect(first).toBe('queued');
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'), { timeout: 5_000 });
    expect(await task(t, id)).toMatchObject({
      id,
      status: 'completed',
      attempts: 1,
      result: 'done',
      usage: { promptTokens: 12, completionTokens: 8, totalTokens: 20 },
      model: 'm1',
    });
    // The guide's autonomous prompt is the default system prompt.
    expect(server.calls[0]?.messages[0]).toEqual({ role: 'system', content: t.deps.prompt });
    const ai = await status(t);
    expect(ai.spend).toMatchObject({ requests: 1, tokens: 20 });
    expect(ai.usageByHour.at(-1)).toMatchObject({ requests: 1, tokens: 20 });
  });

  it('an idempotency key returns the first task and runs it once', async () => {
    const server = await startFakeOpenAi();
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl } });
    const a = await submit(t, { prompt: 'x', idempotencyKey: 'k-1' });
    const b = await submit(t, { prompt: 'x', idempotencyKey: 'k-1' });
    expect(b.id).toBe(a.id);
    await vi.waitFor(async () => expect((await task(t, a.id)).status).toBe('completed'));
    expect(server.calls).toHaveLength(1);
  });

  it('refuses bad input: 401 without the token, 400 naming the field, 413 naming the limit', async () => {
    const t = await buildTestApp({ env: { ...FAST, AI_MAX_PROMPT_BYTES: '100' } });
    expect(
      (await t.app.inject({ method: 'POST', url: '/ai/tasks', payload: { prompt: 'x' } })).statusCode,
    ).toBe(401);
    const bad = await t.authed({
      method: 'POST',
      url: '/ai/tasks',
      payload: { prompt: 'x', maxTokens: 'many' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('maxTokens');
    const big = await t.authed({ method: 'POST', url: '/ai/tasks', payload: { prompt: 'y'.repeat(101) } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.message).toContain('limit is 100 bytes');
    const huge = await t.authed({
      method: 'POST',
      url: '/ai/tasks',
      payload: { prompt: 'y'.repeat(200_000) },
    });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.message).toContain('100 bytes');
  });

  it('hides prompts and results from a caller without the token', async () => {
    const server = await startFakeOpenAi(() => ({ kind: 'ok', text: 'secret answer' }));
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl } });
    const { id } = await submit(t, { prompt: 'secret prompt' });
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'));
    const anon = (await t.app.inject({ url: `/ai/tasks/${id}` })).json();
    expect(anon).toMatchObject({ id, status: 'completed' });
    expect(JSON.stringify(anon)).not.toContain('secret');
    const list = (await t.app.inject({ url: '/ai/tasks' })).json();
    expect(JSON.stringify(list)).not.toContain('secret');
    expect((await t.authed({ url: '/ai/tasks' })).json().tasks[0]).toMatchObject({
      id,
      prompt: 'secret prompt',
    });
  });

  it('without AI_BASE_URL says "no provider configured" and keeps tasks queued', async () => {
    const t = await buildTestApp({ env: FAST });
    const { id } = await submit(t, { prompt: 'x' });
    await vi.waitFor(async () => expect((await status(t)).paused?.kind).toBe('no-provider'));
    const ai = await status(t);
    expect(ai.paused.reason).toContain('no provider configured');
    expect(ai.state).toBe('paused');
    expect((await task(t, id)).status).toBe('queued');
  });

  it('429 is retried after the Retry-After the provider names', async () => {
    const server = await startFakeOpenAi((c) =>
      c.n === 1 ? { kind: 'status', status: 429, headers: { 'retry-after': '1' } } : { kind: 'ok' },
    );
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl } });
    const { id } = await submit(t, { prompt: 'x' });
    await vi.waitFor(async () => expect((await task(t, id)).attempts).toBe(1));
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'), { timeout: 5_000 });
    expect((await task(t, id)).attempts).toBe(2);
    expect(server.calls).toHaveLength(2);
    const [a, b] = server.calls;
    expect((b?.at ?? 0) - (a?.at ?? 0)).toBeGreaterThanOrEqual(900);
  });

  it('400 is not retried: the task ends with the provider message', async () => {
    const server = await startFakeOpenAi(() => ({
      kind: 'status',
      status: 400,
      message: 'model not found: nope',
    }));
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl } });
    const { id } = await submit(t, { prompt: 'x', model: 'nope' });
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('dead'));
    const done = await task(t, id);
    expect(done.attempts).toBe(1);
    expect(done.error).toContain('model not found: nope');
    expect(server.calls).toHaveLength(1);
  });

  it('non-JSON, truncated and reset answers are retried and the error is kept on the task', async () => {
    const script: Behaviour[] = [{ kind: 'non-json' }, { kind: 'truncated' }, { kind: 'reset' }];
    const server = await startFakeOpenAi((c) => script[c.n - 1] ?? { kind: 'ok', text: 'finally' });
    const t = await buildTestApp({
      env: { ...FAST, AI_BASE_URL: server.baseUrl, AI_BREAKER_FAILURES: '10' },
    });
    const { id } = await submit(t, { prompt: 'x' });
    await vi.waitFor(async () => expect((await task(t, id)).attempts).toBeGreaterThanOrEqual(2));
    const midway = await task(t, id);
    if (midway.status !== 'completed') expect(midway.error).toBeTruthy();
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'), { timeout: 8_000 });
    expect(await task(t, id)).toMatchObject({ attempts: 4, result: 'finally' });
  });

  it('the circuit breaker pauses AI while the provider keeps failing, and a probe resumes it', async () => {
    let healthy = false;
    const server = await startFakeOpenAi(() => (healthy ? { kind: 'ok' } : { kind: 'status', status: 503 }));
    const t = await buildTestApp({
      env: {
        ...FAST,
        AI_BASE_URL: server.baseUrl,
        AI_BREAKER_FAILURES: '2',
        AI_BREAKER_HALF_OPEN_MS: '1500',
        AI_MAX_ATTEMPTS: '20',
      },
    });
    const { id } = await submit(t, { prompt: 'x' });
    await vi.waitFor(async () => expect((await status(t)).breaker).toBe('open'), { timeout: 5_000 });
    const ai = await status(t);
    expect(ai.paused).toMatchObject({ kind: 'breaker' });
    expect(ai.paused.reason).toContain('503');
    const callsWhileOpen = server.calls.length;
    healthy = true;
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'), { timeout: 8_000 });
    // While open nothing reached the provider but the one probe that closed it.
    expect(server.calls.length).toBe(callsWhileOpen + 1);
    expect((await status(t)).breaker).toBe('closed');
  });

  it('the spending guard stops at the hourly request cap, says why, and keeps the rest queued', async () => {
    const server = await startFakeOpenAi();
    const t = await buildTestApp({
      env: { ...FAST, AI_BASE_URL: server.baseUrl, AI_MAX_REQUESTS_PER_HOUR: '2' },
    });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(t, { prompt: `p${i}` })).id);
    await vi.waitFor(async () => expect((await status(t)).paused?.kind).toBe('spend-cap'));
    await vi.waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await task(t, id)).status));
      expect(states.sort()).toEqual(['completed', 'completed', 'queued']);
    });
    const ai = await status(t);
    expect(ai.paused.reason).toContain('AI_MAX_REQUESTS_PER_HOUR');
    expect(Date.parse(ai.paused.until) % 3_600_000).toBe(0);
    expect(server.calls).toHaveLength(2);
    const summary = (await t.app.inject({ url: '/metrics' })).body;
    expect(summary).toMatch(/qb_ai_paused\{reason="spend-cap"[^}]*\} 1/);
  });

  it('the kill switch aborts calls in flight and stops new ones; nothing is lost; deactivation resumes', async () => {
    const server = await startFakeOpenAi(() => ({ kind: 'ok', delayMs: 400 }));
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl, AI_CONCURRENCY: '2' } });
    const first = await submit(t, { prompt: 'a' });
    await vi.waitFor(() => expect(server.calls.length).toBe(1));
    const ks = await t.authed({
      method: 'POST',
      url: '/kill-switch',
      payload: { activate: true, reason: 'test' },
    });
    expect(ks.statusCode).toBe(200);
    await vi.waitFor(() => expect(t.subsystem('ai').state).toBe('halted'));
    const more = [await submit(t, { prompt: 'b' }), await submit(t, { prompt: 'c' })];
    // The in-flight call was aborted: its task is back in the queue, not completed.
    await vi.waitFor(async () => expect(['queued', 'failed']).toContain((await task(t, first.id)).status));
    expect((await status(t)).state).toBe('halted');
    // Two tasks were accepted while halted, and none reached the provider.
    for (const { id } of more) expect((await task(t, id)).status).toBe('queued');
    expect(server.calls.length).toBe(1);
    await t.authed({ method: 'POST', url: '/kill-switch', payload: { activate: false, reason: 'over' } });
    for (const { id } of [first, ...more]) {
      await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'), { timeout: 8_000 });
    }
  });
  it('a call cut by the kill switch spends no attempt: cut twice with AI_MAX_ATTEMPTS=2, it still completes', async () => {
    const server = await startFakeOpenAi(() => ({ kind: 'ok', delayMs: 400 }));
    const t = await buildTestApp({ env: { ...FAST, AI_BASE_URL: server.baseUrl, AI_MAX_ATTEMPTS: '2' } });
    const { id } = await submit(t, { prompt: 'a' });
    const killSwitch = (activate: boolean) =>
      t.authed({ method: 'POST', url: '/kill-switch', payload: { activate, reason: 'cut test' } });
    for (let cut = 1; cut <= 2; cut++) {
      await vi.waitFor(() => expect(server.calls.length).toBe(cut));
      expect((await killSwitch(true)).statusCode).toBe(200);
      await vi.waitFor(async () =>
        expect(await task(t, id)).toMatchObject({ status: 'queued', attempts: 0 }),
      );
      await killSwitch(false);
    }
    await vi.waitFor(async () => expect((await task(t, id)).status).toBe('completed'), { timeout: 8_000 });
    expect(await task(t, id)).toMatchObject({ status: 'completed', attempts: 1 });
    expect(server.calls).toHaveLength(3);
  });
});
