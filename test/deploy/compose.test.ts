/**
 * The compose files: docker-compose validates them (when installed), and what matters in them is
 * checked on the parsed YAML: scaling, restart policy, healthcheck, DNS discovery, volumes, the env
 * file, and that the environment they give the peer is one the peer accepts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PEERS_FILE = 'docker-compose.peers.yml';
const NAMED_FILE = 'docker-compose.named.yml';

// biome-ignore lint/suspicious/noExplicitAny: compose documents are checked field by field.
type Service = Record<string, any>;

function load(file: string): { services: Record<string, Service>; volumes?: Record<string, unknown> } {
  return parse(readFileSync(join(ROOT, file), 'utf8'), { merge: true });
}

/** `environment` as a map, whether written as a map or a list of KEY=value. */
function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry: string) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

const envFiles = (service: Service): string[] =>
  [service.env_file ?? []].flat().map((f: string | { path: string }) => (typeof f === 'string' ? f : f.path));

const containerPort = (port: string) => port.split(':').at(-1);
const hostPart = (port: string) => port.split(':').slice(0, -1).at(-1) ?? '';

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qb-compose-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The peer's own configuration loader accepts this service's environment (plus real secrets). */
function peerConfig(service: Service) {
  return loadConfig(
    {
      ...environment(service),
      MESH_SECRET: randomBytes(32).toString('hex'),
      API_TOKEN: randomBytes(32).toString('hex'),
    },
    tempDir(),
  );
}

function checkCommon(name: string, service: Service): void {
  expect(service.restart, `${name}: restart`).toBe('unless-stopped');
  expect(service.build, `${name}: built from the Dockerfile`).toBeDefined();
  expect(service.init, `${name}: an init as PID 1`).toBe(true);
  expect(envFiles(service), `${name}: secrets from the env file`).toContain('.env.peers');
  const test: string[] = service.healthcheck?.test ?? [];
  expect(test.slice(0, 2), `${name}: healthcheck`).toEqual(['CMD', 'node']);
  expect(test[2]).toBe('/app/scripts/healthcheck.mjs');
  // No secret in the compose file itself: they come from .env.peers only.
  expect(Object.keys(environment(service))).not.toContain('MESH_SECRET');
  expect(Object.keys(environment(service))).not.toContain('API_TOKEN');
  // The graceful stop (up to 8 s) fits before docker's SIGKILL.
  expect(Number.parseInt(String(service.stop_grace_period ?? '10s'), 10)).toBeGreaterThanOrEqual(10);
  const config = peerConfig(service);
  expect(config.continuousMode, `${name}: docker restarts the process, no second supervisor`).toBe(false);
  expect(config.port).toBe(9000);
  expect(config.host).toBe('0.0.0.0');
  expect(config.dataDir).toBe('/data');
  expect(config.logDir).toBe('/logs');
}

describe(PEERS_FILE, () => {
  const doc = load(PEERS_FILE);
  const [serviceName, peer] = Object.entries(doc.services)[0] as [string, Service];

  it('has one scalable peer service: no container_name, no fixed single host port, a published port range', () => {
    expect(Object.keys(doc.services)).toEqual(['peer']);
    expect(peer.container_name).toBeUndefined();
    expect(peer.hostname).toBeUndefined();
    const ports: string[] = peer.ports.map(String);
    expect(ports.length).toBeGreaterThan(0);
    for (const port of ports) {
      expect(containerPort(port)).toBe('9000');
      const range = /^(\d+)-(\d+)$/.exec(hostPart(port));
      expect(range, `${port} publishes a host port range`).not.toBeNull();
      const [from, to] = [Number(range?.[1]), Number(range?.[2])];
      // Room for at least 3 peers (the documented example) and more.
      expect(to - from + 1).toBeGreaterThanOrEqual(3);
    }
  });

  it('restarts unless stopped, checks /health, reads secrets from .env.peers, runs one process per container', () => {
    checkCommon(serviceName, peer);
  });

  it('discovers the replicas through DNS of its own service name', () => {
    const config = peerConfig(peer);
    expect(config.mesh.discovery).toContain('dns');
    expect(config.mesh.dnsName).toBe(serviceName);
    // DNS finds every replica; nothing needs a static list or multicast.
    expect(config.mesh.peers).toEqual([]);
  });

  it('gives every replica its own volume for /data (and /logs), with no name a second replica would share', () => {
    const volumes: string[] = peer.volumes.map((v: string | { target: string }) =>
      typeof v === 'string' ? v : v.target,
    );
    const data = volumes.find((v) => v.split(':').includes('/data'));
    expect(data).toBeDefined();
    // An anonymous volume ("/data"): each replica gets a fresh one. "name:/data" would be shared.
    expect(data).toBe('/data');
    expect(volumes).toContain('/logs');
  });
});

describe(NAMED_FILE, () => {
  const doc = load(NAMED_FILE);
  const names = Object.keys(doc.services);

  it('has three named peers with fixed host ports 9001-9003 and their own named volumes', () => {
    expect(names).toEqual(['peer-a', 'peer-b', 'peer-c']);
    const hostPorts = names.map((n) => hostPart(String(doc.services[n]?.ports?.[0])));
    expect(hostPorts).toEqual(['9001', '9002', '9003']);
    const dataVolumes = names.map((n) => {
      const entry = ((doc.services[n]?.volumes ?? []) as string[]).find((v) => v.endsWith(':/data')) ?? '';
      return entry.split(':')[0] as string;
    });
    expect(new Set(dataVolumes).size).toBe(3);
    for (const volume of dataVolumes) expect(Object.keys(doc.volumes ?? {})).toContain(volume);
  });

  it('restarts unless stopped, checks /health, reads secrets from .env.peers; each peer lists the two others', () => {
    const ids = new Set<string>();
    for (const name of names) {
      const service = doc.services[name] as Service;
      checkCommon(name, service);
      const config = peerConfig(service);
      expect(config.peerId).toBe(name);
      ids.add(config.peerId as string);
      expect(config.mesh.discovery).toEqual(['static']);
      expect([...config.mesh.peers].sort()).toEqual(
        names.filter((other) => other !== name).map((other) => `${other}:9000`),
      );
    }
    expect(ids.size).toBe(3);
  });
});

const dockerCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' });
const composeMissing =
  dockerCompose.error || dockerCompose.status !== 0
    ? `docker-compose is not installed (${dockerCompose.error?.message ?? dockerCompose.stderr.trim()}); .ci/run installs it with apt-get`
    : undefined;
if (composeMissing) console.log(`[deploy/compose] docker-compose validation skipped: ${composeMissing}`);

describe.skipIf(composeMissing !== undefined)('docker-compose config', () => {
  for (const file of [PEERS_FILE, NAMED_FILE]) {
    it(`validates ${file}`, () => {
      // The env file the user creates from the example; the repo never holds a real one.
      const project = tempDir();
      copyFileSync(join(ROOT, '.env.peers.example'), join(project, '.env.peers'));
      const out = execFileSync(
        'docker-compose',
        ['-f', join(ROOT, file), '--project-directory', project, 'config'],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const resolved = parse(out);
      expect(Object.keys(resolved.services).length).toBeGreaterThan(0);
      for (const service of Object.values(resolved.services) as Service[]) {
        expect(service.restart).toBe('unless-stopped');
        expect(service.healthcheck?.test?.[0]).toBe('CMD');
        // The env file was read: its placeholders are there, so the peers would refuse to start with them.
        expect(service.environment.MESH_SECRET).toBe('REPLACE_ME');
      }
    });
  }
});

describe('the README deploy table', () => {
  it('makes .env.peers before every compose command whose services read it', () => {
    // `docker compose up` fails with "env file .env.peers not found" on a fresh checkout otherwise.
    const rows = readFileSync(join(ROOT, 'README.md'), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('|') && line.includes('docker compose -f'));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const file = /docker compose -f (\S+)/.exec(row)?.[1] as string;
      const readsEnvPeers = Object.values(load(file).services).some((s) =>
        envFiles(s).includes('.env.peers'),
      );
      if (!readsEnvPeers) continue;
      const copy = row.indexOf('cp .env.peers.example .env.peers');
      expect(copy, row).toBeGreaterThan(-1);
      expect(copy, row).toBeLessThan(row.indexOf('docker compose -f'));
    }
  });
});
