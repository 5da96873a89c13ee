import type { DiscoveryContext, DiscoverySource, Sighting } from '../../../src/mesh/discovery/types.js';

export interface Recorder {
  context: DiscoveryContext;
  sightings: Sighting[];
  errors: { error: unknown; source: DiscoverySource }[];
  addresses(): string[];
}

/** A DiscoveryContext that keeps everything it is told. */
export function recorder(): Recorder {
  const sightings: Sighting[] = [];
  const errors: { error: unknown; source: DiscoverySource }[] = [];
  return {
    sightings,
    errors,
    context: {
      onSighting: (s) => sightings.push(s),
      onError: (error, source) => errors.push({ error, source }),
    },
    addresses: () => sightings.map((s) => s.address),
  };
}
