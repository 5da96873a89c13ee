/**
 * The one place that touches bonjour-service (and, through it, multicast-dns). It exists to make the
 * library safe to run 24/7; each line below answers a problem its issue trackers report:
 *
 * - bonjour-service's default error callback THROWS (`errorCallback ?? (err) => { throw err }`) when
 *   answering a query fails to send: we always pass one.
 * - multicast-dns emits 'error' for EACCES / EADDRINUSE on its socket (another mDNS stack bound 5353
 *   without SO_REUSEADDR) and bonjour-service never listens for it, so Node would throw it as an
 *   unhandled 'error' event. We listen on the private `server.mdns` emitter, and call that fatal:
 *   the socket is unusable and the provider builds a new instance later.
 * - Every other socket problem (addMembership ENODEV on a missing interface, undecodable packets) is
 *   a 'warning': reported, not fatal.
 * - Announcements and queries are sent with no callback (or one that ignores the error), so a send
 *   failing with ENETUNREACH / EHOSTUNREACH / EADDRNOTAVAIL on a multi-homed or disconnected host
 *   is silently lost. We wrap `mdns.send` to report those; nothing is thrown.
 * - With `interface` set, multicast-dns also BINDS to that unicast address, and on Linux a socket
 *   bound to a unicast address never receives multicast (multicast-dns #53). We bind 0.0.0.0 and
 *   keep `interface` for the group membership and the outgoing interface.
 *
 * Pinned to bonjour-service 1.x / multicast-dns 7.x: `server.mdns`, `send` and the `bind` option are
 * internals; createBonjour throws if they are missing, so an upgrade that moves them fails loudly.
 */

import type { EventEmitter } from 'node:events';
import Bonjour from 'bonjour-service';
import type { FoundService } from './mdns-record.js';

export interface PublishOptions {
  name: string;
  type: string;
  port: number;
  txt: Record<string, string>;
}

export type BrowserEvent = 'up' | 'srv-update' | 'txt-update';

export interface BrowserLike {
  on(event: BrowserEvent, listener: (service: FoundService) => void): void;
  stop(): void;
}

/** The part of a Bonjour instance the provider uses. */
export interface BonjourLike {
  publish(options: PublishOptions): void;
  find(type: string): BrowserLike;
  /** Sends goodbye packets (TTL 0) for everything published; calls back once sent. */
  unpublishAll(callback: () => void): void;
  /** Closes the socket; calls back once closed. */
  destroy(callback: () => void): void;
}

export interface BonjourFactoryOptions {
  /** Address of the interface to announce and listen on (MDNS_INTERFACE); all interfaces when unset. */
  interface?: string;
  /** A non-fatal problem: a send that failed, a socket warning. */
  onError(error: unknown): void;
  /** The socket is unusable (bind failed); the instance must be replaced. */
  onFatal(error: unknown): void;
}

export type BonjourFactory = (options: BonjourFactoryOptions) => BonjourLike;

type SendCallback = (err?: Error | null) => void;
interface MdnsInternals extends EventEmitter {
  send(value: unknown, rinfo?: unknown, cb?: SendCallback): void;
}

export const createBonjour: BonjourFactory = (options) => {
  // The same error object reaches us twice (send callback, then bonjour's errorCallback): once is enough.
  const seen = new WeakSet<object>();
  const report = (err: unknown): void => {
    if (typeof err === 'object' && err !== null) {
      if (seen.has(err)) return;
      seen.add(err);
    }
    options.onError(err);
  };

  const mdnsOptions =
    options.interface === undefined ? {} : { interface: options.interface, bind: '0.0.0.0' };
  // The typings say ServiceConfig; the object really goes to multicast-dns.
  const bonjour = new Bonjour(mdnsOptions as ConstructorParameters<typeof Bonjour>[0], report);

  const mdns = (bonjour as unknown as { server?: { mdns?: Partial<MdnsInternals> } }).server?.mdns;
  if (typeof mdns?.on !== 'function' || typeof mdns.send !== 'function') {
    bonjour.destroy();
    throw new Error('bonjour-service internals changed: its multicast-dns socket cannot be guarded');
  }
  const socket = mdns as MdnsInternals;
  // Attached in the same tick as the constructor: the bind it started cannot have failed yet.
  socket.on('error', (err: unknown) => {
    if (typeof err === 'object' && err !== null) seen.add(err);
    options.onFatal(err);
  });
  socket.on('warning', report);
  const send = socket.send.bind(socket);
  socket.send = (value, rinfo, cb) => {
    const callback = typeof rinfo === 'function' ? (rinfo as SendCallback) : cb;
    const target = typeof rinfo === 'function' ? null : rinfo;
    send(value, target, (err) => {
      if (err) report(err);
      callback?.(err);
    });
  };

  return {
    publish(publish) {
      // probe: false. Probing costs up to 750 ms and, on a clash, only console.logs and silently does
      // not publish; names are unique per peer id, and a clash (a restart racing the old process's
      // records) must not leave the peer invisible.
      bonjour.publish({ ...publish, probe: false });
    },
    find(type) {
      const browser = bonjour.find({ type });
      return {
        on(event, listener) {
          // 'srv-update' and 'txt-update' pass (newService, oldService): the new one is what we judge.
          (browser as EventEmitter).on(event, (service: unknown) => listener(service as FoundService));
        },
        stop() {
          browser.stop();
        },
      };
    },
    unpublishAll(callback) {
      bonjour.unpublishAll(() => callback());
    },
    destroy(callback) {
      bonjour.destroy(() => callback());
    },
  };
};
