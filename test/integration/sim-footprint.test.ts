/**
 * An idle `sim` peer loads only what it uses: not ccxt (a real exchange only), not pg (DATABASE_URL
 * only), not the openai SDK (AI_BASE_URL only), nor the feed parser or the webhook signer. The
 * module list comes from a test preload (test/helpers/loaded-modules.mjs), not from the product.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { http, startBot } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

const PRELOAD = fileURLToPath(new URL('../helpers/loaded-modules.mjs', import.meta.url));
const TOKEN = 'footprint-test-token-0123456789';

describe('an idle sim peer', () => {
  it('trades on paper without loading ccxt, pg, openai, fast-xml-parser or standardwebhooks', async () => {
    const out = join(tempDir(), 'modules.txt');
    const bot = await startBot({
      env: {
        CONTINUOUS_MODE: 'false',
        API_TOKEN: TOKEN,
        EXCHANGE: 'sim',
        NODE_OPTIONS: `--import ${PRELOAD}`,
        LOADED_MODULES_OUT: out,
      },
    });
    await vi.waitFor(
      async () => {
        const t = (await http(`${bot.url}/trading`, { token: TOKEN })).json();
        expect(t.counters.ticks).toBeGreaterThan(2);
      },
      { timeout: 20_000, interval: 250 },
    );
    await bot.stop('SIGTERM');
    const packages = new Set(
      readFileSync(out, 'utf8')
        .split('\n')
        .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1])
        .filter(Boolean),
    );
    // The list is real: what a sim peer does use is in it.
    expect(packages).toContain('fastify');
    expect(packages).toContain('trading-signals');
    for (const unused of ['ccxt', 'pg', 'openai', 'fast-xml-parser', 'standardwebhooks'])
      expect(packages, unused).not.toContain(unused);
  });
});
