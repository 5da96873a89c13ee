/**
 * The boot gate: the API server listens first, before fastify, SQLite, the actors and the mesh are
 * even loaded, so a worker answers its liveness probe within a few tens of milliseconds of running
 * its code. Until the app is ready the gate answers GET/HEAD /health itself (the same body as the
 * route), answers /ready with 503 "starting", and holds every other request and WebSocket upgrade;
 * `open()` hands the server to fastify and replays what it held, so nothing is refused while the
 * rest loads. Fastify takes the server through `serverFactory`; it does not listen or close it,
 * the gate does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { HealthMonitor } from '../actors/health-monitor.js';
import { ERRORS } from '../errors.js';
import { errorBody } from './errors.js';
import { HEALTH_CONTENT_TYPE, healthBody } from './routes/health.js';

/** Requests and upgrades held while booting, at most; beyond that they get 503. */
export const MAX_HELD = 1_024;

/** fastify's defaults for the server it would create itself (keep-alive 72 s, no request timeout). */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

type Handler = (req: IncomingMessage, res: ServerResponse) => void;
type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
type Held =
  | { kind: 'request'; req: IncomingMessage; res: ServerResponse }
  | { kind: 'upgrade'; req: IncomingMessage; socket: Duplex; head: Buffer };

export interface BootGateOptions {
  /** Answers /health before the app exists; the app answers it from the same monitor later. */
  health: HealthMonitor;
  maxHeld?: number;
}

export class BootGate {
  readonly server: Server;
  readonly health: HealthMonitor;
  private handler: Handler | undefined;
  private upgradeHandler: UpgradeHandler | undefined;
  private held: Held[] = [];
  private sockets = 0;
  private state: 'booting' | 'open' | 'failed' = 'booting';
  private readonly maxHeld: number;

  constructor(options: BootGateOptions) {
    this.health = options.health;
    this.maxHeld = options.maxHeld ?? MAX_HELD;
    this.server = createServer();
    this.server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
    this.server.requestTimeout = 0;
    this.server.on('connection', (socket) => {
      this.sockets++;
      socket.once('close', () => this.sockets--);
    });
    this.server.on('request', this.onRequest);
    this.server.on('upgrade', this.onUpgrade);
  }

  /** Open TCP connections to the server, counted from its first one. */
  get openSockets(): number {
    return this.sockets;
  }

  /** Requests and upgrades held now. */
  get waiting(): number {
    return this.held.length;
  }

  listen(port: number, host: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** fastify's `serverFactory`: fastify routes on this server once the gate opens. */
  readonly serverFactory = (handler: Handler): Server => {
    this.handler = handler;
    return this.server;
  };

  /**
   * Where upgrades go once open. Until then the gate alone listens for them: a listener attached to
   * the server directly would see an upgrade the gate also holds, and take it twice.
   */
  upgradesTo(handler: UpgradeHandler): void {
    this.upgradeHandler = handler;
  }

  /** Call once the app is ready: requests and upgrades go to it, and what was held is replayed. */
  open(): void {
    if (this.state !== 'booting' || !this.handler) throw new Error('boot gate: nothing to open to');
    this.state = 'open';
    const upgrade = this.upgradeHandler ?? refuseUpgrade;
    this.server.off('request', this.onRequest);
    this.server.off('upgrade', this.onUpgrade);
    this.server.on('request', this.handler);
    this.server.on('upgrade', upgrade);
    const held = this.held;
    this.held = [];
    for (const h of held) {
      if (h.kind === 'request') this.handler(h.req, h.res);
      else upgrade(h.req, h.socket, h.head);
    }
  }

  /** The app could not be built: whatever was held gets 503 (the process is about to exit). */
  fail(): void {
    if (this.state !== 'booting') return;
    this.state = 'failed';
    for (const h of this.held.splice(0)) {
      if (h.kind === 'request') unavailable(h.res);
      else h.socket.destroy();
    }
  }

  /** Stops listening and drops every connection; fastify does not close a server it did not listen. */
  close(): Promise<void> {
    this.fail();
    if (!this.server.listening) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    return closed;
  }

  private readonly onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '/').split('?', 1)[0];
    if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = healthBody(this.health);
      res.writeHead(200, {
        'content-type': HEALTH_CONTENT_TYPE,
        'content-length': Buffer.byteLength(body),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (path === '/ready' && req.method === 'GET') {
      json(res, 503, { ready: false, reasons: ['the peer is starting'] });
      return;
    }
    if (this.state === 'failed' || this.held.length >= this.maxHeld) {
      unavailable(res);
      return;
    }
    this.held.push({ kind: 'request', req, res });
  };

  private readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy());
    if (this.state === 'failed' || this.held.length >= this.maxHeld) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.held.push({ kind: 'upgrade', req, socket, head });
  };
}

function refuseUpgrade(_req: IncomingMessage, socket: Duplex): void {
  socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}

function json(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'content-type': HEALTH_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

function unavailable(res: ServerResponse): void {
  res.setHeader('retry-after', '1');
  json(
    res,
    ERRORS.QB_ERR_STARTING.status,
    errorBody('QB_ERR_STARTING', 'the peer is starting; retry shortly'),
  );
}
