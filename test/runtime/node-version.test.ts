/**
 * bot.js refuses an unsupported Node.js with one line and exit 78 before it loads anything. Checked
 * two ways: with a preload that makes Node 24 report an old version (always runs), and with the
 * machine's own older `node` when there is one (CI machines whose system Node is 20).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BOT_JS } from '../helpers/process.js';

const EXIT_CONFIG = 78;

function runBot(nodeBinary: string, args: string[] = []) {
  const cwd = mkdtempSync(join(tmpdir(), 'qb-node-version-'));
  return spawnSync(nodeBinary, [...args, BOT_JS], {
    cwd,
    env: { PATH: process.env.PATH, CONTINUOUS_MODE: 'false', PORT: '0' },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

/** The first `node` on PATH (after this process's own) that is older than 24, if any. */
function olderSystemNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    const r = spawnSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' });
    if (r.status === 0 && Number(r.stdout.split('.')[0]) < 24) return candidate;
  }
  return undefined;
}

describe('the Node.js version guard of bot.js', () => {
  it('refuses a Node that reports version 20 with one clear line and exit 78', () => {
    const dir = mkdtempSync(join(tmpdir(), 'qb-old-node-'));
    const preload = join(dir, 'pretend-node-20.cjs');
    writeFileSync(
      preload,
      "Object.defineProperty(process, 'versions', { value: { ...process.versions, node: '20.19.0' } });\n",
    );
    const r = runBot(process.execPath, ['--require', preload]);
    expect(r.status).toBe(EXIT_CONFIG);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('Node.js 20.19.0 found');
    expect(lines[0]).toContain('Node.js 24');
    expect(lines[0]).toContain('scripts/use-node.sh');
    expect(r.stdout).toBe('');
  });

  it('refuses the machine’s own older node, when it has one', (ctx) => {
    const old = olderSystemNode();
    if (!old) {
      console.log('[runtime] no node older than 24 on this machine: real old-node check skipped');
      ctx.skip();
      return;
    }
    const r = runBot(old);
    expect(r.status).toBe(EXIT_CONFIG);
    expect(r.stderr).toMatch(/Node\.js 2\d\.\d+\.\d+ found, Node\.js 24 LTS or newer needed/);
  });

  it('runs under the Node 24 this suite runs on', () => {
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(24);
  });
});
