/**
 * Debian's Chromium as playwright-core launches it, headless, for the dashboard screenshot
 * (scripts/screenshot-dashboard.mjs) and the browser test (test/browser/dashboard.test.ts).
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--no-first-run',
];
