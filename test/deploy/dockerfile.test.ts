/**
 * Static checks of the Dockerfile and .dockerignore (no Docker engine is needed): what the image must
 * be, checked against the file itself.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { execForm, parseDockerfile, type Stage } from './helpers/dockerfile.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dockerfile = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const build = dockerfile.stages[0] as Stage;
const runStage = dockerfile.stages.at(-1) as Stage;

const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);
const runs = (stage: Stage) =>
  all(stage, 'RUN')
    .map((i) => i.args)
    .join('\n');

/** ENV key=value pairs of a stage (the `ENV a=1 b=2` form). */
function envOf(stage: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const i of all(stage, 'ENV')) {
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S+)/g)) {
      env[m[1] as string] = (m[2] as string).replace(/^"|"$/g, '');
    }
  }
  return env;
}

/** Whether .dockerignore lets `path` into the build context (last matching pattern wins). */
function inBuildContext(path: string): boolean {
  const patterns = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let included = true;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const p = (negated ? pattern.slice(1) : pattern).replace(/\/$/, '');
    const matches = p === '*' || p === '**' || path === p || path.startsWith(`${p}/`);
    if (matches) included = negated;
  }
  return included;
}

describe('Dockerfile', () => {
  it('is multi-stage: a build stage and a run stage on the same Node LTS slim base', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    expect(build.name).toBe('build');
    // The native addon built in the first stage must match the Node ABI and glibc of the last.
    expect(runStage.from).toBe(build.from);
    const base = runStage.from.replace(
      /^\$\{?(\w+)\}?$/,
      (_, name: string) => dockerfile.globalArgs.get(name) ?? '',
    );
    expect(base).toMatch(/^node:24(\.\d+)*-(bookworm-)?slim(@sha256:[0-9a-f]{64})?$/);
  });

  it('builds with dev dependencies and the native toolchain, then keeps production dependencies only', () => {
    const script = runs(build);
    expect(script).toMatch(/\bnpm ci\b/);
    expect(script).toMatch(/\bpython3\b/);
    expect(script).toMatch(/\bmake\b/);
    expect(script).toMatch(/\bg\+\+/);
    expect(script).toMatch(/npm rebuild better-sqlite3/);
    expect(script).toMatch(/npm run build/);
    expect(script).toMatch(/npm prune --omit=dev/);
    // No compiler, no npm install in the run stage.
    expect(runs(runStage)).not.toMatch(/g\+\+|build-essential|npm (ci|install)/);
  });

  it('copies only what runs: dist, production node_modules, the dashboard files, bot.js, package.json', () => {
    const copies = all(runStage, 'COPY').map((i) => i.args);
    const fromBuild = copies.filter((c) => c.startsWith('--from=build'));
    expect(fromBuild.some((c) => /\/app\/node_modules\s/.test(c))).toBe(true);
    expect(fromBuild.some((c) => /\/app\/dist\s/.test(c))).toBe(true);
    const fromContext = copies.filter((c) => !c.startsWith('--from='));
    const sources = fromContext.flatMap((c) =>
      c
        .split(/\s+/)
        .filter((w) => !w.startsWith('--'))
        .slice(0, -1),
    );
    expect(sources).toEqual(
      expect.arrayContaining(['src/http/dashboard', 'bot.js', 'scripts/healthcheck.mjs']),
    );
    // The whole source tree stays out of the run stage: only the dashboard's static files.
    expect(sources).not.toContain('src');
    // Every file copied from the context exists and is let in by .dockerignore.
    const contextSources = dockerfile.stages
      .flatMap((s) => all(s, 'COPY'))
      .filter((i) => !i.args.startsWith('--from='))
      .flatMap((i) =>
        i.args
          .split(/\s+/)
          .filter((w) => !w.startsWith('--'))
          .slice(0, -1),
      );
    for (const source of contextSources) {
      expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
      expect(inBuildContext(source), `${source} is in the build context`).toBe(true);
    }
  });

  it('keeps secrets, local data and host builds out of the build context', () => {
    for (const path of [
      '.env',
      '.env.peers',
      'data/peer/api-token',
      'node_modules/x',
      'dist/main.js',
      '.git/config',
    ]) {
      expect(inBuildContext(path), path).toBe(false);
    }
  });

  it('runs as a non-root user with /data and /logs as volumes that DATA_DIR and LOG_DIR point to', () => {
    const users = all(runStage, 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = (users.at(-1)?.args ?? '').split(':')[0];
    expect(['root', '0', '']).not.toContain(user);
    // The user is set after every RUN: nothing later runs as root.
    const lastUser = runStage.instructions.lastIndexOf(users.at(-1) as (typeof users)[number]);
    expect(runStage.instructions.slice(lastUser).some((i) => i.keyword === 'RUN')).toBe(false);

    const volumes = all(runStage, 'VOLUME').flatMap((i) => execForm(i.args) ?? i.args.split(/\s+/));
    expect(volumes).toEqual(expect.arrayContaining(['/data', '/logs']));
    expect(envOf(runStage)).toMatchObject({
      DATA_DIR: '/data',
      LOG_DIR: '/logs',
      HOST: '0.0.0.0',
      PORT: '9000',
    });
    // The writable directories belong to that user (a fresh volume copies this ownership).
    expect(runs(runStage)).toMatch(new RegExp(`chown ${user}(:\\w+)? /data /logs`));
    expect(all(runStage, 'EXPOSE').map((i) => i.args)).toContain('9000');
  });

  it('has a HEALTHCHECK that runs node against /health (no curl in slim images)', () => {
    const [healthcheck] = all(runStage, 'HEALTHCHECK');
    expect(healthcheck).toBeDefined();
    const command = execForm((healthcheck?.args ?? '').replace(/^(--\S+\s+)*CMD\s+/, ''));
    expect(command?.[0]).toBe('node');
    const script = command?.[1] ?? '';
    expect(script).toBe('/app/scripts/healthcheck.mjs');
    // The image has that script where the HEALTHCHECK looks for it, and the script asks /health.
    expect(
      all(runStage, 'COPY').some((c) => c.args === 'scripts/healthcheck.mjs ./scripts/healthcheck.mjs'),
    ).toBe(true);
    expect(all(runStage, 'WORKDIR').at(-1)?.args).toBe('/app');
    expect(readFileSync(join(ROOT, 'scripts/healthcheck.mjs'), 'utf8')).toContain("path: '/health'");
  });

  it('starts node bot.js in exec form, so node itself receives SIGTERM', () => {
    const cmds = all(runStage, 'CMD');
    expect(cmds).toHaveLength(1);
    expect(execForm(cmds[0]?.args ?? '')).toEqual(['node', 'bot.js']);
    expect(all(runStage, 'ENTRYPOINT')).toHaveLength(0);
    const stopSignal = all(runStage, 'STOPSIGNAL').at(-1)?.args ?? 'SIGTERM';
    expect(stopSignal).toBe('SIGTERM');
    // The container runtime restarts the process: no second supervisor inside.
    expect(envOf(runStage).CONTINUOUS_MODE).toBe('false');
  });
});
