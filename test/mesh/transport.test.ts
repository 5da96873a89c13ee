// The link layer over real loopback sockets: admission before authentication, the sealed session
// against an on-path attacker (a relay that rewrites, injects, replays and reorders frames), and
// version negotiation with a newer peer.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import WebSocket from 'ws';
import { routeUpgrades } from '../../src/http/upgrade.js';
import { type AdmissionLimits, DEFAULT_ADMISSION_LIMITS } from '../../src/mesh/admission.js';
import { Keyring, newNonce } from '../../src/mesh/auth.js';
import {
  CLOSE,
  type KillSwitchWireState,
  MAX_HANDSHAKE_FRAME_BYTES,
  MESH_PATH,
  type Message,
  message,
  PROTOCOL_VERSION,
  type VersionRange,
} from '../../src/mesh/protocol.js';
import {
  acceptHandshake,
  dialHandshake,
  type HandshakeError,
  type HandshakeOptions,
  type Link,
  MAX_PREAUTH_BYTES,
  MeshServer,
  newWireCounters,
} from '../../src/mesh/transport.js';
import { type Frame, startRelay } from '../helpers/ws-relay.js';

const SECRET = 'a shared secret of enough length';
const calm: KillSwitchWireState = { active: false, reason: '', since: '', origin: '', epoch: 0 };

function options(peerId: string, extra: Partial<HandshakeOptions> & { secrets?: string[] } = {}) {
  const { secrets, ...rest } = extra;
  return {
    self: { peerId, bootId: `${peerId}-boot`, cluster: 'quantum-bot', listenPort: 1 },
    keyring: new Keyring(secrets ?? [SECRET]),
    killSwitch: () => calm,
    ...rest,
  } satisfies HandshakeOptions;
}

interface Acceptor {
  address: string;
  server: MeshServer;
  links: Link[];
  failures: HandshakeError[];
  opts: HandshakeOptions;
}

async function startAcceptor(
  extra: Partial<HandshakeOptions> & { secrets?: string[]; limits?: Partial<AdmissionLimits> } = {},
): Promise<Acceptor> {
  const { limits, ...handshake } = extra;
  const http = createServer((_req, res) => res.writeHead(404).end());
  const server = new MeshServer({ limits: { ...DEFAULT_ADMISSION_LIMITS, ...limits } });
  const acceptor: Acceptor = {
    address: '',
    server,
    links: [],
    failures: [],
    opts: { ...options('acceptor', handshake), counters: newWireCounters() },
  };
  routeUpgrades(http, {
    [MESH_PATH]: (req, socket, head) =>
      server.handleUpgrade(req, socket, head, (ws) =>
        acceptHandshake(ws, req, acceptor.opts).then(
          (link) => acceptor.links.push(link),
          (err: HandshakeError) => acceptor.failures.push(err),
        ),
      ),
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  acceptor.address = `127.0.0.1:${(http.address() as AddressInfo).port}`;
  onTestFinished(async () => {
    for (const link of acceptor.links) link.terminate(1001, 'test over');
    for (const ws of server.clients) ws.terminate();
    server.close();
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
  });
  return acceptor;
}

/** A raw WebSocket to /mesh; resolves with it once open, or with the HTTP status that refused it. */
function rawSocket(address: string, localAddress = '127.0.0.1'): Promise<WebSocket | number> {
  const ws = new WebSocket(`ws://${address}${MESH_PATH}`, { localAddress, perMessageDeflate: false });
  onTestFinished(() => ws.terminate());
  return new Promise((resolve) => {
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('error', () => resolve(0));
  });
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

/** Dials through `address` and links, with the dialer's link stopped at the end of the test. */
async function dial(address: string, extra: Partial<HandshakeOptions> & { secrets?: string[] } = {}) {
  const link = await dialHandshake(address, { ...options('dialer', extra), counters: newWireCounters() });
  onTestFinished(() => link.terminate(1001, 'test over'));
  return link;
}

function received(link: Link): { messages: Message[]; closes: number[] } {
  const seen = { messages: [] as Message[], closes: [] as number[] };
  link.attach(
    (msg) => seen.messages.push(msg),
    (code) => seen.closes.push(code),
  );
  return seen;
}

const hello = (extra: object = {}) =>
  JSON.stringify({
    type: 'hello',
    v: PROTOCOL_VERSION,
    cluster: 'quantum-bot',
    peerId: 'stranger',
    bootId: 'stranger-boot',
    nonce: newNonce(),
    listenPort: 1,
    killSwitch: calm,
    ...extra,
  });

describe('before authentication', () => {
  it('refuses upgrades beyond the pending caps with 503, per address and overall', async () => {
    const acceptor = await startAcceptor({ limits: { maxPending: 3, maxPendingPerAddress: 2 } });
    const a1 = await rawSocket(acceptor.address);
    const a2 = await rawSocket(acceptor.address);
    expect(a1).toBeInstanceOf(WebSocket);
    expect(a2).toBeInstanceOf(WebSocket);
    expect(await rawSocket(acceptor.address)).toBe(503);
    expect(await rawSocket(acceptor.address, '127.0.0.2')).toBeInstanceOf(WebSocket);
    expect(await rawSocket(acceptor.address, '127.0.0.3')).toBe(503);
    expect(acceptor.server.admission.pending).toBe(3);
    // A slot frees when its handshake ends.
    (a1 as WebSocket).close();
    await vi.waitFor(() => expect(acceptor.server.admission.pending).toBe(2));
    expect(await rawSocket(acceptor.address)).toBeInstanceOf(WebSocket);
  });

  it('closes a handshake frame over the limit with 1009 before parsing it', async () => {
    const acceptor = await startAcceptor();
    const ws = (await rawSocket(acceptor.address)) as WebSocket;
    const code = closed(ws);
    ws.send(hello({ padding: 'x'.repeat(MAX_HANDSHAKE_FRAME_BYTES) }));
    expect(await code).toBe(CLOSE.TOO_LARGE);
    expect(acceptor.failures.map((f) => f.closeCode)).toEqual([CLOSE.TOO_LARGE]);
  });

  it('cuts a socket that streams more than the pre-authentication budget (fragments, no frame end)', async () => {
    const acceptor = await startAcceptor();
    const ws = (await rawSocket(acceptor.address)) as WebSocket;
    const code = closed(ws);
    const chunk = Buffer.alloc(1024, 0x20);
    for (let i = 0; i <= MAX_PREAUTH_BYTES / 1024 + 4; i++) ws.send(chunk, { binary: false, fin: false });
    expect(await code).not.toBe(undefined);
    await vi.waitFor(() => expect(acceptor.server.admission.pending).toBe(0));
    expect(acceptor.failures.map((f) => f.closeCode)).toContain(CLOSE.TOO_LARGE);
  });

  it('refuses an address whose handshakes keep failing, and only that address', async () => {
    const acceptor = await startAcceptor({ limits: { failureBurst: 3, failuresPerMinute: 1 } });
    for (let i = 0; i < 3; i++) {
      const ws = (await rawSocket(acceptor.address)) as WebSocket;
      const code = closed(ws);
      ws.send('not json');
      expect(await code).toBe(CLOSE.BAD_MESSAGE);
    }
    await vi.waitFor(() => expect(acceptor.failures).toHaveLength(3));
    expect(await rawSocket(acceptor.address)).toBe(503);
    expect(acceptor.server.admission.refused['failing-address']).toBe(1);
    const refused = (await dialHandshake(acceptor.address, options('dialer')).catch((e) => e)) as Error;
    expect(refused.message).toMatch(/503/);
    // Another address is still admitted.
    const other = await rawSocket(acceptor.address, '127.0.0.2');
    expect(other).toBeInstanceOf(WebSocket);
  });
});

describe('sealed links against an on-path attacker', () => {
  it('refuses a hello whose kill switch was rewritten on the way (every field is in the transcript)', async () => {
    const acceptor = await startAcceptor();
    const relay = await startRelay(acceptor.address, {
      toAcceptor: (frame, i, send) => {
        if (i !== 0) return send(frame);
        const forged = JSON.parse(frame.data.toString());
        forged.killSwitch = { active: true, reason: 'forged', since: '', origin: 'mallory', epoch: 99 };
        send({ data: Buffer.from(JSON.stringify(forged)), isBinary: false });
      },
    });
    const err = (await dialHandshake(relay.address, options('dialer')).catch((e) => e)) as HandshakeError;
    expect(err.closeCode).toBe(CLOSE.AUTH_FAILED);
    await vi.waitFor(() => expect(acceptor.failures.map((f) => f.closeCode)).toEqual([CLOSE.AUTH_FAILED]));
    expect(acceptor.links).toHaveLength(0);
  });

  it('carries messages sealed: the attacker sees no plaintext, the peer reads them', async () => {
    const acceptor = await startAcceptor();
    const relay = await startRelay(acceptor.address);
    const link = await dial(relay.address);
    await vi.waitFor(() => expect(acceptor.links).toHaveLength(1));
    const inbox = received(acceptor.links[0] as Link);
    const state = { ...calm, active: true, reason: 'the-secret-plans', epoch: 4 };
    link.send(message('killswitch', { state }));
    await vi.waitFor(() => expect(inbox.messages).toEqual([message('killswitch', { state })]));
    const after = relay.toAcceptor.slice(2);
    expect(after.length).toBeGreaterThan(0);
    for (const f of after) {
      expect(f.isBinary).toBe(true);
      expect(f.data.includes('the-secret-plans')).toBe(false);
    }
    expect(relay.toDialer.slice(1).every((f) => f.isBinary)).toBe(true);
    expect(link.version).toBe(PROTOCOL_VERSION);
  });

  /** Links through a relay whose hook sees the dialer's post-handshake frames (index from 0). */
  async function attacked(hook: (frame: Frame, i: number, send: (f: Frame) => void) => void) {
    const acceptor = await startAcceptor();
    const relay = await startRelay(acceptor.address, {
      toAcceptor: (frame, i, send) => (i < 2 ? send(frame) : hook(frame, i - 2, send)),
    });
    const link = await dial(relay.address);
    await vi.waitFor(() => expect(acceptor.links).toHaveLength(1));
    const inbox = received(acceptor.links[0] as Link);
    const dialerSide = received(link);
    for (let id = 1; id <= 3; id++) link.send(message('ping', { id, t: id }));
    await vi.waitFor(() => expect(inbox.closes).toEqual([CLOSE.UNSEALED]));
    await vi.waitFor(() => expect(dialerSide.closes).toEqual([CLOSE.UNSEALED]));
    return inbox;
  }

  it('closes the link with UNSEALED when a frame is tampered with', async () => {
    const inbox = await attacked((frame, i, send) => {
      if (i === 1) frame.data.writeUInt8((frame.data.at(-20) as number) ^ 0x01, frame.data.length - 20);
      send(frame);
    });
    expect(inbox.messages.map((m) => m.type)).toEqual(['ping']);
  });

  it('closes the link with UNSEALED when a plaintext frame is injected', async () => {
    const inbox = await attacked((frame, i, send) => {
      if (i === 1) {
        const forged = message('killswitch', { state: { ...calm, active: true, epoch: 99 } });
        send({ data: Buffer.from(JSON.stringify(forged)), isBinary: false });
      }
      send(frame);
    });
    expect(inbox.messages.map((m) => m.type)).toEqual(['ping']);
  });

  it('closes the link with UNSEALED when a frame is replayed', async () => {
    const inbox = await attacked((frame, i, send) => {
      send(frame);
      if (i === 0) send(frame);
    });
    expect(inbox.messages.map((m) => m.type)).toEqual(['ping']);
  });

  it('closes the link with UNSEALED when frames are reordered', async () => {
    let held: Frame | undefined;
    const inbox = await attacked((frame, i, send) => {
      if (i === 0) held = frame;
      else {
        send(frame);
        if (held) send(held);
        held = undefined;
      }
    });
    expect(inbox.messages).toEqual([]);
  });

  it('links mid-rotation, each side deriving keys from the secret that verified; refuses without one', async () => {
    const acceptor = await startAcceptor({ secrets: ['the old secret, long enough'] });
    const link = await dial(acceptor.address, {
      secrets: ['the new secret, long enough', 'the old secret, long enough'],
    });
    await vi.waitFor(() => expect(acceptor.links).toHaveLength(1));
    const inbox = received(acceptor.links[0] as Link);
    link.send(message('ping', { id: 1, t: 1 }));
    await vi.waitFor(() => expect(inbox.messages).toHaveLength(1));
    const err = (await dial(acceptor.address, { secrets: ['the new secret, long enough'] }).catch(
      (e) => e,
    )) as HandshakeError;
    expect(err.closeCode).toBe(CLOSE.AUTH_FAILED);
  });
});

describe('versions', () => {
  const NEXT: VersionRange = { min: PROTOCOL_VERSION, max: PROTOCOL_VERSION + 1 };

  it('links a peer speaking N+1 with a peer speaking N on N; counts and ignores what N does not know', async () => {
    const acceptor = await startAcceptor();
    const newer = await dial(acceptor.address, { versions: NEXT });
    expect(newer.version).toBe(PROTOCOL_VERSION);
    await vi.waitFor(() => expect(acceptor.links).toHaveLength(1));
    const older = acceptor.links[0] as Link;
    expect(older.version).toBe(PROTOCOL_VERSION);
    const inbox = received(older);
    // Version N+1 adds a message type and a field, and a link state N does not know.
    newer.send({ type: 'gossip', rumours: ['a'] } as unknown as Message);
    const summary = {
      peerId: 'dialer',
      bootId: 'dialer-boot',
      version: 'next',
      uptime: 1,
      apiPort: 1,
      killSwitch: calm,
      subsystems: [],
      queues: {},
      region: 'eu-west',
      links: [
        { peerId: 'p1', state: 'connected' },
        { peerId: 'p2', state: 'draining' },
      ],
    };
    newer.send({ type: 'status', summary } as unknown as Message);
    newer.send(message('ping', { id: 7, t: 7 }));
    await vi.waitFor(() => expect(inbox.messages.map((m) => m.type)).toEqual(['status', 'ping']));
    const status = inbox.messages[0] as Extract<Message, { type: 'status' }>;
    expect(status.summary.links).toEqual([{ peerId: 'p1', state: 'connected' }]);
    expect(acceptor.opts.counters?.unknownTypes).toEqual({ gossip: 1 });
    expect(acceptor.opts.counters?.ignoredValues).toBe(1);
    expect(older.isOpen).toBe(true);
    expect(inbox.closes).toEqual([]);
  });

  it('refuses a peer with no common version (4406)', async () => {
    const acceptor = await startAcceptor();
    const err = (await dialHandshake(
      acceptor.address,
      options('dialer', { versions: { min: PROTOCOL_VERSION + 1, max: PROTOCOL_VERSION + 2 } }),
    ).catch((e) => e)) as HandshakeError;
    expect(err.closeCode).toBe(CLOSE.BAD_VERSION);
  });

  it('keeps subsystem data within its own budget instead of losing the status or the link', async () => {
    const acceptor = await startAcceptor();
    const link = await dial(acceptor.address);
    await vi.waitFor(() => expect(acceptor.links).toHaveLength(1));
    const inbox = received(acceptor.links[0] as Link);
    const summary = {
      peerId: 'dialer',
      bootId: 'dialer-boot',
      version: 'x',
      uptime: 1,
      apiPort: 1,
      killSwitch: calm,
      subsystems: [],
      queues: {},
      extra: { trading: { pnl: 1 }, bloated: { blob: 'x'.repeat(200 * 1024) } },
    };
    expect(link.send(message('status', { summary }))).toBe(true);
    await vi.waitFor(() => expect(inbox.messages).toHaveLength(1));
    const got = inbox.messages[0] as Extract<Message, { type: 'status' }>;
    expect(got.summary.extra).toEqual({ trading: { pnl: 1 } });
  });
});
