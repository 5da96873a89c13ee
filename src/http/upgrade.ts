/**
 * Routes HTTP upgrades by path to the WebSocket endpoints that share the API server (/mesh, /live).
 * Anything else is refused with 404 and the socket closed: a dangling upgrade would leak a socket.
 * Browser-facing paths check Host and Origin first (origin.ts); paths in `exempt` (the mesh, whose
 * peers dial by service name and authenticate by HMAC) do not.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { ERRORS, type ErrorCode } from '../errors.js';
import { type BrowserPolicy, hostAllowed, originAllowed } from './origin.js';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

export interface UpgradeGuard {
  policy: BrowserPolicy;
  /** Paths that skip the Host and Origin checks. */
  exempt: readonly string[];
}

/** One handler for every upgrade, dispatching by path, after the Host and Origin checks. */
export function upgradeRouter(routes: Record<string, UpgradeHandler>, guard?: UpgradeGuard): UpgradeHandler {
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://upgrade.invalid').pathname;
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (guard && !guard.exempt.includes(path)) {
      if (!hostAllowed(guard.policy, req.headers.host)) return refuse(socket, 'QB_ERR_HOST_NOT_ALLOWED');
      if (!originAllowed(guard.policy, req.headers.origin, req.headers.host)) {
        return refuse(socket, 'QB_ERR_ORIGIN_NOT_ALLOWED');
      }
    }
    handler(req, socket, head);
  };
}

export function routeUpgrades(
  server: Server,
  routes: Record<string, UpgradeHandler>,
  guard?: UpgradeGuard,
): void {
  server.on('upgrade', upgradeRouter(routes, guard));
}

function refuse(socket: Duplex, code: ErrorCode): void {
  const { status, description } = ERRORS[code];
  const body = JSON.stringify({ error: { code, message: description } });
  socket.end(
    `HTTP/1.1 ${status} Refused\r\nConnection: close\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    () => socket.destroy(),
  );
}
