/**
 * Real mDNS end to end (DESIGN.md section 7): four peer processes with MESH_DISCOVERY=mdns and no
 * MESH_PEERS find each other and form a full mesh. They run inside ONE fresh network namespace this
 * test makes (`unshare -n`, loopback only), never in the root namespace of this shared machine,
 * where mDNS would multicast out of the real interface. startBot refuses mdns outside a namespace.
 * Where namespaces cannot be made, the test is skipped with the reason printed.
 *
 * The peers are started by startBot like every other test's (nsenter into the namespace), not by a
 * script inside it: one place starts bot.js, with the same PID-exact cleanup and failure output,
 * and the test reads each peer's GET /mesh through the namespace's Unix-socket relay (netns.ts).
 */
import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { expectFullMesh, expectStates, type Member, meshOf, newSecret, peerIn } from '../helpers/mesh.js';
import { makeNetNamespace, namespaceUnavailable } from '../helpers/netns.js';
import { type BotProcess, LOOPBACK, startBot } from '../helpers/process.js';

const TOKEN = randomBytes(24).toString('base64url');
/** Inside a fresh namespace every port is free: fixed ones, which the relay must know. */
const PORTS = [9001, 9002, 9003, 9004] as const;
const OTHER_CLUSTER_PORT = 9005;
const GRACEFUL_STOP_MS = 10_000;

const unavailable = namespaceUnavailable();
if (unavailable) console.warn(`[mdns.test] skipped: network namespaces cannot be made here (${unavailable})`);

describe.skipIf(unavailable !== undefined)('mDNS discovery inside a fresh network namespace', () => {
  it('four peers with MESH_DISCOVERY=mdns and no MESH_PEERS form a full mesh, and relink a restarted one', async () => {
    const ns = await makeNetNamespace([...PORTS, OTHER_CLUSTER_PORT]);
    const secret = newSecret();
    const envOf = (peerId: string, port: number, extra: Record<string, string> = {}) => ({
      CONTINUOUS_MODE: 'false',
      PEER_ID: peerId,
      PORT: String(port),
      MESH_SECRET: secret,
      API_TOKEN: TOKEN,
      MESH_DISCOVERY: 'mdns',
      // The namespace has only lo, so "all interfaces" would mean lo too; naming it tests the
      // provider's interface path (bind 0.0.0.0, join the group on this address).
      MDNS_INTERFACE: LOOPBACK,
      RECONNECT_INTERVAL: '1000',
      ...extra,
    });
    // Same secret, another cluster: its announcements must be ignored.
    const strangerEnv = envOf('mdns-other', OTHER_CLUSTER_PORT, { MESH_CLUSTER: 'another-cluster' });
    const envs = PORTS.map((port, i) => envOf(`mdns-${i + 1}`, port));
    for (const env of envs) expect(env).not.toHaveProperty('MESH_PEERS');
    const [other, ...bots] = (await Promise.all(
      [strangerEnv, ...envs].map((env) => startBot({ env, netns: ns })),
    )) as [BotProcess, ...BotProcess[]];
    const members: Member[] = envs.map((env, i) => ({
      peerId: env.PEER_ID,
      port: Number(env.PORT),
      env,
      bot: bots[i] as BotProcess,
    }));
    // Every peer really sits in the test's namespace, not in ours.
    const nsId = readlinkSync(ns.path);
    expect(nsId).not.toBe(readlinkSync('/proc/self/ns/net'));
    for (const bot of [...bots, other]) {
      expect(readlinkSync(`/proc/${bot.pid}/ns/net`)).toBe(nsId);
    }

    const startedAt = Date.now();
    await vi.waitFor(() => expectFullMesh(members), { timeout: 45_000, interval: 200 });
    const meshMs = Date.now() - startedAt;
    expect(meshMs).toBeLessThan(30_000);

    for (const m of members) {
      const view = await meshOf(m.bot);
      expect(view.self).toMatchObject({ peerId: m.peerId, enabled: true, discovery: ['mdns'] });
      // Addresses come from the mDNS answers: the packet's source and the announced port.
      expect(view.peers.map((p) => p.address).sort()).toEqual(
        members
          .filter((o) => o !== m)
          .map((o) => `${LOOPBACK}:${o.port}`)
          .sort(),
      );
      expect(view.peers.every((p) => p.status?.peerId === p.peerId)).toBe(true);
    }
    // The other cluster's peer answered the same queries, and nobody dialed it.
    for (const m of members) {
      const addresses = (await meshOf(m.bot)).peers.map((p) => p.address);
      expect(addresses).not.toContain(`${LOOPBACK}:${OTHER_CLUSTER_PORT}`);
    }
    expect((await meshOf(other)).peers).toEqual([]);

    // A crashed peer's records may outlive it, but liveness comes from the link: it is down at once,
    // and when it comes back (same DATA_DIR, PEER_ID and port) the mesh relinks it through mDNS.
    const victim = members[3] as Member;
    const observers = members.slice(0, 3);
    const oldBoot = (await victim.bot.get('/status')).json().bootId;
    await victim.bot.kill();
    await vi.waitFor(() => expectStates(observers, [victim.peerId], 'down'), {
      timeout: 10_000,
      interval: 100,
    });
    const restarted = await startBot({ dirs: victim.bot.dirs, env: victim.env, netns: ns });
    const newBoot = (await restarted.get('/status')).json().bootId;
    expect(newBoot).not.toBe(oldBoot);
    await vi.waitFor(
      async () => {
        for (const o of observers) {
          const p = peerIn(await meshOf(o.bot), victim.peerId);
          expect(p?.state, `${o.peerId} sees ${victim.peerId}`).toBe('connected');
          expect(p?.status?.bootId).toBe(newBoot);
        }
      },
      { timeout: 20_000, interval: 100 },
    );
    members[3] = { ...victim, bot: restarted };
    await vi.waitFor(() => expectFullMesh(members), { timeout: 20_000, interval: 200 });

    // SIGTERM, by PID: each peer says bye, unpublishes its mDNS records and exits 0 in time.
    const exits = await Promise.all(
      [...members.map((m) => m.bot), other].map((bot) => bot.stop('SIGTERM', GRACEFUL_STOP_MS)),
    );
    for (const exit of exits) expect(exit).toMatchObject({ code: 0, signal: null });
  });
});
