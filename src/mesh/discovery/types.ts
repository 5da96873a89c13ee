/**
 * One interface for every way of finding peers (mDNS, DNS, a static list). A provider only reports
 * sightings: where a peer may be listening. Whether a peer is alive is decided by the mesh link,
 * never by discovery (mDNS records outlive crashed peers; DNS caches lie).
 */

export interface Sighting {
  /** host:port to dial; IPv6 hosts in brackets: [fe80::1]:9000. */
  address: string;
  /** The peer id the source claims, when it says one (mDNS TXT); a hint, verified by the handshake. */
  peerId?: string;
  /** Which provider saw it: 'mdns', 'dns' or 'static'. */
  source: DiscoverySource;
}

export type DiscoverySource = 'mdns' | 'dns' | 'static';

export interface DiscoveryContext {
  /** Called for every sighting, repeated ones included (a fresh sighting resets the dial backoff). */
  onSighting(sighting: Sighting): void;
  /** Non-fatal problems (a failed DNS query, an mDNS send error): logged, counted, never thrown. */
  onError(error: unknown, source: DiscoverySource): void;
}

export interface Discovery {
  readonly source: DiscoverySource;
  /** Starts announcing and looking. Safe to call again after stop. */
  start(context: DiscoveryContext): Promise<void>;
  /** Stops looking and withdraws any announcement. Idempotent; safe before start. */
  stop(): Promise<void>;
}
