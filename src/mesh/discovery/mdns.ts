/**
 * mDNS / DNS-SD (bonjour-service): announces this peer as `qb-<peerId>._quantum-bot._tcp.local` with
 * TXT {peerId, cluster, v} and browses the same type. A found record of our cluster and a compatible
 * protocol version, not our own, becomes a Sighting at the packet's source address.
 *
 * Re-query: every `requeryMs` the browser is REPLACED by a new one, which sends a fresh PTR query.
 * `browser.update()` is not enough: a Browser emits 'up' once per name and drops every later answer
 * for it (bonjour-service #25), so a live peer would never be sighted again, and a record whose
 * owner crashed stays in `browser.services` forever. A new browser knows nothing, so each live
 * peer's answer is a fresh sighting and a crashed peer, which no longer answers, simply stops being
 * sighted. Liveness itself is the mesh link's business, never ours.
 */

import { QbError } from '../../errors.js';
import { type BonjourFactory, type BonjourLike, type BrowserLike, createBonjour } from './bonjour-adapter.js';
import { type GuardedContext, guardContext } from './guard.js';
import { buildTxt, type FoundService, judgeService, MDNS_SERVICE_TYPE, serviceName } from './mdns-record.js';
import type { Discovery } from './types.js';

export const DEFAULT_MDNS_REQUERY_MS = 10_000;
export const DEFAULT_MDNS_UNPUBLISH_TIMEOUT_MS = 1_000;

export interface MdnsDiscoveryOptions {
  peerId: string;
  cluster: string;
  protocolVersion: number;
  /** The lowest protocol version spoken (announced in TXT `vMin`); default protocolVersion. */
  protocolVersionMin?: number;
  /** The port peers dial (the HTTP/mesh server's). */
  port: number;
  /** Address of the interface to announce and listen on (MDNS_INTERFACE). Default: all. */
  interface?: string;
  /** ms between re-queries (and between attempts to rebuild a broken socket). Default 10000. */
  requeryMs?: number;
  /** ms stop() waits for the goodbye packets to be sent, and then for the socket to close. Default 1000. */
  unpublishTimeoutMs?: number;
  /** Default: the versions from protocolVersionMin to protocolVersion. */
  isCompatibleVersion?: (remote: number) => boolean;
  bonjourFactory?: BonjourFactory;
}

export function createMdnsDiscovery(options: MdnsDiscoveryOptions): Discovery {
  const {
    peerId,
    cluster,
    protocolVersion,
    port,
    requeryMs = DEFAULT_MDNS_REQUERY_MS,
    unpublishTimeoutMs = DEFAULT_MDNS_UNPUBLISH_TIMEOUT_MS,
    bonjourFactory = createBonjour,
  } = options;
  const protocolVersionMin = options.protocolVersionMin ?? protocolVersion;
  const isCompatibleVersion =
    options.isCompatibleVersion ??
    ((remote: number) => remote >= protocolVersionMin && remote <= protocolVersion);
  const self = {
    peerId,
    cluster,
    protocolVersion,
    ...(options.protocolVersionMin === undefined ? {} : { protocolVersionMin }),
  };
  if (!(requeryMs > 0) || !(unpublishTimeoutMs > 0)) {
    throw new QbError('QB_ERR_CONFIG', 'mdns discovery requeryMs and unpublishTimeoutMs must be > 0');
  }

  let context: GuardedContext | undefined;
  let timer: NodeJS.Timeout | undefined;
  let instance: BonjourLike | undefined;
  let browser: BrowserLike | undefined;
  /** Set when the current instance's socket is unusable: the next tick replaces it. */
  let broken = false;

  const onService = (service: FoundService): void => {
    const verdict = judgeService(service, { self, isCompatibleVersion });
    if ('sighting' in verdict) context?.sighting(verdict.sighting);
  };

  const browse = (): void => {
    browser?.stop();
    browser = undefined;
    if (!instance) return;
    const next = instance.find(MDNS_SERVICE_TYPE);
    for (const event of ['up', 'srv-update', 'txt-update'] as const) next.on(event, onService);
    browser = next;
  };

  const open = (): void => {
    broken = false;
    let created: BonjourLike | undefined;
    try {
      created = bonjourFactory({
        ...(options.interface === undefined ? {} : { interface: options.interface }),
        onError: (err) => {
          if (instance === created) context?.error(err);
        },
        onFatal: (err) => {
          if (instance !== created || broken) return;
          broken = true;
          context?.error(err);
        },
      });
      instance = created;
      created.publish({ name: serviceName(peerId), type: MDNS_SERVICE_TYPE, port, txt: buildTxt(self) });
      browse();
    } catch (err) {
      // A factory or publish that throws is retried on the next tick, like a socket that failed.
      broken = true;
      context?.error(err);
    }
  };

  const tick = (): void => {
    if (!broken) {
      browse();
      return;
    }
    const old = instance;
    browser?.stop();
    browser = undefined;
    instance = undefined;
    // Its socket is dead: no goodbye to send, just release what it holds.
    if (old) void closeInstance(old, false, unpublishTimeoutMs, (err) => context?.error(err));
    open();
  };

  return {
    source: 'mdns',
    async start(ctx) {
      if (context) return;
      context = guardContext(ctx, 'mdns');
      open();
      timer = setInterval(tick, requeryMs);
      timer.unref();
    },
    async stop() {
      const ctx = context;
      clearInterval(timer);
      timer = undefined;
      context = undefined; // nothing is reported after stop, even while the goodbye is being sent
      browser?.stop();
      browser = undefined;
      const old = instance;
      instance = undefined;
      if (old) await closeInstance(old, !broken, unpublishTimeoutMs, (err) => ctx?.error(err));
    },
  };
}

/** Goodbye packets first (awaited, bounded), then the socket: destroy() before the send completes drops it. */
async function closeInstance(
  instance: BonjourLike,
  sayGoodbye: boolean,
  timeoutMs: number,
  onError: (err: unknown) => void,
): Promise<void> {
  if (sayGoodbye) {
    const failure = await within(timeoutMs, 'mDNS goodbye not sent', (done) => instance.unpublishAll(done));
    if (failure) onError(failure);
  }
  const failure = await within(timeoutMs, 'mDNS socket not closed', (done) => instance.destroy(done));
  if (failure) onError(failure);
}

/** Runs a callback-style operation; resolves undefined once it calls back, or the reason it did not in time. */
function within(timeoutMs: number, what: string, operation: (done: () => void) => void): Promise<unknown> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
    try {
      operation(() => {
        clearTimeout(timer);
        resolve(undefined);
      });
    } catch (err) {
      clearTimeout(timer);
      resolve(err);
    }
  });
}
