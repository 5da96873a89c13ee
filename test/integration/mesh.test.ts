/**
 * The mesh between real peer processes (`node bot.js`) on 127.0.0.1 with static discovery
 * (DESIGN.md sections 3 and 7): full mesh, a crashed peer, a frozen peer, a peer with the wrong
 * secret, the mesh-wide kill switch, a crashing mesh subsystem, and a peer without MESH_SECRET.
 * Every process is started through startBot and killed by PID when its test finishes. Timing bounds
 * are generous for a loaded 2-core machine; `npm run bench:mesh` prints the real figures.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { status } from '../helpers/contract.js';
import {
  expectFullMesh,
  expectStates,
  freePorts,
  type Member,
  meshOf,
  newSecret,
  peerIn,
  startMesh,
} from '../helpers/mesh.js';
import { type BotProcess, isAlive, LOOPBACK, startBot, startTimeOf } from '../helpers/process.js';

const TOKEN = randomBytes(24).toString('base64url');
/** Forming a mesh or relinking: polled, so it ends as soon as it is true. */
const LINKED = { timeout: 20_000, interval: 100 } as const;
/** A closed TCP connection is `down` at once; heartbeats alone would take about 3 s. */
const CRASH_DOWN_MS = 2_500;
/** A restarted peer dials the others itself as soon as it runs. */
const RELINK_MS = 5_000;
const KILL_SWITCH_MS = 2_000;

/** Polls until `check` passes and returns the milliseconds it took. */
async function timeUntil(check: () => Promise<void>, timeout: number, interval = 50): Promise<number> {
  const started = Date.now();
  await vi.waitFor(check, { timeout, interval });
  return Date.now() - started;
}

function others(members: readonly Member[], not: Member): Member[] {
  return members.filter((m) => m !== not);
}

describe('a mesh of peer processes on 127.0.0.1 (static discovery)', () => {
  it('links three peers into a full mesh and shows each peer with its status', async () => {
    const secret = newSecret();
    const members = await startMesh({ peerIds: ['mesh-a', 'mesh-b', 'mesh-c'], secret, token: TOKEN });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    // RTT comes with the first pong (heartbeat every 1 s), the status with the link.
    await vi.waitFor(async () => {
      for (const m of members) {
        for (const p of (await meshOf(m.bot)).peers)
          expect(p.rttMs, `${m.peerId} -> ${p.peerId}`).not.toBeNull();
      }
    }, LINKED);

    const boots = new Map<string, string>();
    for (const m of members) boots.set(m.peerId, (await status(m.bot)).bootId);
    for (const m of members) {
      const view = await meshOf(m.bot);
      expect(view.self).toMatchObject({ peerId: m.peerId, bootId: boots.get(m.peerId), enabled: true });
      expect(view.peers).toHaveLength(2);
      for (const other of others(members, m)) {
        const p = peerIn(view, other.peerId);
        expect(p, `${m.peerId} lists ${other.peerId}`).toBeDefined();
        expect(p).toMatchObject({
          peerId: other.peerId,
          state: 'connected',
          address: `${LOOPBACK}:${other.port}`,
          reconnectAttempts: 0,
        });
        expect(Date.now() - Date.parse(p?.lastSeen ?? '')).toBeLessThan(10_000);
        expect(p?.rttMs).toBeGreaterThanOrEqual(0);
        expect(p?.rttMs).toBeLessThan(1_000);
        expect(p?.status).toMatchObject({
          peerId: other.peerId,
          bootId: boots.get(other.peerId),
          apiPort: other.port,
          killSwitch: { active: false },
        });
        expect(p?.status.subsystems).toEqual(
          expect.arrayContaining([expect.objectContaining({ name: 'mesh', state: 'running' })]),
        );
      }

      const s = await status(m.bot);
      expect(s.mesh.enabled).toBe(true);
      expect(s.mesh.peers.map((p: { peerId: string; state: string }) => [p.peerId, p.state]).sort()).toEqual(
        others(members, m)
          .map((o) => [o.peerId, 'connected'])
          .sort(),
      );
      expect(s.subsystems.mesh).toMatchObject({ state: 'running', restarts: 0 });
      // Exactly one link per pair, whoever dialed first.
      expect((await m.bot.get('/health')).json().connections.mesh).toBe(2);

      // The mesh in Prometheus terms: links by state, traffic, handshakes, reconnects, RTT.
      const metrics = (await m.bot.get('/metrics')).body;
      expect(metrics).toMatch(/^qb_mesh_links\{state="connected"[^}]*\} 2$/m);
      expect(metrics).toMatch(/^qb_mesh_links\{state="down"[^}]*\} 0$/m);
      // One side of each link pings and the other answers: a peer gets pings, pongs or both.
      expect(metrics).toMatch(/^qb_mesh_messages_in_total\{type="(ping|pong)"[^}]*\} [1-9]/m);
      expect(metrics).toMatch(/^qb_mesh_messages_out_total\{type="status"[^}]*\} [1-9]/m);
      expect(metrics).toMatch(/^qb_mesh_reconnects_total\{[^}]*\} \d+$/m);
      for (const other of others(members, m)) {
        expect(metrics).toMatch(new RegExp(`^qb_mesh_peer_rtt_ms\\{peer="${other.peerId}"[^}]*\\} \\d`, 'm'));
      }
      expect(metrics).toMatch(/^qb_subsystem_state\{subsystem="mesh",state="running"[^}]*\} 1$/m);
    }
  });

  it('sees a SIGKILLed peer down at once and relinks it after a restart with a new boot id', async () => {
    const secret = newSecret();
    const members = await startMesh({ peerIds: ['kill-a', 'kill-b', 'kill-c'], secret, token: TOKEN });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    const [a, b, victim] = members as [Member, Member, Member];
    const oldBoot = (await status(victim.bot)).bootId;

    const killedAt = Date.now();
    await victim.bot.kill();
    await vi.waitFor(() => expectStates([a, b], [victim.peerId], 'down'), { timeout: 10_000, interval: 50 });
    expect(Date.now() - killedAt).toBeLessThan(CRASH_DOWN_MS);

    // Same DATA_DIR (so the same persisted identity), same PEER_ID and port.
    const restarted = await startBot({ dirs: victim.bot.dirs, env: victim.env });
    const newBoot = (await status(restarted)).bootId;
    expect(newBoot).not.toBe(oldBoot);
    const relinkMs = await timeUntil(async () => {
      for (const observer of [a, b]) {
        const p = peerIn(await meshOf(observer.bot), victim.peerId);
        expect(p?.state).toBe('connected');
        expect(p?.status?.bootId).toBe(newBoot);
      }
    }, LINKED.timeout);
    expect(relinkMs).toBeLessThan(RELINK_MS);
    await vi.waitFor(() => expectFullMesh([a, b, { ...victim, bot: restarted }]), LINKED);
  });

  it('relinks a continuous-mode peer whose worker was SIGKILLed and respawned', async () => {
    const secret = newSecret();
    const members = await startMesh({
      peerIds: ['worker-a', 'worker-b', 'worker-c'],
      secret,
      token: TOKEN,
      // A respawn after 1-2 s leaves time to see the peer down first.
      envOf: { 'worker-c': { CONTINUOUS_MODE: 'true', WORKER_RESPAWN_BASE_MS: '2000' } },
    });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    const [a, b, victim] = members as [Member, Member, Member];
    const oldBoot = (await status(victim.bot)).bootId;
    const worker = await victim.bot.waitForWorker();

    process.kill(worker, 'SIGKILL');
    const downMs = await timeUntil(() => expectStates([a, b], [victim.peerId], 'down'), 10_000);
    expect(downMs).toBeLessThan(CRASH_DOWN_MS);

    await vi.waitFor(async () => {
      for (const observer of [a, b]) {
        const p = peerIn(await meshOf(observer.bot), victim.peerId);
        expect(p?.state).toBe('connected');
        expect(p?.status?.bootId).toEqual(expect.any(String));
        expect(p?.status?.bootId).not.toBe(oldBoot);
      }
    }, LINKED);
    const s = await status(victim.bot);
    expect(s.workerRespawns).toBe(1);
    expect(s.bootId).not.toBe(oldBoot);
    expect(victim.bot.isRunning()).toBe(true);
  });

  it('sees a SIGSTOPped peer suspect, then down, and connected again after SIGCONT', async () => {
    const secret = newSecret();
    const members = await startMesh({ peerIds: ['stop-a', 'stop-b', 'stop-c'], secret, token: TOKEN });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    const [a, b, victim] = members as [Member, Member, Member];
    const pid = victim.bot.pid;
    const startTime = startTimeOf(pid);
    // Registered before the stop: a frozen process must not outlive a failed test.
    onTestFinished(() => {
      if (isAlive(pid, startTime)) process.kill(pid, 'SIGCONT');
    });

    process.kill(pid, 'SIGSTOP');
    const stoppedAt = Date.now();
    // Each observer's history of the frozen peer's state, polled one request per peer at a time.
    const seen = new Map<string, { state: string; at: number }[]>([
      [a.peerId, []],
      [b.peerId, []],
    ]);
    await vi.waitFor(
      async () => {
        for (const observer of [a, b]) {
          const state = peerIn(await meshOf(observer.bot), victim.peerId)?.state ?? 'absent';
          const history = seen.get(observer.peerId) ?? [];
          if (history.at(-1)?.state !== state) history.push({ state, at: Date.now() - stoppedAt });
        }
        for (const history of seen.values()) expect(history.at(-1)?.state).toBe('down');
      },
      { timeout: 20_000, interval: 50 },
    );
    for (const [observer, history] of seen) {
      const states = history.map((h) => h.state);
      expect(states, `${observer} saw ${JSON.stringify(history)}`).toEqual(['connected', 'suspect', 'down']);
      const suspectAt = history[1]?.at ?? 0;
      const downAt = history[2]?.at ?? 0;
      // Suspect after 1.45 s of silence and down after 2.75 s (the peer was last heard up to one
      // 200 ms heartbeat before it stopped); generous bounds for a loaded machine. Never before a
      // peer merely busy for 1.2 s could have been silent this long.
      expect(suspectAt, JSON.stringify(history)).toBeGreaterThanOrEqual(1_200);
      expect(suspectAt, JSON.stringify(history)).toBeLessThan(3_000);
      expect(downAt, JSON.stringify(history)).toBeGreaterThanOrEqual(2_500);
      expect(downAt, JSON.stringify(history)).toBeLessThan(6_000);
    }

    process.kill(pid, 'SIGCONT');
    const backMs = await timeUntil(() => expectStates([a, b], [victim.peerId], 'connected'), LINKED.timeout);
    expect(backMs).toBeLessThan(10_000);
    await vi.waitFor(() => expectFullMesh(members), LINKED);
  });

  it('in a fleet of five, every peer sees a SIGSTOPped one down, most by its watchers report', async () => {
    const secret = newSecret();
    const ids = ['w-a', 'w-b', 'w-c', 'w-d', 'w-e'];
    const members = await startMesh({ peerIds: ids, secret, token: TOKEN });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    // w-c is watched by w-a and w-b (the two before it on the ring); w-d and w-e learn it from them.
    const victim = members[2] as Member;
    const observers = others(members, victim);
    const pid = victim.bot.pid;
    const startTime = startTimeOf(pid);
    onTestFinished(() => {
      if (isAlive(pid, startTime)) process.kill(pid, 'SIGCONT');
    });
    process.kill(pid, 'SIGSTOP');
    const downMs = await timeUntil(() => expectStates(observers, [victim.peerId], 'down'), 20_000);
    expect(downMs).toBeGreaterThanOrEqual(2_500);
    expect(downMs).toBeLessThan(8_000);
    // w-d and w-e send w-c no heartbeats: without the watchers' reports they would still see it
    // connected here (until TCP keepalive, about 20 s). They did get reports.
    for (const o of observers.slice(2)) {
      const metrics = (await o.bot.get('/metrics')).body;
      const line = metrics
        .split('\n')
        .find((l) => l.startsWith('qb_mesh_messages_in_total{') && l.includes('type="suspect"'));
      expect(Number(line?.split(' ').at(-1)), `${o.peerId}: ${line}`).toBeGreaterThan(0);
    }
    process.kill(pid, 'SIGCONT');
    await vi.waitFor(() => expectFullMesh(members), LINKED);
  });

  it('does not call a peer down that is merely busy for a second, nor does the busy peer blame the others', async () => {
    const members = await startMesh({
      peerIds: ['busy-a', 'busy-b', 'busy-c'],
      secret: newSecret(),
      token: TOKEN,
      env: { FAULT_INJECTION: 'true' },
    });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    const [busy, ...rest] = members as [Member, ...Member[]];
    // Watch the others' view of the busy peer all along, and the busy peer's view afterwards.
    const seen = new Set<string>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const m of rest) seen.add(peerIn(await meshOf(m.bot), busy.peerId)?.state ?? 'missing');
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const blocked = await busy.bot.post('/faults/event-loop/block', { ms: 1200 }, TOKEN);
    expect(blocked.status, blocked.body).toBe(200);
    const unblocked = Date.now();
    // Watch until every side has heard the other again since the block ended.
    await vi.waitFor(async () => {
      for (const m of rest) {
        const heardBusy = peerIn(await meshOf(m.bot), busy.peerId)?.lastSeen;
        expect(Date.parse(heardBusy ?? '')).toBeGreaterThan(unblocked);
        const heardOther = peerIn(await meshOf(busy.bot), m.peerId)?.lastSeen;
        expect(Date.parse(heardOther ?? '')).toBeGreaterThan(unblocked);
      }
    }, LINKED);
    watching = false;
    await watch;
    expect([...seen].filter((s) => s !== 'connected')).toEqual([]);
    await expectFullMesh(members);
    for (const m of rest) expect(peerIn(await meshOf(busy.bot), m.peerId)?.reconnectAttempts).toBe(0);
  });

  it('refuses a peer with the wrong secret (4401), logs it once and does not redial it fast', async () => {
    const secret = newSecret();
    const [xPort, aPort, bPort] = (await freePorts(3)) as [number, number, number];
    const xAddress = `${LOOPBACK}:${xPort}`;
    // The intruder first, so every dial the others make to it meets its wrong secret.
    const intruder = await startBot({
      env: {
        CONTINUOUS_MODE: 'false',
        PEER_ID: 'auth-x',
        PORT: String(xPort),
        MESH_SECRET: newSecret(),
        API_TOKEN: TOKEN,
        MESH_DISCOVERY: 'static',
        MESH_PEERS: [aPort, bPort].map((p) => `${LOOPBACK}:${p}`).join(','),
        RECONNECT_INTERVAL: '1000',
      },
    });
    const members = await startMesh({
      peerIds: ['auth-a', 'auth-b'],
      ports: [aPort, bPort],
      secret,
      token: TOKEN,
      alsoDial: [xAddress],
    });
    const [a, b] = members as [Member, Member];
    await vi.waitFor(() => expectFullMesh(members), LINKED);

    const refusedOf = async (bot: BotProcess, address: string) =>
      (await meshOf(bot)).peers.find((p) => p.address === address);
    await vi.waitFor(async () => {
      for (const m of members) {
        const x = await refusedOf(m.bot, xAddress);
        expect(x, `${m.peerId} lists the intruder`).toBeDefined();
        expect(x?.state).toBe('down');
        expect(x?.refused?.code).toBe(4401);
      }
    }, LINKED);
    // The intruder sees the same from its side: nobody links with it.
    await vi.waitFor(async () => {
      const view = await meshOf(intruder);
      for (const m of members) {
        const p = view.peers.find((v) => v.address === `${LOOPBACK}:${m.port}`);
        expect(p?.refused?.code).toBe(4401);
        expect(p?.state).toBe('down');
      }
    }, LINKED);

    const attempts = async () =>
      Promise.all(members.map(async (m) => (await refusedOf(m.bot, xAddress))?.reconnectAttempts ?? -1));
    const before = await attempts();
    // A few reconnect sweeps (RECONNECT_INTERVAL=1000) go by: a refused peer waits 30 s.
    const watchUntil = Date.now() + 4_000;
    while (Date.now() < watchUntil) {
      for (const m of members) expect((await refusedOf(m.bot, xAddress))?.state).toBe('down');
      await new Promise((r) => setTimeout(r, 250));
    }
    const after = await attempts();
    for (const [i, n] of after.entries()) {
      expect(n, 'dial attempts to the intruder').toBeLessThanOrEqual(2);
      expect(n - (before[i] ?? 0), 'dial attempts while we watched').toBe(0);
    }
    for (const m of members) {
      expect((await m.bot.get('/metrics')).body).toMatch(
        /^qb_mesh_handshake_failures_total\{reason="auth_failed"[^}]*\} [1-9]/m,
      );
      expect((await meshOf(m.bot)).peers.filter((p) => p.state === 'connected')).toHaveLength(1);
      // Once per direction: we refused its proof (outbound, by its address), and it refused ours
      // (inbound, by its IP: its dials come from ephemeral ports).
      const refusals = m.bot
        .stdout()
        .split('\n')
        .filter((line) => line.includes('mesh handshake refused'))
        .map((line) => JSON.parse(line));
      const summary = JSON.stringify(refusals);
      expect(
        refusals.every((r) => r.code === 4401 && /auth_failed/.test(r.msg)),
        summary,
      ).toBe(true);
      expect(
        refusals.filter((r) => r.direction === 'out' && r.address === xAddress),
        summary,
      ).toHaveLength(1);
      expect(refusals.filter((r) => r.direction === 'in').length, summary).toBeLessThanOrEqual(1);
      expect(refusals.length, summary).toBeLessThanOrEqual(2);
    }
    expect(a.bot.stdout()).not.toContain(secret);
    expect(b.bot.stdout()).not.toContain(secret);
  });

  it('floods the kill switch to every peer, to a peer that joins later, and its deactivation too', async () => {
    const secret = newSecret();
    const members = await startMesh({ peerIds: ['ks-a', 'ks-b', 'ks-c'], secret, token: TOKEN });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    const [a, b, c] = members as [Member, Member, Member];

    const activated = await a.bot.post('/kill-switch', { activate: true, reason: 'mesh test' }, TOKEN);
    expect(activated.status).toBe(200);
    const on = activated.json();
    expect(on).toMatchObject({ active: true, origin: a.peerId, epoch: 1 });
    const ks = async (bot: BotProcess) => (await bot.get('/kill-switch')).json();
    const spreadMs = await timeUntil(async () => {
      for (const m of [b, c]) {
        expect(await ks(m.bot)).toMatchObject({
          active: true,
          reason: 'mesh test',
          origin: a.peerId,
          epoch: on.epoch,
          since: on.since,
        });
      }
    }, 10_000);
    expect(spreadMs).toBeLessThan(KILL_SWITCH_MS);
    for (const m of [b, c]) expect((await status(m.bot)).killSwitch).toMatchObject({ active: true });

    // A peer that was not there adopts the newer state when it links (it is carried in the handshake).
    const late = await startBot({
      env: {
        CONTINUOUS_MODE: 'false',
        PEER_ID: 'ks-late',
        MESH_SECRET: secret,
        API_TOKEN: TOKEN,
        MESH_DISCOVERY: 'static',
        MESH_PEERS: members.map((m) => `${LOOPBACK}:${m.port}`).join(','),
      },
    });
    await vi.waitFor(async () => {
      expect(await ks(late)).toMatchObject({ active: true, origin: a.peerId, epoch: on.epoch });
    }, LINKED);

    const deactivated = await b.bot.post('/kill-switch', { activate: false, reason: 'all clear' }, TOKEN);
    expect(deactivated.status).toBe(200);
    const off = deactivated.json();
    expect(off).toMatchObject({ active: false, origin: b.peerId, epoch: on.epoch + 1 });
    const clearMs = await timeUntil(async () => {
      for (const bot of [a.bot, c.bot, late]) {
        expect(await ks(bot)).toMatchObject({ active: false, origin: b.peerId, epoch: off.epoch });
      }
    }, 10_000);
    expect(clearMs).toBeLessThan(KILL_SWITCH_MS);
    const history = (await ks(c.bot)).history;
    expect(history.slice(0, 2)).toMatchObject([
      { active: false, origin: b.peerId, epoch: off.epoch },
      { active: true, origin: a.peerId, epoch: on.epoch },
    ]);
  });

  it('restarts a mesh subsystem made to throw, which then relinks', async () => {
    const secret = newSecret();
    const members = await startMesh({
      peerIds: ['fault-a', 'fault-b', 'fault-c'],
      secret,
      token: TOKEN,
      envOf: { 'fault-a': { FAULT_INJECTION: 'true', SUBSYSTEM_RESTART_BASE_MS: '200' } },
    });
    await vi.waitFor(() => expectFullMesh(members), LINKED);
    const [a, b, c] = members as [Member, Member, Member];
    const boot = (await status(a.bot)).bootId;

    const thrown = await a.bot.post('/faults/subsystems/mesh/throw', undefined, TOKEN);
    expect(thrown.status).toBe(202);
    await vi.waitFor(async () => {
      const mesh = (await status(a.bot)).subsystems.mesh;
      expect(mesh.restarts).toBeGreaterThanOrEqual(1);
      expect(mesh.state).toBe('running');
      expect(mesh.lastError).toMatchObject({ code: 'QB_ERR_INJECTED_FAULT' });
      await expectFullMesh(members);
    }, LINKED);
    // The same process and boot: only the subsystem was restarted, and it stopped and started again.
    expect((await status(a.bot)).bootId).toBe(boot);
    expect(
      a.bot
        .stdout()
        .split('\n')
        .filter((l) => l.includes('"msg":"mesh started"')),
    ).toHaveLength(2);
    expect(a.bot.stdout()).toContain('"msg":"mesh stopped"');
    for (const m of [b, c]) {
      expect(peerIn(await meshOf(m.bot), a.peerId)?.status?.bootId).toBe(boot);
      // The others really lost the links (a graceful bye, 1001) and made new ones.
      expect(m.bot.stdout()).toMatch(/"peer":"fault-a","code":1001,[^\n]*"msg":"peer down"/);
    }
  });
});

describe('a peer without MESH_SECRET', () => {
  it('says it runs alone, has no mesh and starts no discovery', async () => {
    // The default discovery (mdns) stays configured: without a secret it must not start.
    const bot = await startBot({ env: { CONTINUOUS_MODE: 'false', API_TOKEN: TOKEN } });
    const s = await status(bot);
    expect(s.mesh).toMatchObject({ enabled: false, peers: [], reconnectAttempts: 0 });
    expect(s.mesh.reason).toMatch(/MESH_SECRET is not set.*runs alone/);
    expect(s.subsystems.mesh).toMatchObject({ enabled: false, state: 'disabled' });
    const view = await meshOf(bot);
    expect(view.self).toMatchObject({ enabled: false, reason: s.mesh.reason });
    expect(view.peers).toEqual([]);
    expect(bot.stdout()).toContain('runs alone and starts no discovery');
    expect(bot.stdout()).not.toContain('"msg":"mesh started"');
    // No discovery means no UDP socket at all (mDNS would hold one on 5353).
    expect(udpSocketsOf(bot.pid)).toEqual([]);
  });
});

/** The UDP sockets a process holds: its socket fds matched against its namespace's UDP tables. */
function udpSocketsOf(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {
      // Closed while we looked.
    }
  }
  const found: string[] = [];
  for (const table of ['udp', 'udp6']) {
    for (const line of readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[9] && inodes.has(cols[9])) found.push(`${table} ${cols[1]}`);
    }
  }
  return found;
}
