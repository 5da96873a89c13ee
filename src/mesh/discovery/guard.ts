/**
 * Providers call their context from timers and socket events, where a throw would be an uncaught
 * exception that ends the process. This wrapper turns a throwing onSighting into an onError and
 * swallows a throwing onError, so a bug in a listener costs one sighting, never the peer.
 */

import type { DiscoveryContext, DiscoverySource, Sighting } from './types.js';

export interface GuardedContext {
  sighting(sighting: Sighting): void;
  error(error: unknown): void;
}

export function guardContext(context: DiscoveryContext, source: DiscoverySource): GuardedContext {
  const error = (err: unknown): void => {
    try {
      context.onError(err, source);
    } catch {
      // Nowhere left to report to; the provider keeps running.
    }
  };
  return {
    sighting(sighting) {
      try {
        context.onSighting(sighting);
      } catch (err) {
        error(err);
      }
    },
    error,
  };
}
