/**
 * ecosystem.config.cjs as PM2 reads it: evaluated in a fresh node process with a given environment
 * (the file reads its settings and the secrets when it is loaded).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ECOSYSTEM = join(ROOT, 'ecosystem.config.cjs');

interface App {
  name: string;
  script: string;
  cwd: string;
  exec_mode: string;
  instances: number;
  autorestart: boolean;
  kill_timeout: number;
  stop_exit_codes: number[];
  exp_backoff_restart_delay: number;
  env: Record<string, string>;
}

function load(env: Record<string, string>): App[] {
  const out = execFileSync(
    process.execPath,
    ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(ECOSYSTEM)}).apps))`],
    {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      encoding: 'utf8',
      cwd: tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return JSON.parse(out) as App[];
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qb-eco-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const secrets = () => ({
  MESH_SECRET: randomBytes(32).toString('hex'),
  API_TOKEN: randomBytes(32).toString('hex'),
});

describe('ecosystem.config.cjs', () => {
  it('defaults to 3 peers on 127.0.0.1:9001..9003, each with its own data dir and the two others as static peers', () => {
    const shared = secrets();
    const root = tempDir();
    const apps = load({ ...shared, QB_DATA_ROOT: root });
    expect(apps.map((a) => a.name)).toEqual(['quantum-bot-1', 'quantum-bot-2', 'quantum-bot-3']);
    expect(apps.map((a) => a.env.PORT)).toEqual(['9001', '9002', '9003']);
    expect(apps.map((a) => a.env.DATA_DIR)).toEqual([1, 2, 3].map((n) => join(root, `peer-${n}`)));
    expect(apps.map((a) => a.env.MESH_PEERS)).toEqual([
      '127.0.0.1:9002,127.0.0.1:9003',
      '127.0.0.1:9001,127.0.0.1:9003',
      '127.0.0.1:9001,127.0.0.1:9002',
    ]);
    for (const app of apps) {
      expect(app.script).toBe('bot.js');
      expect(app.cwd).toBe(ROOT.replace(/\/$/, ''));
      expect(app).toMatchObject({ exec_mode: 'fork', instances: 1, autorestart: true });
      expect(app.kill_timeout).toBeGreaterThanOrEqual(10_000);
      expect(app.stop_exit_codes).toContain(78);
      expect(app.exp_backoff_restart_delay).toBeGreaterThan(0);
      expect(app.env).toMatchObject({
        CONTINUOUS_MODE: 'false',
        AUTO_START: 'true',
        AUTO_RECONNECT: 'true',
        HOST: '127.0.0.1',
        MESH_DISCOVERY: 'static',
        LOG_DIR: join(app.env.DATA_DIR as string, 'logs'),
        ...shared,
      });
    }
  });

  it('takes the count, ports, host and data root from QB_* variables', () => {
    const root = tempDir();
    const apps = load({
      ...secrets(),
      QB_PEERS: '2',
      QB_BASE_PORT: '19100',
      QB_HOST: '0.0.0.0',
      QB_DATA_ROOT: root,
    });
    expect(apps.map((a) => [a.name, a.env.PORT, a.env.HOST, a.env.MESH_PEERS])).toEqual([
      ['quantum-bot-1', '19100', '0.0.0.0', '127.0.0.1:19101'],
      ['quantum-bot-2', '19101', '0.0.0.0', '127.0.0.1:19100'],
    ]);
  });

  it('without secrets in the environment, generates them once into a 0600 file and reuses them', () => {
    const root = tempDir();
    const first = load({ QB_DATA_ROOT: root });
    const file = join(root, 'secrets.env');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const stored = Object.fromEntries(
      readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .map((line) => line.split('=') as [string, string]),
    );
    expect(stored.MESH_SECRET).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.API_TOKEN).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.MESH_SECRET).not.toBe(stored.API_TOKEN);
    for (const app of first) expect(app.env).toMatchObject(stored);
    // A second start (pm2 restart, a reboot) uses the same ones.
    const second = load({ QB_DATA_ROOT: root });
    for (const app of second) expect(app.env).toMatchObject(stored);
    // The environment wins over the file.
    const fromEnv = secrets();
    for (const app of load({ ...fromEnv, QB_DATA_ROOT: root })) expect(app.env).toMatchObject(fromEnv);
  });

  it('QB_PEERS=1 is the single-peer form of the guide (pm2 start bot.js --name quantum-bot)', () => {
    const apps = load({ QB_PEERS: '1' });
    expect(apps).toHaveLength(1);
    const [app] = apps as [App];
    expect(app.name).toBe('quantum-bot');
    expect(app.script).toBe('bot.js');
    expect(app.kill_timeout).toBeGreaterThanOrEqual(10_000);
    // Only CONTINUOUS_MODE (and NODE_ENV) are fixed; the rest comes from the user's environment and .env.
    expect(app.env).toEqual({ NODE_ENV: 'production', CONTINUOUS_MODE: 'false' });
  });

  it('refuses a bad QB_PEERS with a message naming it', () => {
    expect(() => load({ QB_PEERS: 'three' })).toThrow(/QB_PEERS must be a whole number/);
  });
});
