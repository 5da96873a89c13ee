/**
 * The discovery path docker-compose.peers.yml relies on, end to end, without Docker: real peer
 * processes, each in its own network namespace (a container's network stack), joined by a bridge this
 * test makes (the compose network), all listening on the same port 9000 (as replicas do), resolving
 * one service name through a DNS server this test runs (compose's embedded DNS, which answers a
 * service name with every replica's address). The peers get no static list: MESH_DISCOVERY=dns only.
 *
 * Scaling is followed too: two peers first, then the name gains a third address and a third peer
 * starts (`--scale peer=3`), and all three form one mesh.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_JS, http } from '../helpers/process.js';
import { type DnsServer, startDnsServer } from './helpers/dns-server.js';
import { createNetLab, type Namespace, type NetLab, netnsUnavailableReason } from './helpers/netns.js';
import { GiveUp, waitFor } from './helpers/wait.js';

const SERVICE_NAME = 'peer.qb.test';
const PORT = 9000;

const unavailable = netnsUnavailableReason();
if (unavailable) {
  console.log(`[deploy/dns-mesh] skipped: network namespaces cannot be made here (${unavailable})`);
}

interface NsPeer {
  ns: Namespace;
  child: ChildProcess;
  url: string;
  peerId: string;
  output(): string;
  exited: Promise<void>;
}

describe.skipIf(unavailable !== undefined)(
  'DNS discovery of a service name across network namespaces',
  () => {
    let lab: NetLab;
    let dns: DnsServer;
    let root: string;
    const peers: NsPeer[] = [];
    const secret = randomBytes(32).toString('hex');
    const token = randomBytes(32).toString('hex');

    beforeAll(async () => {
      root = mkdtempSync(join(tmpdir(), 'qb-dns-mesh-'));
      lab = createNetLab();
      dns = await startDnsServer({ address: lab.bridgeAddress });
    });

    afterAll(async () => {
      // Graceful stop first (SIGTERM to each PID this test started), then the lab removes the rest.
      await Promise.all(
        peers.map(async (peer) => {
          if (peer.child.exitCode !== null || peer.child.signalCode !== null) return;
          peer.child.kill('SIGTERM');
          const timeout = new Promise((r) => setTimeout(r, 10_000).unref());
          await Promise.race([peer.exited, timeout]);
        }),
      );
      await dns?.close();
      const problems = lab?.cleanup() ?? [];
      rmSync(root, { recursive: true, force: true });
      expect(problems, 'cleanup of the test network').toEqual([]);
    });

    async function startPeer(index: number): Promise<NsPeer> {
      const ns = lab.addNamespace(index, { nameserver: lab.bridgeAddress });
      const dataDir = join(root, `peer-${index}`);
      const child = lab.spawnIn(ns, process.execPath, [BOT_JS], {
        cwd: root,
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: root,
          // What docker-compose.peers.yml gives each replica.
          CONTINUOUS_MODE: 'false',
          MESH_DISCOVERY: 'dns',
          MESH_DNS_NAME: SERVICE_NAME,
          HOST: '0.0.0.0',
          PORT: String(PORT),
          DATA_DIR: join(dataDir, 'data'),
          LOG_DIR: join(dataDir, 'logs'),
          MESH_SECRET: secret,
          API_TOKEN: token,
          LOG_LEVEL: 'info',
        },
      });
      let out = '';
      child.stdout?.setEncoding('utf8').on('data', (s: string) => {
        out += s;
      });
      child.stderr?.setEncoding('utf8').on('data', (s: string) => {
        out += s;
      });
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const url = `http://${ns.address}:${PORT}`;
      const peer: NsPeer = { ns, child, url, peerId: '', output: () => out, exited };
      peers.push(peer);
      // The root namespace reaches the peer over the test's own bridge.
      const mesh = await waitFor(`peer ${index} answers ${url}/mesh`, async () => {
        if (child.exitCode !== null) throw new GiveUp(`peer ${index} exited (${child.exitCode}):\n${out}`);
        const answer = await http(`${url}/mesh`, { timeoutMs: 2_000 });
        return answer.status === 200 ? answer.json() : undefined;
      });
      peer.peerId = mesh.self.peerId;
      expect(mesh.self.discovery).toEqual(['dns']);
      return peer;
    }

    /** peerIds each peer sees `connected`. */
    async function connectedViews(): Promise<Map<string, string[]>> {
      const views = new Map<string, string[]>();
      for (const peer of peers) {
        const mesh = (await http(`${peer.url}/mesh`, { timeoutMs: 2_000 })).json();
        views.set(
          peer.peerId,
          mesh.peers
            .filter((p: { state: string }) => p.state === 'connected')
            .map((p: { peerId: string }) => p.peerId)
            .sort(),
        );
      }
      return views;
    }

    async function waitForFullMesh(): Promise<void> {
      const ids = peers.map((p) => p.peerId);
      let last = new Map<string, string[]>();
      try {
        await waitFor(`a full mesh of ${ids.length}`, async () => {
          last = await connectedViews();
          return ids.every(
            (id) =>
              JSON.stringify(last.get(id)) === JSON.stringify(ids.filter((other) => other !== id).sort()),
          )
            ? true
            : undefined;
        });
      } catch (err) {
        const logs = peers.map((p) => `----- ${p.ns.name} (${p.peerId})\n${p.output()}`).join('\n');
        throw new Error(
          `${(err as Error).message}; last views: ${JSON.stringify([...last])}\nDNS queries: ${JSON.stringify(
            dns.queries().slice(-20),
          )}\n${logs}`,
        );
      }
    }

    it('peers in separate namespaces find each other through the service name and form one mesh, then follow a scale-up', async () => {
      // `up --scale peer=2`: the name answers the two replicas.
      dns.setRecords(SERVICE_NAME, [`${lab.prefix}.11`, `${lab.prefix}.12`]);
      await startPeer(1);
      await startPeer(2);
      await waitForFullMesh();

      // `--scale peer=3`: a third replica, and the name answers it too.
      dns.setRecords(SERVICE_NAME, [`${lab.prefix}.11`, `${lab.prefix}.12`, `${lab.prefix}.13`]);
      await startPeer(3);
      await waitForFullMesh();

      const views = await connectedViews();
      expect([...views.values()].map((v) => v.length)).toEqual([2, 2, 2]);
      const ids = new Set(peers.map((p) => p.peerId));
      expect(ids.size).toBe(3);

      // Every peer asked the test's DNS server for the service name (A records), from its own address.
      const asked = dns.queries().filter((q) => q.name === SERVICE_NAME && q.type === 'A');
      for (const peer of peers) {
        expect(
          asked.some((q) => q.from === peer.ns.address),
          `${peer.ns.name} resolved ${SERVICE_NAME}`,
        ).toBe(true);
      }
      // And keeps asking (every 5 s), so later replicas and changed addresses are seen.
      const first = peers[0]?.ns.address;
      const since = Date.now();
      await waitFor(`${SERVICE_NAME} resolved again by the first peer`, async () =>
        dns.queries().some((q) => q.from === first && q.name === SERVICE_NAME && q.at >= since)
          ? true
          : undefined,
      );
    }, 120_000);
  },
);
