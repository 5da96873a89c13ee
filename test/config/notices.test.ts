/**
 * What a new user got wrong without a word: a .env line that is not NAME=value, a misspelt name, a
 * duration written in the old seconds. Each starts the peer with a warning that says what to fix.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closest, editDistance } from '../../src/config/suggest.js';
import { type Config, loadConfig } from '../../src/config.js';
import { startBot } from '../helpers/process.js';
import { tempDir } from '../helpers/tmp.js';

function withEnvFile(content: string, env: Record<string, string> = {}): Readonly<Config> {
  const cwd = tempDir();
  writeFileSync(join(cwd, '.env'), content);
  return loadConfig(env, cwd);
}

describe('configuration notices', () => {
  it('names the .env file it read, and none when there is none', () => {
    const c = withEnvFile('PORT=9100\n');
    expect(c.notices.envFile).toMatch(/\.env$/);
    expect(c.port).toBe(9100);
    expect(c.notices.warnings).toEqual([]);
    expect(loadConfig({}, tempDir()).notices.envFile).toBeUndefined();
  });

  it('warns about a line that is not NAME=value, with its line number', () => {
    const c = withEnvFile('# a comment\n\nPORT 9100\nAUTO_START=true\n');
    expect(c.port).toBe(9000);
    expect(c.notices.warnings).toHaveLength(1);
    expect(c.notices.warnings[0]).toMatch(/\.env:3 is not NAME=value and is ignored: "PORT 9100"/);
  });

  it('does not take a quoted value that spans lines for malformed lines', () => {
    const c = withEnvFile('MESH_CLUSTER=one\nAI_MODEL="a\nb c\nd"\nPORT=9001\n');
    expect(c.notices.warnings).toEqual([]);
    expect(c.port).toBe(9001);
  });

  it('suggests the variable a misspelt .env name was meant to be', () => {
    const c = withEnvFile('PORTT=9106\nMESH_SECERT=0123456789abcdef0\nSOMETHING_ELSE=1\n');
    expect(c.port).toBe(9000);
    expect(c.notices.warnings).toHaveLength(3);
    expect(c.notices.warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/unknown variable PORTT; did you mean PORT\?/),
        expect.stringMatching(/unknown variable MESH_SECERT; did you mean MESH_SECRET\?/),
        expect.stringMatching(/unknown variable SOMETHING_ELSE \(ignored\)/),
      ]),
    );
  });

  it('suggests near misses in the environment, but leaves the usual variables alone', () => {
    const env = { PORTT: '9106', HOME: '/root', PATH: '/bin', USER: 'x', TERM: 'xterm', MESH_PERS: 'a:1' };
    const warnings = loadConfig(env, tempDir()).notices.warnings;
    expect(warnings).toEqual([
      expect.stringMatching(/environment: unknown variable PORTT; did you mean PORT\?/),
      expect.stringMatching(/environment: unknown variable MESH_PERS; did you mean MESH_PEERS\?/),
    ]);
  });

  it('warns when a duration reads as old seconds (HEALTH_CHECK_INTERVAL=3600 is 3.6 s)', () => {
    const c = withEnvFile('HEALTH_CHECK_INTERVAL=3600\n');
    expect(c.healthCheckIntervalMs).toBe(3600);
    expect(c.notices.warnings).toEqual([
      expect.stringContaining(
        'HEALTH_CHECK_INTERVAL=3600 is 3.6 s (the unit is milliseconds); if you meant 3600 seconds (1 h), write HEALTH_CHECK_INTERVAL=3600000',
      ),
    ]);
    expect(loadConfig({ HEALTH_CHECK_INTERVAL: '10000' }, tempDir()).notices.warnings).toEqual([]);
  });

  it('measures edits as a person would', () => {
    expect(editDistance('PORTT', 'PORT')).toBe(1);
    expect(editDistance('PROT', 'PORT')).toBe(1);
    expect(closest('HOTS', ['HOST'], 1)).toBe('HOST');
    // Two edits apart, and short: HOME is not a misspelt HOST.
    expect(closest('HOME', ['HOST'], 2)).toBeUndefined();
    expect(closest('PWD', ['PORT'], 1)).toBeUndefined();
  });

  it('logs at start which .env and DATA_DIR it uses, and each warning', async () => {
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false', PORTT: '9106' } });
    await bot.stop('SIGTERM');
    const out = bot.stdout();
    expect(out).toContain('configuration: no .env file in the working directory');
    expect(out).toContain(bot.dirs.dataDir);
    expect(out).toContain('unknown variable PORTT; did you mean PORT?');
  });
});
