/**
 * scripts/healthcheck.mjs, the HEALTHCHECK of the image and the compose files, run against a real peer
 * process, a stopped port and an unhealthy answer.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { freePort, LOOPBACK, startBot } from '../helpers/process.js';

const SCRIPT = fileURLToPath(new URL('../../scripts/healthcheck.mjs', import.meta.url));

/** Runs the probe as Docker does (a separate node process); async, so a server in this process can answer. */
function probe(env: Record<string, string>, cwd = tmpdir()): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      cwd,
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 15_000,
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      out += s;
    });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}

describe('scripts/healthcheck.mjs', () => {
  it('exits 0 while the peer answers /health, whether HOST is a wildcard or the address itself', async () => {
    const bot = await startBot();
    for (const host of ['0.0.0.0', LOOPBACK, '']) {
      const { code, out } = await probe({ PORT: String(bot.port), HOST: host });
      expect(out).toContain(`healthy: GET http://${LOOPBACK}:${bot.port}/health 200`);
      expect(code).toBe(0);
    }
    // PORT from ./.env, as the peer itself reads it.
    const cwd = mkdtempSync(join(tmpdir(), 'qb-health-'));
    onTestFinished(() => rmSync(cwd, { recursive: true, force: true }));
    writeFileSync(join(cwd, '.env'), `PORT=${bot.port}\n`);
    expect((await probe({}, cwd)).code).toBe(0);

    // The same peer, stopped: unhealthy.
    await bot.stop('SIGTERM');
    const after = await probe({ PORT: String(bot.port), HOST: '0.0.0.0' });
    expect(after.code).toBe(1);
    expect(after.out).toMatch(/^unhealthy: .*ECONNREFUSED/);
  });

  it('exits 1 when /health answers anything but 200', async () => {
    const server = createServer((_req, res) => {
      res.statusCode = 503;
      res.end('{}');
    });
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, LOOPBACK, resolve));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { code, out } = await probe({ PORT: String(port), HOST: LOOPBACK });
    expect(code).toBe(1);
    expect(out).toContain('answered 503');
  });
});
