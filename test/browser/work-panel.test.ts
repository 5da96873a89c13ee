// The dashboard's work panel and AI card lines in headless Chromium against a real peer process:
// the peer card shows queue depths, AI spend against the caps and the breaker; a job awaiting
// approval is approved from the page (token asked as for the kill switch) and delivered.
import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
// @ts-expect-error: a plain ES module of the scripts without type declarations
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../scripts/lib/chromium.mjs';
import { startFakeOpenAi } from '../helpers/fake-openai.js';
import { http, startBot } from '../helpers/process.js';
import { startWebhookReceiver, TEST_WEBHOOK_SECRET } from '../helpers/webhook-receiver.js';

const CHROMIUM: string = CHROMIUM_PATH;
const TOKEN = 'work-panel-token-0123456789';

async function launch(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  onTestFinished(() => browser.close());
  return browser;
}

describe.skipIf(!existsSync(CHROMIUM))('dashboard work panel in Chromium', () => {
  it('shows AI spend and breaker on the card, and approves a job from the page', async () => {
    const ai = await startFakeOpenAi(() => ({
      kind: 'ok',
      text: 'Proposal text',
      promptTokens: 30,
      completionTokens: 12,
    }));
    const receiver = await startWebhookReceiver();
    const bot = await startBot({
      env: {
        CONTINUOUS_MODE: 'false',
        API_TOKEN: TOKEN,
        AI_BASE_URL: ai.baseUrl,
        AI_MAX_REQUESTS_PER_HOUR: '50',
        AI_MAX_TOKENS_PER_HOUR: '9000',
        FREELANCE_KEYWORDS: 'typescript',
        FREELANCE_WEBHOOK_URL: receiver.url,
        FREELANCE_WEBHOOK_SECRET: TEST_WEBHOOK_SECRET,
      },
    });
    const posted = await http(`${bot.url}/freelance/jobs`, {
      method: 'POST',
      token: TOKEN,
      body: { title: 'TypeScript dashboard job', budget: 400, currency: 'EUR' },
    });
    expect(posted.status).toBe(202);
    const jobId = posted.json().id as string;
    await vi.waitFor(async () => {
      const j = await http(`${bot.url}/freelance/jobs/${jobId}`, { token: TOKEN });
      expect(j.json().status).toBe('awaiting-approval');
    });

    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${bot.url}/`);
    // The card: spend against the caps (the proposal was one call of 42 tokens), breaker closed.
    await expect
      .poll(() => page.locator('[data-ai-spend]').first().textContent(), { timeout: 10_000 })
      .toBe('1/50 req · 42/9000 tok this hour');
    await expect
      .poll(() => page.locator('[data-breaker]').first().getAttribute('data-breaker'))
      .toBe('closed');
    await expect.poll(() => page.locator('.peer').first().textContent()).toContain('freelance.awaiting 1');
    // The AI task list shows the proposal task completed.
    await expect.poll(() => page.locator('#tasks [data-task-state="completed"]').count()).toBe(1);

    // Approve from the page: the token is asked, then the job leaves the list and is delivered.
    await page.locator(`[data-approve="${jobId}"]`).click();
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
    await expect.poll(() => page.locator('#message').textContent()).toContain('Job approved');
    await vi.waitFor(() => expect(receiver.accepted.size).toBe(1), { timeout: 10_000 });
    await expect.poll(() => page.locator(`[data-job-id="${jobId}"]`).count(), { timeout: 10_000 }).toBe(0);
    expect(errors).toEqual([]);
  });
});
