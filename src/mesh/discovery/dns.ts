/**
 * MESH_DNS_NAME: the A and AAAA records of one name are the peers (a docker compose service name,
 * a Kubernetes headless service). The name is resolved again every `intervalMs`, each address
 * reported as host:port. A failed lookup (ENOTFOUND while no replica is up yet) goes to onError and
 * the next tick tries again.
 *
 * The default resolver is `dns.promises.lookup(name, { all: true })` (getaddrinfo), not
 * `resolve4/resolve6`: it honours /etc/hosts, nsswitch and the resolv.conf of the network namespace,
 * which is what docker's embedded DNS and `ip netns` test hosts rely on.
 */

import { promises as dnsPromises, type LookupAddress } from 'node:dns';
import { QbError } from '../../errors.js';
import { formatHostPort, isValidPort, parseHostPort } from './address.js';
import { type GuardedContext, guardContext } from './guard.js';
import type { Discovery } from './types.js';

export const DEFAULT_DNS_INTERVAL_MS = 5_000;
export const DEFAULT_DNS_SLOW_LOOKUP_MS = 10_000;

/** The shape of `dns.promises.lookup` with `{ all: true }`; injectable for tests. */
export type LookupAll = (hostname: string, options: { all: true }) => Promise<LookupAddress[]>;

export interface DnsDiscoveryOptions {
  /** The DNS name, or `name:port` (its port then wins over `port`). */
  name: string;
  /** Port every address is dialed on, unless `name` carries one. */
  port?: number;
  /** ms between the end of one lookup and the start of the next. Default 5000. */
  intervalMs?: number;
  /** ms after which a lookup still pending is reported to onError (it is not started twice). Default 10000. */
  slowLookupMs?: number;
  lookup?: LookupAll;
}

const defaultLookup: LookupAll = (hostname, options) => dnsPromises.lookup(hostname, options);

/** @throws QbError QB_ERR_CONFIG when no port is known or an interval is not positive. */
export function createDnsDiscovery(options: DnsDiscoveryOptions): Discovery {
  const {
    intervalMs = DEFAULT_DNS_INTERVAL_MS,
    slowLookupMs = DEFAULT_DNS_SLOW_LOOKUP_MS,
    lookup = defaultLookup,
  } = options;
  const target = resolveTarget(options.name, options.port);
  for (const [key, value] of [
    ['intervalMs', intervalMs],
    ['slowLookupMs', slowLookupMs],
  ] as const) {
    if (!(value > 0)) throw new QbError('QB_ERR_CONFIG', `dns discovery ${key} must be > 0; got ${value}`);
  }

  let context: GuardedContext | undefined;
  let timer: NodeJS.Timeout | undefined;
  // Bumped by stop(): a lookup that settles after it belongs to an old run and is dropped.
  let run = 0;

  const tick = async (myRun: number): Promise<void> => {
    // Never two lookups at once: a hung getaddrinfo holds a libuv pool thread, and piling more on
    // would starve fs and crypto work of the whole process. Report it instead.
    const slow = setTimeout(() => {
      if (myRun === run) {
        context?.error(new Error(`DNS lookup of ${target.host} still pending after ${slowLookupMs} ms`));
      }
    }, slowLookupMs);
    slow.unref();
    try {
      const records = await lookup(target.host, { all: true });
      if (myRun !== run) return;
      const seen = new Set<string>();
      for (const record of records) {
        const address = formatHostPort(record.address, target.port);
        if (seen.has(address)) continue;
        seen.add(address);
        context?.sighting({ address, source: 'dns' });
      }
    } catch (err) {
      if (myRun === run) context?.error(err);
    } finally {
      clearTimeout(slow);
      if (myRun === run) {
        timer = setTimeout(() => void tick(myRun), intervalMs);
        timer.unref();
      }
    }
  };

  return {
    source: 'dns',
    async start(ctx) {
      if (context) return;
      context = guardContext(ctx, 'dns');
      run += 1;
      void tick(run);
    },
    async stop() {
      run += 1;
      clearTimeout(timer);
      timer = undefined;
      context = undefined;
    },
  };
}

function resolveTarget(name: string, port: number | undefined): { host: string; port: number } {
  const withPort = parseHostPort(name);
  if (withPort) return withPort;
  const host = name.trim();
  if (host.length === 0) throw new QbError('QB_ERR_CONFIG', 'dns discovery needs a name (MESH_DNS_NAME)');
  if (port === undefined || !isValidPort(port)) {
    throw new QbError('QB_ERR_CONFIG', `dns discovery of "${name}" needs a port in 1-65535; got ${port}`);
  }
  return { host, port };
}
