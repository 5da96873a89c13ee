// The /live feed without a browser: the pure fleet diff, then a real peer on 127.0.0.1:0 with a
// `ws` client (message shapes, kill-switch pushes, the token option) and the shipped client's
// reconnect after the peer restarts on the same port.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { testConfig } from '../../src/config.js';
// The dashboard's own client module, plain JS shipped with the page.
// @ts-expect-error: a browser ES module without type declarations
import { connectLive } from '../../src/http/dashboard/live-client.js';
import type { Fleet, PeerCard } from '../../src/http/fleet.js';
import { diffFleet, LiveFeed, type LiveMessage } from '../../src/http/live.js';
import { createPeer } from '../../src/peer.js';
import type { KillSwitchState } from '../../src/store/kill-switch.js';
import { silentLogger } from '../helpers/logger.js';
import { tempDir } from '../helpers/tmp.js';

const TOKEN = 'live-test-token-0123456789';

function card(peerId: string, over: Partial<PeerCard> = {}): PeerCard {
  return {
    peerId,
    self: false,
    state: 'connected',
    address: '127.0.0.1:9001',
    version: '1',
    uptime: 1,
    lastSeen: null,
    rttMs: 1,
    reconnectAttempts: 0,
    subsystems: [{ name: 'health', state: 'running', restarts: 0 }],
    queues: {},
    trading: null,
    killSwitch: null,
    refused: null,
    ...over,
  };
}

const fleet = (peers: PeerCard[], links: Fleet['links'] = []): Fleet => ({ self: 'a', peers, links });

describe('diffFleet', () => {
  const at = '2026-01-01T00:00:00.000Z';

  it('says nothing when nothing changed', () => {
    const f = fleet([card('a', { self: true }), card('b')]);
    expect(diffFleet(f, structuredClone(f), at)).toEqual({ messages: [], events: [] });
  });

  it('turns state changes into peer deltas and join/suspect/leave/recover events', () => {
    const base = fleet([card('a', { self: true }), card('b')]);
    const suspect = fleet([card('a', { self: true }), card('b', { state: 'suspect' })]);
    const down = fleet([card('a', { self: true }), card('b', { state: 'down' })]);
    const joined = fleet([card('a', { self: true }), card('b'), card('c')]);
    expect(diffFleet(base, suspect, at).events.map((e) => e.kind)).toEqual(['suspect']);
    expect(diffFleet(suspect, base, at).events.map((e) => e.kind)).toEqual(['recover']);
    expect(diffFleet(suspect, down, at).events.map((e) => e.kind)).toEqual(['leave']);
    expect(diffFleet(down, base, at).events.map((e) => e.kind)).toEqual(['join']);
    const j = diffFleet(base, joined, at);
    expect(j.events).toEqual([
      { at, kind: 'join', peerId: 'c', message: expect.stringContaining('c joined') },
    ]);
    expect(j.messages).toEqual([{ type: 'peer', at, peer: joined.peers[2] }]);
  });

  it('reports restarts, failures, refusals, removals and link changes', () => {
    const before = fleet(
      [card('a', { self: true }), card('b'), card('x')],
      [{ from: 'a', to: 'b', state: 'connected' }],
    );
    const after = fleet(
      [
        card('a', { self: true, subsystems: [{ name: 'health', state: 'failed', restarts: 3 }] }),
        card('b', { state: 'down', refused: { code: 4401, reason: 'authentication failed' } }),
      ],
      [{ from: 'a', to: 'b', state: 'down' }],
    );
    const { messages, events } = diffFleet(before, after, at);
    expect(events.map((e) => e.kind).sort()).toEqual(['failed', 'leave', 'leave', 'refused', 'restart']);
    expect(messages.map((m) => m.type).sort()).toEqual(['links', 'peer', 'peer', 'peer-removed']);
  });
});

describe('LiveFeed: what an idle feed computes', () => {
  const OFF: KillSwitchState = {
    active: false,
    reason: '',
    since: new Date(0).toISOString(),
    origin: '',
    epoch: 0,
  };
  const links: Fleet['links'] = [{ from: 'a', to: 'b', state: 'connected' }];

  /** A feed on a fake fleet that records whether each call asked for the links. */
  function feedOnFakeFleet() {
    const asked: boolean[] = [];
    let killSwitchListener: ((s: KillSwitchState) => void) | undefined;
    const feed = new LiveFeed({
      fleet: (o) => {
        // Links unless told otherwise (a feed that passes no options wants them all).
        const withLinks = o?.links !== false;
        asked.push(withLinks);
        return fleet([card('a', { self: true }), card('b')], withLinks ? links : []);
      },
      killSwitch: () => OFF,
      onKillSwitchChange: (l) => {
        killSwitchListener = l;
        return () => {};
      },
      tokenRequired: false,
      apiToken: TOKEN,
      logger: silentLogger(),
    });
    feed.start();
    onTestFinished(() => feed.stop());
    return { feed, asked, changeKillSwitch: (s: KillSwitchState) => killSwitchListener?.(s) };
  }

  it('compares cards only while nobody watches (links cost O(N^2)); a watcher gets the links', async () => {
    const { feed, asked, changeKillSwitch } = feedOnFakeFleet();
    changeKillSwitch({ ...OFF, active: true, epoch: 1 });
    await vi.waitFor(() => expect(asked.length).toBeGreaterThanOrEqual(2));
    expect(asked.every((withLinks) => withLinks === false)).toBe(true);

    const server = createServer();
    server.on('upgrade', (req, socket, head) => feed.handleUpgrade(req, socket, head));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    onTestFinished(() => new Promise<void>((r) => server.close(() => r())));
    const sub = subscribe((server.address() as AddressInfo).port);
    await vi.waitFor(() => expect(sub.messages[0]?.type).toBe('snapshot'));
    expect(sub.messages[0]).toMatchObject({ type: 'snapshot', links });
    expect(asked.at(-1)).toBe(true);
  });

  it('refreshes the cards after the other listeners of a kill-switch change, not inside its own', async () => {
    // The mesh relays the change from its own listener: the feed's fleet comparison must not delay it.
    const { asked, changeKillSwitch } = feedOnFakeFleet();
    const before = asked.length;
    changeKillSwitch({ ...OFF, active: true, epoch: 1 });
    expect(asked.length).toBe(before);
    await vi.waitFor(() => expect(asked.length).toBe(before + 1));
  });
});

/** A peer listening on 127.0.0.1 (port 0 unless given), stopped when the test ends. */
async function startPeer(dataDir: string, env: Record<string, string> = {}) {
  const peer = createPeer(testConfig(dataDir, { API_TOKEN: TOKEN, ...env }), silentLogger());
  onTestFinished(() => peer.stop());
  await peer.start();
  return peer;
}

/** Collects the messages of a raw subscription. */
function subscribe(port: number, firstMessage?: unknown) {
  const messages: LiveMessage[] = [];
  const ws = new WebSocket(`ws://127.0.0.1:${port}/live`);
  let closed: { code: number; reason: string } | undefined;
  ws.on('open', () => firstMessage && ws.send(JSON.stringify(firstMessage)));
  ws.on('message', (d) => messages.push(JSON.parse(d.toString())));
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() };
  });
  onTestFinished(() => ws.terminate());
  return { ws, messages, closed: () => closed };
}

describe('/live on a real peer', () => {
  it('sends a snapshot first, then pushes kill-switch changes with an event', async () => {
    const peer = await startPeer(tempDir());
    const port = peer.port() as number;
    const sub = subscribe(port);
    await vi.waitFor(() => expect(sub.messages[0]?.type).toBe('snapshot'));
    const snap = sub.messages[0] as Extract<LiveMessage, { type: 'snapshot' }>;
    expect(snap).toMatchObject({ v: 1, self: peer.identity()?.peerId, links: [], events: expect.any(Array) });
    expect(snap.killSwitch).toMatchObject({ active: false, epoch: 0 });
    expect(snap.peers).toHaveLength(1);
    expect(snap.peers[0]).toMatchObject({ peerId: peer.identity()?.peerId, self: true, state: 'connected' });
    expect(snap.peers[0]?.subsystems.map((s) => s.name)).toEqual([
      'health',
      'mesh',
      'ai',
      'freelance',
      'trading',
    ]);

    const res = await fetch(`http://127.0.0.1:${port}/kill-switch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ activate: true, reason: 'feed test' }),
    });
    expect(res.status).toBe(200);
    await vi.waitFor(() => {
      const ks = sub.messages.find((m) => m.type === 'killswitch');
      expect(ks).toMatchObject({ type: 'killswitch', killSwitch: { active: true, reason: 'feed test' } });
      const ev = sub.messages.find((m) => m.type === 'event');
      expect(ev).toMatchObject({
        type: 'event',
        event: { kind: 'kill-switch', message: expect.stringContaining('ACTIVATED') },
      });
    });
  });

  it('needs the token first when DASHBOARD_TOKEN_REQUIRED is set', async () => {
    const peer = await startPeer(tempDir(), { DASHBOARD_TOKEN_REQUIRED: 'true' });
    const port = peer.port() as number;
    const refused = subscribe(port, { type: 'auth', token: 'wrong-token-xxxxxxxxxx' });
    await vi.waitFor(() => expect(refused.closed()?.code).toBe(4401));
    expect(refused.messages).toEqual([]);
    const accepted = subscribe(port, { type: 'auth', token: TOKEN });
    await vi.waitFor(() => expect(accepted.messages[0]?.type).toBe('snapshot'));
  });

  it("reconnects by itself with the dashboard's client after the peer restarts", async () => {
    const dir = tempDir();
    const first = await startPeer(dir);
    const port = first.port() as number;
    const statuses: string[] = [];
    const snapshots: string[] = [];
    const client = connectLive({
      url: `ws://127.0.0.1:${port}/live`,
      WebSocket,
      onMessage: (m: LiveMessage) => m.type === 'snapshot' && snapshots.push(m.self),
      onStatus: (s: string) => statuses.push(s),
    });
    onTestFinished(() => client.close());
    await vi.waitFor(() => expect(snapshots).toHaveLength(1));
    await first.stop();
    await vi.waitFor(() => expect(statuses).toContain('reconnecting'));
    await startPeer(dir, { PORT: String(port) });
    await vi.waitFor(() => expect(snapshots).toHaveLength(2), { timeout: 15_000 });
    expect(statuses.at(-1)).toBe('live');
  });
});
