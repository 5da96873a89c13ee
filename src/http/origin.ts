/**
 * The browser surface: which Host headers the API answers and which Origins may open a WebSocket.
 *
 * Host: a web page the operator opens elsewhere can make its own name resolve to 127.0.0.1 (DNS
 * rebinding) and then read this API as same-origin; its requests still carry its own name in Host,
 * so only names on the allow-list are answered (any port). Origin: a browser sends it on every
 * WebSocket upgrade and the same-origin policy does not apply to WebSockets, so /live accepts only
 * the page's own origin (its Origin names the Host it connects to, which passed the Host check) and
 * the listed ones. Scripts and peers send no Origin; they are not browsers and are let through.
 * The /mesh endpoint is exempt from both: peers dial it by service name (docker compose, Kubernetes)
 * and every socket must pass the HMAC handshake anyway.
 */
import { hostname, networkInterfaces } from 'node:os';

export interface BrowserPolicy {
  /** Lower-case host names and addresses without port; undefined: any host. */
  hosts: ReadonlySet<string> | undefined;
  /** Lower-case `scheme://host[:port]` origins allowed besides the page's own. */
  origins: ReadonlySet<string>;
}

const ANY_ADDRESS = new Set(['0.0.0.0', '::', '']);

/**
 * The policy from configuration: HTTP_ALLOWED_HOSTS (`*` allows any) or the defaults: localhost,
 * the loopback addresses, the bound address (every interface's when bound to all) and the
 * machine's hostname.
 */
export function browserPolicy(opts: {
  allowedHosts: readonly string[] | undefined;
  allowedOrigins: readonly string[];
  boundHost: string;
}): BrowserPolicy {
  const origins = new Set(opts.allowedOrigins.map((o) => o.toLowerCase().replace(/\/+$/, '')));
  if (opts.allowedHosts?.includes('*')) return { hosts: undefined, origins };
  const hosts = new Set<string>();
  const add = (h: string) => hosts.add(stripBrackets(h.toLowerCase()));
  if (opts.allowedHosts) for (const h of opts.allowedHosts) add(h);
  else {
    for (const h of ['localhost', '127.0.0.1', '::1', hostname()]) add(h);
    if (ANY_ADDRESS.has(opts.boundHost)) {
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) add(a.address);
    } else add(opts.boundHost);
  }
  return { hosts, origins };
}

function stripBrackets(h: string): string {
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

/** The name of a Host header without its port: `[::1]:9000` -> `::1`, `Peer-A:80` -> `peer-a`. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  // More than one colon without brackets is a bare IPv6 address (not valid in Host, but harmless).
  if (colon > 0 && h.indexOf(':') === colon) return h.slice(0, colon);
  return h;
}

export function hostAllowed(policy: BrowserPolicy, header: string | undefined): boolean {
  if (!policy.hosts) return true;
  if (!header) return false;
  // localhost and its subdomains resolve to loopback by definition (RFC 6761).
  const name = hostName(header).replace(/\.$/, '');
  return policy.hosts.has(name) || name.endsWith('.localhost');
}

/** Whether a WebSocket upgrade with this Origin (to this Host) may proceed. */
export function originAllowed(
  policy: BrowserPolicy,
  origin: string | undefined,
  host: string | undefined,
): boolean {
  if (origin === undefined) return true;
  const o = origin.toLowerCase().replace(/\/+$/, '');
  if (policy.origins.has(o)) return true;
  if (!host) return false;
  let url: URL;
  try {
    url = new URL(o);
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
  return (
    (url.protocol === 'http:' || url.protocol === 'https:') && url.host === new URL(`http://${host}`).host
  );
}
