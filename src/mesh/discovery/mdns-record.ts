/**
 * What a quantum-bot mDNS record says and whether a found one is a peer to dial. Pure: no sockets,
 * so every rule (self, cluster, version, address choice) is unit-tested without multicast.
 */

import { isIP, isIPv4 } from 'node:net';
import { isValidPeerId } from '../peer-id.js';
import { formatHostPort, isValidPort } from './address.js';
import type { Sighting } from './types.js';

/** DNS-SD service type: records are `_quantum-bot._tcp.local`. Do not change: peers of other versions browse it. */
export const MDNS_SERVICE_TYPE = 'quantum-bot';

/** TXT keys. Append only: older peers read these names. */
export const TXT_PEER_ID = 'peerId';
export const TXT_CLUSTER = 'cluster';
export const TXT_VERSION = 'v';
/** The lowest protocol version the peer speaks; absent (older peers): only `v`. */
export const TXT_VERSION_MIN = 'vMin';
/** A record's version range is scanned at most this wide: a forged TXT cannot make a long loop. */
const MAX_RANGE_SCAN = 64;

export interface MdnsIdentity {
  peerId: string;
  cluster: string;
  /** The highest protocol version spoken. */
  protocolVersion: number;
  /** The lowest protocol version spoken; default protocolVersion. */
  protocolVersionMin?: number;
}

/** The fields of a bonjour-service `Service` from a browser that this module reads. */
export interface FoundService {
  name?: string;
  port?: number;
  txt?: Record<string, unknown>;
  /** A/AAAA records that came in the same packet; often empty (no additionals, or only internal interfaces). */
  addresses?: string[];
  /** The UDP source of the packet that carried the SRV record. */
  referer?: { address?: string };
}

/** Instance name: unique per peer. bonjour-service turns dots into dashes; the TXT keeps the exact id. */
export function serviceName(peerId: string): string {
  return `qb-${peerId}`;
}

export function buildTxt(self: MdnsIdentity): Record<string, string> {
  return {
    [TXT_PEER_ID]: self.peerId,
    [TXT_CLUSTER]: self.cluster,
    [TXT_VERSION]: String(self.protocolVersion),
    ...(self.protocolVersionMin === undefined ? {} : { [TXT_VERSION_MIN]: String(self.protocolVersionMin) }),
  };
}

export type IgnoreReason =
  | 'self'
  | 'no-txt'
  | 'other-cluster'
  | 'incompatible-version'
  | 'no-address'
  | 'bad-port'
  | 'bad-peer-id';

export type Verdict = { sighting: Sighting } | { ignored: IgnoreReason };

export interface Judge {
  self: MdnsIdentity;
  /** Whether this peer speaks protocol version `remote`; a record is linkable when one of its range is. */
  isCompatibleVersion(remote: number): boolean;
}

/** Decides whether a found service is another peer of our cluster, and where to dial it. */
export function judgeService(service: FoundService, judge: Judge): Verdict {
  const txt = service.txt ?? {};
  const peerId = text(txt[TXT_PEER_ID]);
  const cluster = text(txt[TXT_CLUSTER]);
  const version = Number(text(txt[TXT_VERSION]));
  const minText = text(txt[TXT_VERSION_MIN]);
  const versionMin = minText === undefined ? version : Number(minText);
  // A record without our TXT (an older or foreign publisher of the type) cannot be placed in a cluster.
  if (peerId === undefined || cluster === undefined) return { ignored: 'no-txt' };
  if (peerId === judge.self.peerId) return { ignored: 'self' };
  // The TXT record is unauthenticated: an id our protocol would refuse is not one of our peers.
  if (!isValidPeerId(peerId)) return { ignored: 'bad-peer-id' };
  if (cluster !== judge.self.cluster) return { ignored: 'other-cluster' };
  if (!speaksCommonVersion(versionMin, version, judge)) {
    return { ignored: 'incompatible-version' };
  }
  const port = service.port;
  if (port === undefined || !isValidPort(port)) return { ignored: 'bad-port' };
  const host = pickHost(service);
  if (host === undefined) return { ignored: 'no-address' };
  return { sighting: { address: formatHostPort(host, port), peerId, source: 'mdns' } };
}

/**
 * The packet's source address first: it is the address the peer sent from on the link we share,
 * while its A/AAAA records list every interface it has (docker bridges, VPNs) or none at all.
 * Then the records, IPv4 before IPv6 (an IPv6 link-local record carries no zone and cannot be dialed).
 */
export function pickHost(service: FoundService): string | undefined {
  const referer = service.referer?.address;
  if (referer !== undefined && isIP(referer) !== 0) return referer;
  const addresses = (service.addresses ?? []).filter((a) => isIP(a) !== 0);
  return addresses.find((a) => isIPv4(a)) ?? addresses[0];
}

/** Whether some version of [min, max] (a record's range) is one this peer speaks. */
function speaksCommonVersion(min: number, max: number, judge: Judge): boolean {
  if (!Number.isInteger(min) || !Number.isInteger(max) || min > max) return false;
  for (let v = max; v >= Math.max(min, max - MAX_RANGE_SCAN); v--)
    if (judge.isCompatibleVersion(v)) return true;
  return false;
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  if (typeof value === 'number') return String(value);
  if (Buffer.isBuffer(value)) return value.toString('utf8') || undefined;
  return undefined;
}
