// TEMPORARY until the discovery branch lands: static discovery only.
import type { Discovery, DiscoveryContext } from './types.js';

export interface DiscoveryOptions {
  kinds: readonly ('mdns' | 'dns' | 'static')[];
  peers: readonly string[];
  dnsName?: string | undefined;
  port: number;
  peerId: string;
  cluster: string;
  protocolVersion: number;
  mdnsInterface?: string | undefined;
}

export function createDiscoveries(opts: DiscoveryOptions): Discovery[] {
  return opts.kinds
    .filter((k) => k === 'static')
    .map(() => ({
      source: 'static' as const,
      async start(ctx: DiscoveryContext) {
        for (const address of opts.peers) ctx.onSighting({ address, source: 'static' });
      },
      async stop() {},
    }));
}
