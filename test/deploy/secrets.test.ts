/**
 * No secret is baked into a committed deployment file, the example env file cannot be run as is, and
 * the real env file stays out of git and out of the image.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FILES = [
  'Dockerfile',
  '.dockerignore',
  'docker-compose.peers.yml',
  'docker-compose.named.yml',
  'ecosystem.config.cjs',
  '.env.peers.example',
  'Procfile',
  'scripts/healthcheck.mjs',
  'docs/deploy.md',
];
const SECRET_NAMES = ['MESH_SECRET', 'API_TOKEN'];

/**
 * A value that cannot be a secret: shorter than the 16 characters the peer requires of one (prose
 * like "API_TOKEN: the" included), a placeholder, a variable or command substitution, code.
 */
function isPlaceholder(value: string): boolean {
  const v = value.replace(/^["'`]|["'`,;]$/g, '');
  return (
    v.length < 16 ||
    /^(REPLACE_ME|changeme|<[^>]*>|\.\.\.)$/i.test(v) ||
    v.startsWith('$') ||
    v.includes('process.env') ||
    /^(fromEnv|stored|secrets|randomBytes)\b/.test(v)
  );
}

/** Strings that look like generated secrets: long hex, or long base64/base64url with mixed classes. */
function secretLooking(text: string): string[] {
  const hits = [...text.matchAll(/\b[0-9a-f]{32,}\b/gi)].map((m) => m[0]);
  for (const m of text.matchAll(/[A-Za-z0-9+/_-]{40,}={0,2}/g)) {
    const s = m[0];
    if (/[a-z]/.test(s) && /[A-Z]/.test(s) && /\d/.test(s)) hits.push(s);
  }
  return hits;
}

describe('secrets in deployment files', () => {
  for (const file of FILES) {
    it(`${file} holds no value of MESH_SECRET or API_TOKEN and nothing that looks like a secret`, () => {
      const path = join(ROOT, file);
      expect(existsSync(path), `${file} exists`).toBe(true);
      const text = readFileSync(path, 'utf8');
      for (const [number, line] of text.split('\n').entries()) {
        for (const name of SECRET_NAMES) {
          for (const m of line.matchAll(new RegExp(`\\b${name}\\b["']?\\s*[:=]\\s*(\\S*)`, 'g'))) {
            expect(isPlaceholder(m[1] ?? ''), `${file}:${number + 1}: ${line.trim()}`).toBe(true);
          }
        }
      }
      expect(secretLooking(text), file).toEqual([]);
    });
  }

  it('the scan finds a real secret when there is one', () => {
    expect(
      secretLooking('MESH_SECRET=3f9a0c6e1d2b4a5f8e7d6c5b4a392817f0e1d2c3b4a5968778695a4b3c2d1e0f'),
    ).toHaveLength(1);
    expect(isPlaceholder('3f9a0c6e1d2b4a5f8e7d')).toBe(false);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a compose interpolation, not a JS template.
    expect(isPlaceholder('${MESH_SECRET:?set it in .env.peers}')).toBe(true);
    expect(isPlaceholder('REPLACE_ME')).toBe(true);
  });

  it('.env.peers.example cannot run as is: the peer refuses its placeholders', () => {
    const example = parseEnv(readFileSync(join(ROOT, '.env.peers.example'), 'utf8'));
    expect(Object.keys(example).sort()).toEqual([...SECRET_NAMES].sort());
    const cwd = mkdtempSync(join(tmpdir(), 'qb-secrets-'));
    try {
      let error: unknown;
      try {
        loadConfig({ ...example, MESH_DISCOVERY: 'dns', MESH_DNS_NAME: 'peer' }, cwd);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const problems = (error as ConfigError).problems.join('\n');
      for (const name of SECRET_NAMES) expect(problems).toContain(name);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('.env.peers is ignored by git', () => {
    const check = spawnSync('git', ['check-ignore', '-q', '.env.peers'], { cwd: ROOT });
    expect(check.status).toBe(0);
  });
});
