// The dashboard in real headless Chromium (Debian's, driven by playwright-core) against 3 real peer
// processes: the fleet appears, a SIGKILLed peer goes down and comes back without a reload, and the
// kill switch set from the page (after a wrong token) shows active on every peer's dashboard.
import { existsSync, mkdirSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
// @ts-expect-error: a plain ES module of the scripts without type declarations
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../scripts/lib/chromium.mjs';
import { expectFullMesh, newSecret, startMesh } from '../helpers/mesh.js';
import { http, startBot } from '../helpers/process.js';

const CHROMIUM: string = CHROMIUM_PATH;
const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url);
const TOKEN = 'browser-test-token-0123456789';
const PEERS = ['peer-a', 'peer-b', 'peer-c'] as const;

if (!existsSync(CHROMIUM)) {
  console.log(`browser test skipped: ${CHROMIUM} is missing (apt-get install chromium; .ci/run does)`);
}

async function launch(): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  });
  onTestFinished(() => browser.close());
  return browser;
}

/** The page's own (used inside page.evaluate only); tsconfig has no DOM lib. */
declare const sessionStorage: { getItem(key: string): string | null };
declare function getComputedStyle(node: unknown): { backgroundColor: string };

const peerCard = (page: Page, peerId: string, state: string) =>
  page.locator(`[data-peer-id="${peerId}"][data-peer-state="${state}"]`);

describe.skipIf(!existsSync(CHROMIUM))('dashboard in Chromium', () => {
  it('shows the mesh live, follows a crash and a return, and sets the kill switch on every peer', async () => {
    const members = await startMesh({ peerIds: PEERS, secret: newSecret(), token: TOKEN });
    await vi.waitFor(() => expectFullMesh(members), { timeout: 20_000, interval: 200 });
    const [a, b, c] = members as [(typeof members)[0], (typeof members)[0], (typeof members)[0]];

    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${a.bot.url}/`);
    await expect
      .poll(() => page.locator('[data-peer-state="connected"]').count(), { timeout: 10_000 })
      .toBe(3);
    await expect.poll(() => page.locator('#feed-status').textContent()).toBe('live');
    await expect.poll(() => page.locator('#graph line[data-link-state="connected"]').count()).toBe(3);

    // A crash shows without a reload...
    await c.bot.kill();
    await peerCard(page, 'peer-c', 'down').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.locator('#events').textContent()).toContain('peer-c is down');
    // ...and its subsystems are what it last reported, greyed, never a green "running".
    const downSubs = peerCard(page, 'peer-c', 'down').locator('.subs');
    expect(await downSubs.getAttribute('data-stale')).toBe('true');
    expect(await downSubs.textContent()).toContain('last known');
    const chip = downSubs.locator('li[data-sub-state="running"]').first();
    const liveChip = peerCard(page, 'peer-b', 'connected').locator('li[data-sub-state="running"]').first();
    const background = (l: typeof chip) => l.evaluate((node) => getComputedStyle(node).backgroundColor);
    // Polled: the cards are re-rendered on every delta, and a node caught mid-swap has no style yet.
    await expect
      .poll(async () => {
        const [stale, live] = [await background(chip), await background(liveChip)];
        return stale !== '' && live !== '' && stale !== live;
      })
      .toBe(true);
    // ...and so does the return of the same peer (same data dir, same port).
    await startBot({ env: c.env, dirs: c.bot.dirs });
    await peerCard(page, 'peer-c', 'connected').waitFor({ timeout: 15_000 });

    // The kill switch from the page: no reason is refused first...
    await page.click('#ks-activate');
    await expect.poll(() => page.locator('#message').textContent()).toContain('Give a reason');
    // ...then the token dialog says where the token is, and the reason message is gone.
    await page.fill('#ks-reason', 'browser test');
    await page.click('#ks-activate');
    await page.locator('#token-dialog[open]').waitFor({ timeout: 5_000 });
    expect(await page.locator('#token-hint').textContent()).toBe(
      "This peer's token is API_TOKEN in the peer's environment.",
    );
    expect(await page.locator('#message').isHidden()).toBe(true);
    // A wrong token is refused with a clear message, then the right one.
    await page.fill('#token-input', 'not-the-token-0000000000');
    await page.click('#token-ok');
    await expect.poll(() => page.locator('#message').textContent()).toContain('Wrong API token');
    await page.fill('#token-input', TOKEN);
    await page.click('#token-ok');
    await page.locator('[data-kill-switch="active"]').waitFor({ timeout: 5_000 });
    // Kept for the tab once the POST is answered (the live feed may show the switch a moment sooner).
    await expect.poll(() => page.evaluate("sessionStorage.getItem('quantum-bot.api-token')")).toBe(TOKEN);
    expect(page.url()).not.toContain(TOKEN);

    // Every peer's own dashboard shows it, because the change went through the mesh.
    for (const m of [b, c]) {
      const other = await browser.newPage();
      await other.goto(`${m.bot.url}/`);
      await other.locator('[data-kill-switch="active"]').waitFor({ timeout: 10_000 });
      await expect.poll(() => other.locator('#ks-detail').textContent()).toContain('browser test');
      await other.close();
    }

    // Every card of this page shows the new epoch too.
    for (const id of PEERS) {
      await expect
        .poll(() => page.locator(`[data-peer-id="${id}"] [data-card-kill-switch]`).textContent())
        .toMatch(/^ACTIVE \(epoch \d+\)$/);
    }

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: new URL('dashboard-browser.png', ARTIFACTS).pathname });
    expect(errors).toEqual([]);
  });

  it("updates every connected peer's card from a kill-switch change, before their next status", async () => {
    // A status exchange only at link time: a card could show the new epoch before the fix only at
    // the next sync, ten minutes away.
    const members = await startMesh({
      peerIds: ['peer-x', 'peer-y'],
      secret: newSecret(),
      token: TOKEN,
      env: { MESH_SYNC_INTERVAL: '600000', QB_TOKEN_HINT: 'API_TOKEN in /srv/fleet/peers.env' },
    });
    await vi.waitFor(() => expectFullMesh(members), { timeout: 20_000, interval: 200 });
    const [x] = members as [(typeof members)[0]];

    const browser = await launch();
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(`${x.bot.url}/`);
    const cardOf = (id: string) => page.locator(`[data-peer-id="${id}"] [data-card-kill-switch]`);
    await expect.poll(() => cardOf('peer-y').textContent(), { timeout: 10_000 }).toBe('inactive');

    // The change, made through the API, reaches the page through the /live feed.
    const res = await http(`${x.bot.url}/kill-switch`, {
      method: 'POST',
      token: TOKEN,
      body: { activate: true, reason: 'epoch test' },
    });
    expect(res.status).toBe(200);
    const epoch = res.json().epoch as number;
    for (const id of ['peer-x', 'peer-y']) {
      await expect.poll(() => cardOf(id).textContent(), { timeout: 5_000 }).toBe(`ACTIVE (epoch ${epoch})`);
    }

    // The token dialog names where the launcher put the token.
    await page.fill('#ks-reason', 'resume');
    await page.click('#ks-deactivate');
    await page.locator('#token-dialog[open]').waitFor({ timeout: 5_000 });
    expect(await page.locator('#token-hint').textContent()).toBe(
      "This peer's token is API_TOKEN in /srv/fleet/peers.env.",
    );
    expect(errors).toEqual([]);
  });
});
