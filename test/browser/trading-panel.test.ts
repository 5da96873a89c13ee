// The dashboard's trading panel in headless Chromium against a real peer trading on paper: the
// candle chart is drawn (lightweight-charts' canvas, served by the peer), the fills and the equity
// curve the panel fetched are there, and a tripped protection shows as tripped; its reset button,
// with the token asked as for the kill switch, resets it.
//
// The market is a replayed CSV (EXCHANGE stays `sim`): the sim's first EMA crossover is tens of
// minutes away at the 1 s minimum tick, while this file rises (the strategy buys once its 27
// candles are in) and then falls (it sells at a loss beyond TRADING_MAX_DAILY_LOSS, which trips).
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Response } from 'playwright-core';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
// @ts-expect-error: a plain ES module of the scripts without type declarations
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../scripts/lib/chromium.mjs';
import { http, startBot } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const CHROMIUM: string = CHROMIUM_PATH;
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);
const TOKEN = 'trading-panel-token-0123456789';

async function launch(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  onTestFinished(() => browser.close());
  return browser;
}

/**
 * 30 rising one-minute candles, 10 falling ones, then 60 flat ones (the fast EMA stays under the
 * slow one: no new entry; and the replay does not wrap around while the page is checked).
 */
function risingThenFalling(): string {
  const end = Math.floor(Date.now() / 60_000) * 60_000;
  const closes = [
    ...Array.from({ length: 30 }, (_, i) => 100 + i),
    ...Array.from({ length: 10 }, (_, i) => 126 - 3 * i),
    ...Array.from({ length: 60 }, () => 99),
  ];
  const rows = closes.map((close, i) => {
    const open = i === 0 ? close : (closes[i - 1] as number);
    const time = end - (closes.length - 1 - i) * 60_000;
    return `${time},${open},${Math.max(open, close) + 0.5},${Math.min(open, close) - 0.5},${close},10`;
  });
  return `time,open,high,low,close,volume\n${rows.join('\n')}\n`;
}

/** The page's own (used inside page.evaluate only); tsconfig has no DOM lib. */
declare const document: { querySelectorAll(s: string): ArrayLike<PageCanvas> };
interface PageCanvas {
  width: number;
  height: number;
  getContext(kind: '2d'): {
    getImageData(x: number, y: number, w: number, h: number): { data: ArrayLike<number> };
  };
}

/** Per canvas in `selector`: its size and how many distinct colours it holds (1: blank). */
function canvasStats(selector: string) {
  return Array.from(document.querySelectorAll(`${selector} canvas`)).map((c) => {
    const colours = new Set<string>();
    if (c.width > 0 && c.height > 0) {
      const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
      for (let i = 0; i < data.length && colours.size < 50; i += 4 * 7)
        colours.add(`${data[i]},${data[i + 1]},${data[i + 2]},${data[i + 3]}`);
    }
    return { width: c.width, height: c.height, colours: colours.size };
  });
}

describe.skipIf(!existsSync(CHROMIUM))('dashboard trading panel in Chromium', () => {
  it('draws the candles, fills and equity, shows a tripped protection and resets it', async () => {
    const csv = join(tempDir(), 'rise-and-fall.csv');
    writeFileSync(csv, risingThenFalling());
    const bot = await startBot({
      env: {
        CONTINUOUS_MODE: 'false',
        API_TOKEN: TOKEN,
        EXCHANGE: 'sim',
        TRADING_REPLAY_CSV: csv,
        TRADING_MAX_DAILY_LOSS: '1',
      },
    });
    const trading = async () => (await http(`${bot.url}/trading`, { token: TOKEN })).json();
    const dailyLoss = (t: { protections: { name: string; state: string }[] }) =>
      t.protections.find((p) => p.name === 'max-daily-loss')?.state;
    // A buy once 27 candles are in (27 s), a sell at a loss a few candles into the fall.
    await vi.waitFor(async () => expect(dailyLoss(await trading())).toBe('tripped'), {
      timeout: 90_000,
      interval: 500,
    });
    const fills = (await http(`${bot.url}/trading/fills`, { token: TOKEN })).json().fills;
    // Each market order walked a few levels of the book: a fill per level.
    expect(new Set(fills.map((f: { side: string }) => f.side))).toEqual(new Set(['buy', 'sell']));

    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1200 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const fetched = new Map<string, unknown>();
    page.on('response', async (res: Response) => {
      const path = new URL(res.url()).pathname;
      if (path.startsWith('/trading') && res.ok()) fetched.set(path, await res.json().catch(() => null));
    });
    await page.goto(`${bot.url}/`);

    // The account needs the token: the panel asks for it as the kill switch does.
    await page.click('#trading-unlock');
    await page.locator('#token-dialog[open]').waitFor({ timeout: 5_000 });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
    await page.locator('#trading-body:not([hidden])').waitFor({ timeout: 10_000 });

    // The candle chart and the equity curve are drawn: canvases with a size and more than one colour.
    for (const chart of ['#trading-price', '#trading-equity']) {
      await expect
        .poll(
          async () => (await page.evaluate(canvasStats, chart)).some((c) => c.width > 100 && c.colours > 2),
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
    }
    // What the panel drew from: the candles, the fills (its markers) and the equity curve.
    await expect.poll(() => fetched.has('/trading/equity')).toBe(true);
    expect((fetched.get('/trading/candles') as { candles: unknown[] }).candles.length).toBeGreaterThan(27);
    expect((fetched.get('/trading/fills') as { fills: unknown[] }).fills).toHaveLength(fills.length);
    // One marker per order (the buy and the sell), however many levels each filled at.
    expect(await page.locator('#trading-price').getAttribute('data-markers')).toBe('2');
    expect((fetched.get('/trading/equity') as { equity: unknown[] }).equity.length).toBeGreaterThan(0);

    // The tripped protection, with its reason, and a reset button.
    const tripped = page.locator('[data-protection="max-daily-loss"][data-protection-state="tripped"]');
    await tripped.waitFor({ timeout: 10_000 });
    expect(await tripped.textContent()).toContain('daily PnL -');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('trading-panel-browser.png', ARTIFACTS).pathname, fullPage: true });

    // The reset asks for the token when the tab has none, as the kill switch does.
    await page.evaluate('sessionStorage.clear()');
    await page.click('[data-reset="max-daily-loss"]');
    await page.locator('#token-dialog[open]').waitFor({ timeout: 5_000 });
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
    await page
      .locator('[data-protection="max-daily-loss"][data-protection-state="ok"]')
      .waitFor({ timeout: 10_000 });
    expect(dailyLoss(await trading())).toBe('ok');
    expect(errors).toEqual([]);
  });
});
