/**
 * Meshes of real peer processes for integration tests, on top of startBot: ports chosen up front so
 * every peer can list the others in MESH_PEERS, one generated MESH_SECRET and API_TOKEN per mesh,
 * and small readers of GET /mesh. Static discovery on 127.0.0.1 unless a test says otherwise.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { type BotProcess, freePort, LOOPBACK, type StartOptions, startBot } from './process.js';

export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** `count` distinct ports that were free a moment ago. */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

export interface Member {
  peerId: string;
  port: number;
  /** The environment it was started with (a restart reuses it). */
  env: Record<string, string>;
  bot: BotProcess;
}

export interface MeshSpec {
  /** One peer id per member. */
  peerIds: readonly string[];
  secret: string;
  token: string;
  /** Ports to use (default: free ones). */
  ports?: readonly number[];
  /** Extra addresses every member lists in MESH_PEERS besides the other members. */
  alsoDial?: readonly string[];
  /** Added to every member's environment. */
  env?: Record<string, string>;
  /** Per-member additions, by peer id. */
  envOf?: Record<string, Record<string, string>>;
  start?: Omit<StartOptions, 'env'>;
}

/** The environment of one static-discovery member. */
export function memberEnv(spec: MeshSpec, ports: readonly number[], index: number): Record<string, string> {
  const port = ports[index] as number;
  const peerId = spec.peerIds[index] as string;
  const peers = [...ports.filter((p) => p !== port).map((p) => `${LOOPBACK}:${p}`), ...(spec.alsoDial ?? [])];
  return {
    CONTINUOUS_MODE: 'false',
    PEER_ID: peerId,
    PORT: String(port),
    MESH_SECRET: spec.secret,
    API_TOKEN: spec.token,
    MESH_DISCOVERY: 'static',
    MESH_PEERS: peers.join(','),
    // The shortest the configuration allows: a lost peer is re-dialed by the sweep within 1 s too.
    RECONNECT_INTERVAL: '1000',
    MESH_SYNC_INTERVAL: '1000',
    ...spec.env,
    ...spec.envOf?.[peerId],
  };
}

/** Starts every member at once; each is killed (by PID) when the test finishes. */
export async function startMesh(spec: MeshSpec): Promise<Member[]> {
  const ports = spec.ports ?? (await freePorts(spec.peerIds.length));
  return Promise.all(
    spec.peerIds.map(async (peerId, i) => {
      const env = memberEnv(spec, ports, i);
      const bot = await startBot({ ...spec.start, env });
      return { peerId, port: ports[i] as number, env, bot };
    }),
  );
}

export interface PeerView {
  peerId: string | null;
  state: 'connecting' | 'connected' | 'suspect' | 'down';
  address: string;
  lastSeen: string | null;
  rttMs: number | null;
  reconnectAttempts: number;
  // biome-ignore lint/suspicious/noExplicitAny: a peer's status summary, read field by field.
  status: any;
  refused?: { code: number; reason: string; at: string };
}

export interface MeshAnswer {
  // biome-ignore lint/suspicious/noExplicitAny: self carries optional fields (running, discovery, reason).
  self: any;
  peers: PeerView[];
  reconnectAttempts: number;
}

export async function meshOf(bot: BotProcess): Promise<MeshAnswer> {
  const answer = await bot.get('/mesh');
  expect(answer.status, answer.body).toBe(200);
  return answer.json();
}

export function peerIn(view: MeshAnswer, peerId: string): PeerView | undefined {
  return view.peers.find((p) => p.peerId === peerId);
}

/** Asserts (for vi.waitFor) that every observer sees every listed peer in `state`. */
export async function expectStates(
  observers: readonly Member[],
  peerIds: readonly string[],
  state: PeerView['state'],
): Promise<void> {
  const views = await Promise.all(observers.map((o) => meshOf(o.bot)));
  for (const [i, view] of views.entries()) {
    for (const peerId of peerIds) {
      expect(peerIn(view, peerId)?.state, `${observers[i]?.peerId} sees ${peerId}`).toBe(state);
    }
  }
}

/** Asserts that every member sees every other member connected: a full mesh. */
export async function expectFullMesh(members: readonly Member[]): Promise<void> {
  await Promise.all(
    members.map((m) =>
      expectStates(
        [m],
        members.filter((o) => o !== m).map((o) => o.peerId),
        'connected',
      ),
    ),
  );
}
