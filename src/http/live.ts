/**
 * The /live feed: a WebSocket that pushes the fleet to dashboards and scripts. A subscriber gets a
 * `snapshot` first, then deltas (`peer`, `peer-removed`, `links`, `killswitch`, `event`) as they
 * happen. The server compares the fleet every `intervalMs` in process (cheap) so no client polls.
 * Messages are documented in docs/live-feed.md; their shapes are part of the contract.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import type { Logger } from '../logger.js';
import { type KillSwitchState, killSwitchView } from '../store/kill-switch.js';
import { tokenMatches } from './auth.js';
import type { Fleet, FleetLink, PeerCard } from './fleet.js';

export const LIVE_PATH = '/live';
export const LIVE_FEED_VERSION = 1;
export const DEFAULT_LIVE_INTERVAL_MS = 250;
/** With nobody watching, the fleet is still compared (for the event log), but less often. */
export const IDLE_INTERVAL_MS = 1_000;
export const MAX_EVENTS = 300;
/** Close code when DASHBOARD_TOKEN_REQUIRED is set and the first message is not a valid token. */
export const LIVE_CLOSE_UNAUTHORIZED = 4401;
const AUTH_TIMEOUT_MS = 5_000;
/** A subscriber that cannot keep up is dropped rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
const CLIENT_PING_MS = 15_000;

export type EventKind =
  | 'join'
  | 'leave'
  | 'suspect'
  | 'recover'
  | 'refused'
  | 'restart'
  | 'failed'
  | 'kill-switch';

export interface LiveEvent {
  at: string;
  kind: EventKind;
  peerId: string | null;
  message: string;
}

export type LiveMessage =
  | {
      type: 'snapshot';
      v: number;
      at: string;
      self: string;
      peers: PeerCard[];
      links: FleetLink[];
      killSwitch: KillSwitchState;
      events: LiveEvent[];
    }
  | { type: 'peer'; at: string; peer: PeerCard }
  | { type: 'peer-removed'; at: string; peerId: string }
  | { type: 'links'; at: string; links: FleetLink[] }
  | { type: 'killswitch'; at: string; killSwitch: KillSwitchState }
  | { type: 'event'; event: LiveEvent };

/** What changed between two fleets: deltas to send and events to log. Pure. */
export function diffFleet(
  prev: Fleet,
  next: Fleet,
  at: string,
): { messages: LiveMessage[]; events: LiveEvent[] } {
  const messages: LiveMessage[] = [];
  const events: LiveEvent[] = [];
  const before = new Map(prev.peers.map((p) => [p.peerId, p]));
  const after = new Map(next.peers.map((p) => [p.peerId, p]));
  const event = (kind: EventKind, peerId: string | null, message: string) =>
    events.push({ at, kind, peerId, message });

  for (const card of next.peers) {
    const old = before.get(card.peerId);
    if (old && JSON.stringify(old) === JSON.stringify(card)) continue;
    messages.push({ type: 'peer', at, peer: card });
    if (!old) {
      if (card.state === 'connected' && !card.self)
        event('join', card.peerId, `${card.peerId} joined (${card.address})`);
      if (card.refused) event('refused', card.peerId, refusedText(card));
      continue;
    }
    if (old.state !== card.state) {
      if (card.state === 'connected') {
        event(old.state === 'suspect' ? 'recover' : 'join', card.peerId, `${card.peerId} is connected`);
      } else if (card.state === 'suspect')
        event('suspect', card.peerId, `${card.peerId} is not answering (suspect)`);
      else if (card.state === 'down') event('leave', card.peerId, `${card.peerId} is down`);
    }
    if (card.refused && (!old.refused || old.refused.code !== card.refused.code)) {
      event('refused', card.peerId, refusedText(card));
    }
    const oldSubs = new Map(old.subsystems.map((s) => [s.name, s]));
    for (const s of card.subsystems) {
      const o = oldSubs.get(s.name);
      if (o && s.restarts > o.restarts)
        event('restart', card.peerId, `${card.peerId}: ${s.name} restarted (${s.restarts})`);
      if (o && s.state === 'failed' && o.state !== 'failed')
        event('failed', card.peerId, `${card.peerId}: ${s.name} failed`);
    }
  }
  for (const id of before.keys()) {
    if (!after.has(id)) {
      messages.push({ type: 'peer-removed', at, peerId: id });
      event('leave', id, `${id} left the table`);
    }
  }
  if (JSON.stringify(prev.links) !== JSON.stringify(next.links))
    messages.push({ type: 'links', at, links: next.links });
  return { messages, events };
}

function refusedText(card: PeerCard): string {
  return `handshake with ${card.address ?? card.peerId} refused: ${card.refused?.reason} (${card.refused?.code})`;
}

export interface LiveFeedOptions {
  /** The fleet now; without `links` when nobody watches (they cost O(N^2), see buildFleet). */
  fleet: (options: { links: boolean }) => Fleet;
  killSwitch: () => KillSwitchState;
  onKillSwitchChange: (listener: (state: KillSwitchState) => void) => () => void;
  /** When set, a subscriber must first send {type:'auth', token}. */
  tokenRequired: boolean;
  apiToken: string;
  logger: Logger;
  intervalMs?: number;
  now?: () => number;
}

export class LiveFeed {
  private readonly server = new WebSocketServer({
    noServer: true,
    maxPayload: 64 * 1024,
    perMessageDeflate: false,
  });
  private readonly subscribers = new Set<WebSocket>();
  private readonly events: LiveEvent[] = [];
  private previous: Fleet | undefined;
  /** `previous` was built with its links (someone watched then). */
  private previousHasLinks = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private pinger: NodeJS.Timeout | undefined;
  private refreshSoon: NodeJS.Immediate | undefined;
  private unsubscribe: (() => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: LiveFeedOptions) {
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.previous = this.fleet();
    this.schedule();
    this.pinger = setInterval(() => this.pingSubscribers(), CLIENT_PING_MS);
    this.unsubscribe = this.opts.onKillSwitchChange((state) => {
      const at = new Date(this.now()).toISOString();
      this.record({
        at,
        kind: 'kill-switch',
        peerId: state.origin || null,
        message: `kill switch ${state.active ? 'ACTIVATED' : 'deactivated'} by ${state.origin}: ${state.reason}`,
      });
      this.broadcast({ type: 'killswitch', at, killSwitch: killSwitchView(state) });
      // Cards carry the kill switch too; refresh them soon rather than at the next tick, but after
      // the other listeners of this change (the mesh relays it to every peer) have run.
      if (!this.refreshSoon)
        this.refreshSoon = setImmediate(() => {
          this.refreshSoon = undefined;
          if (this.running) this.tick();
        });
    });
  }

  stop(): void {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    if (this.pinger) clearInterval(this.pinger);
    if (this.refreshSoon) clearImmediate(this.refreshSoon);
    this.refreshSoon = undefined;
    this.timer = undefined;
    this.unsubscribe?.();
    for (const ws of this.subscribers) ws.close(1001, 'peer stopping');
    this.subscribers.clear();
  }

  /** The event log, oldest first. */
  recentEvents(): LiveEvent[] {
    return [...this.events];
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.server.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => ws.terminate());
      if (!this.opts.tokenRequired) return this.subscribe(ws);
      const timer = setTimeout(
        () => ws.close(LIVE_CLOSE_UNAUTHORIZED, 'send {"type":"auth","token":...} first'),
        AUTH_TIMEOUT_MS,
      );
      ws.once('message', (data) => {
        clearTimeout(timer);
        let token: unknown;
        try {
          token = (JSON.parse(data.toString()) as { type?: string; token?: unknown }).token;
        } catch {
          token = undefined;
        }
        if (typeof token === 'string' && tokenMatches(token, this.opts.apiToken)) this.subscribe(ws);
        else ws.close(LIVE_CLOSE_UNAUTHORIZED, 'wrong or missing token');
      });
    });
  }

  private subscribe(ws: WebSocket): void {
    this.subscribers.add(ws);
    (ws as WebSocket & { alive?: boolean }).alive = true;
    ws.on('pong', () => {
      (ws as WebSocket & { alive?: boolean }).alive = true;
    });
    ws.on('close', () => this.subscribers.delete(ws));
    // An idle feed compared cards only: the first watcher gets the links too, and the ticks that
    // follow compare them.
    if (!this.previous || !this.previousHasLinks) this.previous = this.fleet();
    const fleet = this.previous;
    this.send(ws, {
      type: 'snapshot',
      v: LIVE_FEED_VERSION,
      at: new Date(this.now()).toISOString(),
      self: fleet.self,
      peers: fleet.peers,
      links: fleet.links,
      killSwitch: killSwitchView(this.opts.killSwitch()),
      events: this.recentEvents(),
    });
  }

  /** Every 250 ms while someone watches; every second otherwise (an idle peer should sleep). */
  private schedule(): void {
    if (!this.running) return;
    const busy = this.subscribers.size > 0;
    const delay = busy ? (this.opts.intervalMs ?? DEFAULT_LIVE_INTERVAL_MS) : IDLE_INTERVAL_MS;
    this.timer = setTimeout(() => {
      this.tick();
      this.schedule();
    }, delay);
  }

  /** With links only while someone watches: the event log needs the cards alone. */
  private fleet(): Fleet {
    const links = this.subscribers.size > 0;
    const fleet = this.opts.fleet({ links });
    this.previousHasLinks = links;
    return fleet;
  }

  private tick(): void {
    try {
      const next = this.fleet();
      if (this.previous) {
        const { messages, events } = diffFleet(this.previous, next, new Date(this.now()).toISOString());
        for (const m of messages) this.broadcast(m);
        for (const e of events) this.record(e);
      }
      this.previous = next;
    } catch (err) {
      this.opts.logger.error({ err }, 'live feed update failed');
    }
  }

  private record(event: LiveEvent): void {
    this.events.push(event);
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
    this.broadcast({ type: 'event', event });
  }

  private broadcast(msg: LiveMessage): void {
    if (this.subscribers.size === 0) return;
    const text = JSON.stringify(msg);
    for (const ws of this.subscribers) this.send(ws, msg, text);
  }

  private send(ws: WebSocket, msg: LiveMessage, text = JSON.stringify(msg)): void {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      ws.terminate();
      this.subscribers.delete(ws);
      return;
    }
    ws.send(text);
  }

  private pingSubscribers(): void {
    for (const ws of this.subscribers) {
      const w = ws as WebSocket & { alive?: boolean };
      if (!w.alive) {
        ws.terminate();
        this.subscribers.delete(ws);
        continue;
      }
      w.alive = false;
      ws.ping();
    }
  }
}
