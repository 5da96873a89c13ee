/**
 * What GET /mesh, /status and the dashboard show of the membership table. Pure: built from the
 * PeerTable alone, so the shape of the view can be tested without sockets.
 */
import type { PeerEntry, PeerState, PeerTable, Refusal } from './peer-table.js';
import type { Summary } from './protocol.js';

export interface MeshPeerView {
  peerId: string | null;
  state: PeerState;
  address: string;
  /** ISO time of the last message, null if never linked. */
  lastSeen: string | null;
  rttMs: number | null;
  reconnectAttempts: number;
  status: Summary | null;
  /** Set when the other side refused us (or we refused it) at the handshake. */
  refused?: { code: number; reason: string; at: string };
  /** Set when two live processes use this peer id (PEER_ID conflict): both bootIds, refusals. */
  duplicateId?: { bootIds: string[]; refusals: number; lastAt: string };
}

/**
 * Every known peer once: linked peers by id, then addresses never linked (or refused), sorted by
 * id or address. An address we turned out to be is not shown.
 */
export function meshPeerViews(
  table: PeerTable,
  wall: (monotonic: number) => number = (t) => t,
): MeshPeerView[] {
  const iso = (t: number) => new Date(wall(t)).toISOString();
  const views: MeshPeerView[] = [];
  const shown = new Set<string>();
  for (const p of table.peers.values()) {
    shown.add(p.peerId);
    views.push(peerView(p, refusalOf(table, p.peerId), iso));
  }
  for (const t of table.targets.values()) {
    if (t.self || (t.peerId && shown.has(t.peerId))) continue;
    if (t.peerId) shown.add(t.peerId);
    views.push({
      peerId: t.peerId ?? null,
      state: t.refused || t.attempts > 1 ? 'down' : 'connecting',
      address: t.address,
      lastSeen: null,
      rttMs: null,
      reconnectAttempts: t.attempts,
      status: null,
      ...(t.refused ? { refused: refusalView(t.refused, iso) } : {}),
    });
  }
  return views.sort((a, b) => (a.peerId ?? a.address).localeCompare(b.peerId ?? b.address));
}

function refusalOf(table: PeerTable, peerId: string): Refusal | undefined {
  for (const t of table.targets.values()) if (t.peerId === peerId && t.refused) return t.refused;
  return undefined;
}

function peerView(p: PeerEntry, refused: Refusal | undefined, iso: (t: number) => string): MeshPeerView {
  return {
    peerId: p.peerId,
    state: p.state,
    address: p.address,
    lastSeen: iso(p.lastSeen),
    rttMs: p.rttMs,
    reconnectAttempts: p.reconnectAttempts,
    status: p.status,
    ...(refused && p.state === 'down' ? { refused: refusalView(refused, iso) } : {}),
    ...(p.duplicate
      ? {
          duplicateId: {
            bootIds: [...p.duplicate.bootIds],
            refusals: p.duplicate.refusals,
            lastAt: iso(p.duplicate.lastAt),
          },
        }
      : {}),
  };
}

function refusalView(r: Refusal, iso: (t: number) => string) {
  return { code: r.code, reason: r.reason, at: iso(r.at) };
}
