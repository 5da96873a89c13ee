/**
 * Routes HTTP upgrades by path to the WebSocket endpoints that share the API server (/mesh, /live).
 * Anything else is refused with 404 and the socket closed: a dangling upgrade would leak a socket.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

export type UpgradeHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** One handler for every upgrade, dispatching by path. */
export function upgradeRouter(routes: Record<string, UpgradeHandler>): UpgradeHandler {
  return (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const path = new URL(req.url ?? '/', 'http://upgrade.invalid').pathname;
    const handler = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    handler(req, socket, head);
  };
}

export function routeUpgrades(server: Server, routes: Record<string, UpgradeHandler>): void {
  server.on('upgrade', upgradeRouter(routes));
}
