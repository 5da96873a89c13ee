/**
 * MESH_DISCOVERY picks the providers; `combined` runs them as one. The mesh actor holds the group
 * in a fromCallback (start) and awaits stop() in its `stopping` state (mDNS says goodbye there).
 */

import { QbError } from '../../errors.js';
import type { BonjourFactory } from './bonjour-adapter.js';
import { createDnsDiscovery, type LookupAll } from './dns.js';
import { createMdnsDiscovery } from './mdns.js';
import { createStaticDiscovery } from './static.js';
import type { Discovery, DiscoveryContext, DiscoverySource } from './types.js';

export type { Discovery, DiscoveryContext, DiscoverySource, Sighting } from './types.js';

/** The config slice discovery needs: config.mesh's fields plus this peer's identity and port. */
export interface DiscoveriesOptions {
  /** MESH_DISCOVERY, in order; duplicates are ignored. */
  discovery: readonly DiscoverySource[];
  peerId: string;
  cluster: string;
  protocolVersion: number;
  /** The lowest protocol version this peer speaks; default protocolVersion. */
  protocolVersionMin?: number;
  /** The port this peer serves the mesh on; announced by mDNS, and the default port for DNS records. */
  port: number;
  /** MESH_PEERS (host:port). Empty is fine: the first peer of a cluster has no one to dial. */
  peers?: readonly string[];
  /** MESH_DNS_NAME, `name` or `name:port`. Required when discovery lists 'dns'. */
  dnsName?: string;
  /** MDNS_INTERFACE: address of the interface mDNS uses. */
  mdnsInterface?: string;
  /** Re-report the static list every this many ms. Default: off. */
  staticRepeatMs?: number;
  /** Default 5000. */
  dnsIntervalMs?: number;
  /** Default 10000. */
  mdnsRequeryMs?: number;
  /** Injected in tests. */
  lookup?: LookupAll;
  /** Injected in tests. */
  bonjourFactory?: BonjourFactory;
}

/** @throws QbError QB_ERR_CONFIG for a provider that cannot work (dns without a name, a bad static entry). */
export function createDiscoveries(options: DiscoveriesOptions): Discovery[] {
  return [...new Set(options.discovery)].map((source): Discovery => {
    switch (source) {
      case 'static':
        return createStaticDiscovery([...(options.peers ?? [])], {
          ...(options.staticRepeatMs === undefined ? {} : { repeatMs: options.staticRepeatMs }),
        });
      case 'dns':
        if (options.dnsName === undefined || options.dnsName.trim() === '') {
          throw new QbError('QB_ERR_CONFIG', 'MESH_DISCOVERY lists dns but MESH_DNS_NAME is not set');
        }
        return createDnsDiscovery({
          name: options.dnsName,
          port: options.port,
          ...(options.dnsIntervalMs === undefined ? {} : { intervalMs: options.dnsIntervalMs }),
          ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
        });
      case 'mdns':
        return createMdnsDiscovery({
          peerId: options.peerId,
          cluster: options.cluster,
          protocolVersion: options.protocolVersion,
          ...(options.protocolVersionMin === undefined
            ? {}
            : { protocolVersionMin: options.protocolVersionMin }),
          port: options.port,
          ...(options.mdnsInterface === undefined ? {} : { interface: options.mdnsInterface }),
          ...(options.mdnsRequeryMs === undefined ? {} : { requeryMs: options.mdnsRequeryMs }),
          ...(options.bonjourFactory === undefined ? {} : { bonjourFactory: options.bonjourFactory }),
        });
      default:
        throw new QbError('QB_ERR_CONFIG', `unknown discovery "${String(source satisfies never)}"`);
    }
  });
}

export interface DiscoveryGroup {
  readonly discoveries: readonly Discovery[];
  /** Starts every provider; one that fails to start is reported to onError and the others still run. */
  start(context: DiscoveryContext): Promise<void>;
  /** Stops every provider (in parallel); failures go to the onError of the last start. Idempotent. */
  stop(): Promise<void>;
}

export function combined(discoveries: readonly Discovery[]): DiscoveryGroup {
  let lastContext: DiscoveryContext | undefined;
  const report = (err: unknown, source: DiscoverySource): void => {
    try {
      lastContext?.onError(err, source);
    } catch {
      // A throwing error handler must not stop the other providers.
    }
  };
  return {
    discoveries,
    async start(context) {
      lastContext = context;
      await Promise.all(
        discoveries.map(async (d) => {
          try {
            await d.start(context);
          } catch (err) {
            report(err, d.source);
          }
        }),
      );
    },
    async stop() {
      await Promise.all(
        discoveries.map(async (d) => {
          try {
            await d.stop();
          } catch (err) {
            report(err, d.source);
          }
        }),
      );
    },
  };
}
