/**
 * host:port strings, the one address form a Sighting carries. Pure: no I/O.
 * IPv6 hosts are written in brackets ([fe80::1%eth0]:9000) so the last colon is always the port's.
 */

import { isIPv6 } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/** `host:port`, with an IPv6 host put in brackets. */
export function formatHostPort(host: string, port: number): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  // isIPv6 refuses zone ids ('fe80::1%eth0'); any host with a colon can only be IPv6 here.
  return isIPv6(bare) || bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

export function isValidPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65_535;
}

/**
 * Splits `host:port` or `[v6]:port`. Returns the host without brackets, or undefined when the text
 * has no valid port. A bare IPv6 address (`::1`) has no port: undefined too.
 */
export function parseHostPort(text: string): HostPort | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  const host = m[1] ?? m[2];
  if (host === undefined || host.length === 0 || !isValidPort(port)) return undefined;
  return { host, port };
}
