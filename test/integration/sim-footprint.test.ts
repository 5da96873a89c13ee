/**
 * An idle `sim` peer loads only what it uses: not ccxt (a real exchange only), not pg (DATABASE_URL
 * only), not the openai SDK (AI_BASE_URL only), nor the feed parser or the webhook signer. The
 * module list comes from a test preload (test/helpers/loaded-modules.mjs), not from the product.
 * And it stays within the issue's 120 MiB: start-up does not leave V8's young generation at its
 * maximum (bot.js holds it while starting).
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

/** The peer's own figure from /metrics (prom-client's default metrics) with this label. */
function metric(text: string, name: string, label: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  if (!line) throw new Error(`${name} with ${label} is not in /metrics`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('an idle sim peer, single process', () => {
  it('keeps its young generation small after start-up and its RSS within 120 MiB', async () => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false', API_TOKEN: TOKEN, EXCHANGE: 'sim' } });
    await vi.waitFor(
      async () => {
        const t = (await http(`${bot.url}/trading`, { token: TOKEN })).json();
        expect(t.counters.ticks).toBeGreaterThan(2);
      },
      { timeout: 20_000, interval: 250 },
    );
    const text = (await bot.get('/metrics')).body;
    // V8's young generation, left at its maximum (32 MiB) by start-up before bot.js held it.
    const young = metric(text, 'qb_nodejs_heap_space_size_total_bytes', 'space="new"');
    expect(young).toBeLessThanOrEqual(8 * 2 ** 20);
    const rssMiB = (Number(readFileSync(`/proc/${bot.pid}/statm`, 'utf8').split(' ')[1]) * 4096) / 2 ** 20;
    expect(rssMiB).toBeLessThan(120);
    await bot.stop('SIGTERM');
  });
});
