/**
 * MESH_PEERS: a fixed list of host:port. Each is reported at start and, when `repeatMs` is set,
 * again on every tick, so a peer that was down gets its dial backoff reset now and then.
 */

import { QbError } from '../../errors.js';
import { formatHostPort, parseHostPort } from './address.js';
import { type GuardedContext, guardContext } from './guard.js';
import type { Discovery } from './types.js';

export interface StaticDiscoveryOptions {
  /** Report the whole list again every this many ms. Default: off (only at start). */
  repeatMs?: number;
}

/** @throws QbError QB_ERR_CONFIG when an entry is not host:port (config.ts validates it first). */
export function createStaticDiscovery(peers: string[], options: StaticDiscoveryOptions = {}): Discovery {
  const addresses = [
    ...new Set(
      peers.map((entry) => {
        const hp = parseHostPort(entry);
        if (!hp) throw new QbError('QB_ERR_CONFIG', `static peer "${entry}" is not host:port`);
        return formatHostPort(hp.host, hp.port);
      }),
    ),
  ];
  const { repeatMs } = options;
  if (repeatMs !== undefined && !(repeatMs > 0)) {
    throw new QbError('QB_ERR_CONFIG', `static discovery repeatMs must be > 0; got ${repeatMs}`);
  }

  let context: GuardedContext | undefined;
  let timer: NodeJS.Timeout | undefined;

  const report = (): void => {
    for (const address of addresses) context?.sighting({ address, source: 'static' });
  };

  return {
    source: 'static',
    async start(ctx) {
      if (context) return;
      context = guardContext(ctx, 'static');
      report();
      if (repeatMs !== undefined) {
        timer = setInterval(report, repeatMs);
        timer.unref();
      }
    },
    async stop() {
      clearInterval(timer);
      timer = undefined;
      context = undefined;
    },
  };
}
