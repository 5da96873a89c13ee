/**
 * The fleet as one peer sees it: a card per peer (itself included) and the links between them.
 * Pure: built from this peer's own status and its mesh view, so the dashboard and the /live feed
 * show the same thing and a unit test needs no socket.
 */
import type { SubsystemStatus } from '../actors/root.js';
import type { Summary } from '../mesh/protocol.js';
import type { MeshPeerView } from '../mesh/view.js';
import { isNewer, type KillSwitchState, killSwitchView } from '../store/kill-switch.js';

export type CardState = 'connecting' | 'connected' | 'suspect' | 'down';

export interface PeerCard {
  peerId: string;
  /** The peer serving this view. */
  self: boolean;
  state: CardState;
  /** host:port of its API and dashboard, when known. */
  address: string | null;
  version: string | null;
  /** Seconds, as the peer last reported it. */
  uptime: number | null;
  /** ISO time of the last message from it (now, for itself). */
  lastSeen: string | null;
  rttMs: number | null;
  reconnectAttempts: number;
  subsystems: { name: string; state: string; restarts: number }[];
  queues: Record<string, number>;
  /** The trading subsystem's summary (mode, exchange, PnL), once it exists. */
  trading: unknown;
  /** The AI subsystem's summary: state, breaker, pause reason, spend against the caps. */
  ai?: unknown;
  /** The freelance subsystem's summary: jobs awaiting approval, failing feeds. */
  freelance?: unknown;
  /** killSwitchView of the peer's state (its own, or the one its summary reported). */
  killSwitch: KillSwitchState | null;
  refused: { code: number; reason: string } | null;
  /** Two live processes use this peer id (PEER_ID conflict): the dashboard shows a badge. */
  duplicateId?: { bootIds: string[]; refusals: number } | null;
}

export interface FleetLink {
  from: string;
  to: string;
  state: CardState;
}

export interface Fleet {
  self: string;
  peers: PeerCard[];
  links: FleetLink[];
}

export interface LocalView {
  peerId: string;
  address: string;
  version: string;
  uptime: number;
  subsystems: SubsystemStatus[];
  killSwitch: KillSwitchState;
  summary: Summary | null;
  now: number;
}

/**
 * @param options.links false leaves `links` empty: the cards alone cost O(N), the links O(N^2) (every
 * peer reports its own N-1), which an idle /live feed with nobody watching does not need.
 */
export function buildFleet(
  local: LocalView,
  meshPeers: MeshPeerView[],
  options: { links?: boolean } = {},
): Fleet {
  const withLinks = options.links ?? true;
  const self: PeerCard = {
    peerId: local.peerId,
    self: true,
    state: 'connected',
    address: local.address,
    version: local.version,
    uptime: local.uptime,
    lastSeen: new Date(local.now).toISOString(),
    rttMs: 0,
    reconnectAttempts: 0,
    subsystems: local.subsystems.map((s) => ({ name: s.name, state: s.state, restarts: s.restarts })),
    queues: local.summary?.queues ?? {},
    trading: local.summary?.extra?.trading ?? null,
    ai: local.summary?.extra?.ai ?? null,
    freelance: local.summary?.extra?.freelance ?? null,
    killSwitch: killSwitchView(local.killSwitch),
    refused: null,
    duplicateId: null,
  };
  const peers: PeerCard[] = [self];
  const links: FleetLink[] = [];
  for (const p of meshPeers) {
    const id = p.peerId ?? `unknown@${p.address}`;
    const s = p.status;
    peers.push({
      peerId: id,
      self: false,
      state: p.state,
      address: s ? apiAddress(p.address, s.apiPort) : p.address,
      version: s?.version ?? null,
      uptime: s?.uptime ?? null,
      lastSeen: p.lastSeen,
      rttMs: p.rttMs,
      reconnectAttempts: p.reconnectAttempts,
      subsystems: s?.subsystems ?? [],
      queues: s?.queues ?? {},
      trading: s?.extra?.trading ?? null,
      ai: s?.extra?.ai ?? null,
      freelance: s?.extra?.freelance ?? null,
      killSwitch: s ? cardKillSwitch(p.state, s.killSwitch, local.killSwitch) : null,
      refused: p.refused ? { code: p.refused.code, reason: p.refused.reason } : null,
      duplicateId: p.duplicateId
        ? { bootIds: p.duplicateId.bootIds, refusals: p.duplicateId.refusals }
        : null,
    });
    if (!withLinks) continue;
    if (p.peerId) links.push({ from: local.peerId, to: p.peerId, state: p.state });
    // What the other peer says of its own links completes the picture (only while we hear it).
    if (s?.links && p.state !== 'down') {
      for (const l of s.links)
        if (l.peerId !== local.peerId) links.push({ from: s.peerId, to: l.peerId, state: l.state });
    }
  }
  return { self: local.peerId, peers, links: undirected(links) };
}

/**
 * A linked peer's kill switch. A change floods to every linked peer at once and the newer state
 * always wins, so a connected peer holds this peer's state as soon as it is newer than what the peer
 * last reported; its own status only says so at its next sync (up to MESH_SYNC_INTERVAL later).
 * Shown at once, every card agrees with the kill switch bar instead of showing the old epoch. A peer
 * that is not connected keeps its last report: it adopts the change only when it links again.
 */
function cardKillSwitch(
  state: CardState,
  reported: KillSwitchState,
  local: KillSwitchState,
): NonNullable<PeerCard['killSwitch']> {
  const shown = state === 'connected' && isNewer(local, reported) ? local : reported;
  return killSwitchView(shown);
}

const SEVERITY: Record<CardState, number> = { connected: 0, connecting: 1, suspect: 2, down: 3 };

/** One link per pair, with the worse of the two views (a half-broken link shows as broken). */
function undirected(links: FleetLink[]): FleetLink[] {
  const pairs = new Map<string, FleetLink>();
  for (const l of links) {
    const [a, b] = l.from < l.to ? [l.from, l.to] : [l.to, l.from];
    const key = `${a}\u0000${b}`;
    const seen = pairs.get(key);
    if (!seen || SEVERITY[l.state] > SEVERITY[seen.state]) pairs.set(key, { from: a, to: b, state: l.state });
  }
  return [...pairs.values()].sort((x, y) => `${x.from}${x.to}`.localeCompare(`${y.from}${y.to}`));
}

/** The mesh address's host with the port the peer says its API listens on. */
function apiAddress(meshAddress: string, apiPort: number): string {
  const host = meshAddress.slice(0, meshAddress.lastIndexOf(':'));
  return `${host}:${apiPort}`;
}
