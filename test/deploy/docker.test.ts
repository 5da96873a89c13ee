/**
 * Opt-in (QB_DOCKER_TESTS=1, and a Docker engine that answers): builds the image from the Dockerfile,
 * starts docker-compose.peers.yml with 3 replicas, and checks that they form one mesh through the
 * service name, report healthy, and stop gracefully (exit 0). Everything it made is removed after.
 *
 * The compose file is used as committed, except that its build context is made absolute (the test
 * runs it from a temp project directory holding a throwaway .env.peers) and the image gets a test tag.
 */
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { http } from '../helpers/process.js';
import { waitFor } from './helpers/wait.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const REPLICAS = 3;

function composeCommand(): string[] | undefined {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0)
    return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  return undefined;
}

function skipReason(): string | undefined {
  if (process.env.QB_DOCKER_TESTS !== '1')
    return 'opt-in: set QB_DOCKER_TESTS=1 on a machine with a Docker engine';
  const info = spawnSync('docker', ['info'], { encoding: 'utf8' });
  if (info.error || info.status !== 0) {
    return `\`docker info\` fails (${(info.error?.message ?? info.stderr).trim().split('\n')[0]}): no Docker engine`;
  }
  if (!composeCommand()) return 'neither `docker compose` nor `docker-compose` is installed';
  return undefined;
}

const skip = skipReason();
if (skip) console.log(`[deploy/docker] skipped: ${skip}`);

describe.skipIf(skip !== undefined)('the image and docker-compose.peers.yml on a Docker engine', () => {
  const tag = randomBytes(3).toString('hex');
  const project = `qbt${tag}`;
  const image = `quantum-bot-test:${tag}`;
  let dir: string;
  let compose: (...args: string[]) => Promise<string>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'qb-docker-'));
    const doc = parse(readFileSync(join(ROOT, 'docker-compose.peers.yml'), 'utf8'));
    doc.services.peer.build = { context: ROOT };
    doc.services.peer.image = image;
    writeFileSync(join(dir, 'docker-compose.yml'), stringify(doc));
    writeFileSync(
      join(dir, '.env.peers'),
      `MESH_SECRET=${randomBytes(32).toString('hex')}\nAPI_TOKEN=${randomBytes(32).toString('hex')}\n`,
      { mode: 0o600 },
    );
    const [file, ...base] = composeCommand() as string[];
    compose = async (...args) =>
      (
        await run(file as string, [...base, '-p', project, '-f', join(dir, 'docker-compose.yml'), ...args], {
          cwd: dir,
          timeout: 600_000,
          maxBuffer: 64 * 1024 * 1024,
        })
      ).stdout;
  });

  afterAll(async () => {
    const problems: string[] = [];
    try {
      await compose('down', '-v', '--remove-orphans', '--timeout', '15');
    } catch (err) {
      problems.push(`compose down: ${(err as Error).message}`);
    }
    spawnSync('docker', ['image', 'rm', '-f', image], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
    expect(problems).toEqual([]);
  });

  it(`builds, starts ${REPLICAS} replicas that mesh through the service name, and stops them gracefully`, async () => {
    await compose('build');
    const size = Number((await run('docker', ['image', 'inspect', '-f', '{{.Size}}', image])).stdout.trim());
    console.log(`[deploy/docker] image ${image}: ${(size / 1e6).toFixed(1)} MB`);

    await compose('up', '-d', '--scale', `peer=${REPLICAS}`);
    const urls: string[] = [];
    for (let index = 1; index <= REPLICAS; index++) {
      const published = (await compose('port', '--index', String(index), 'peer', '9000')).trim();
      const port = Number(published.split(':').at(-1));
      expect(port, `replica ${index} publishes 9000 in the range`).toBeGreaterThanOrEqual(9001);
      expect(port).toBeLessThanOrEqual(9020);
      urls.push(`http://127.0.0.1:${port}`);
    }

    const ids = await Promise.all(
      urls.map((url) =>
        waitFor(
          `${url}/mesh`,
          async () => {
            const answer = await http(`${url}/mesh`, { timeoutMs: 2_000 });
            return answer.status === 200 ? (answer.json().self.peerId as string) : undefined;
          },
          { timeoutMs: 120_000 },
        ),
      ),
    );
    expect(new Set(ids).size).toBe(REPLICAS);
    for (const [i, url] of urls.entries()) {
      const others = ids.filter((_, j) => j !== i).sort();
      await waitFor(
        `${url} to see the ${REPLICAS - 1} others connected`,
        async () => {
          const mesh = (await http(`${url}/mesh`)).json();
          const connected = mesh.peers
            .filter((p: { state: string }) => p.state === 'connected')
            .map((p: { peerId: string }) => p.peerId)
            .sort();
          return JSON.stringify(connected) === JSON.stringify(others) ? true : undefined;
        },
        { timeoutMs: 60_000 },
      );
    }

    const containers = (await compose('ps', '-q', 'peer')).trim().split('\n').filter(Boolean);
    expect(containers).toHaveLength(REPLICAS);
    // The HEALTHCHECK (node scripts/healthcheck.mjs) reports healthy; its first run is after one interval.
    for (const id of containers) {
      await waitFor(
        `container ${id} healthy`,
        async () => {
          const status = (
            await run('docker', ['inspect', '-f', '{{.State.Health.Status}}', id])
          ).stdout.trim();
          return status === 'healthy' ? true : undefined;
        },
        { timeoutMs: 90_000, intervalMs: 1_000 },
      );
    }
    // The process runs as the image's non-root user.
    const user = (await run('docker', ['exec', containers[0] as string, 'id', '-u'])).stdout.trim();
    expect(user).not.toBe('0');

    // docker stop: SIGTERM reaches node through the init, the peer stops and exits 0, within the grace period.
    const stopStarted = Date.now();
    await compose('stop', '--timeout', '15');
    expect(Date.now() - stopStarted).toBeLessThan(15_000);
    for (const id of containers) {
      const code = (await run('docker', ['inspect', '-f', '{{.State.ExitCode}}', id])).stdout.trim();
      expect(code, `exit code of ${id}`).toBe('0');
    }
  }, 900_000);
});
