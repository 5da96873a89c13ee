/**
 * An in-memory stand-in for bonjour-service behind BonjourFactory, for unit tests of the mdns
 * provider's own logic (filtering, re-query, stop order, recovery). The real library is exercised
 * end to end in mdns.test.ts, inside a network namespace.
 */

import type {
  BonjourFactory,
  BonjourFactoryOptions,
  BonjourLike,
  BrowserEvent,
  BrowserLike,
  PublishOptions,
} from '../../../src/mesh/discovery/bonjour-adapter.js';
import type { FoundService } from '../../../src/mesh/discovery/mdns-record.js';

export class FakeBrowser implements BrowserLike {
  stopped = false;
  readonly listeners = new Map<BrowserEvent, ((s: FoundService) => void)[]>();
  constructor(readonly type: string) {}
  on(event: BrowserEvent, listener: (s: FoundService) => void): void {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), listener]);
  }
  stop(): void {
    this.stopped = true;
  }
  /** Delivers a service as the real browser would, unless stopped (its socket listener is gone). */
  emit(event: BrowserEvent, service: FoundService): void {
    if (this.stopped) return;
    for (const l of this.listeners.get(event) ?? []) l(service);
  }
}

export class FakeBonjour implements BonjourLike {
  readonly published: PublishOptions[] = [];
  readonly browsers: FakeBrowser[] = [];
  readonly calls: string[] = [];
  destroyed = false;
  /** When false, unpublishAll / destroy never call back (a send that hangs). */
  answerUnpublish = true;
  answerDestroy = true;
  constructor(readonly options: BonjourFactoryOptions) {}
  publish(options: PublishOptions): void {
    this.calls.push('publish');
    this.published.push(options);
  }
  find(type: string): BrowserLike {
    this.calls.push('find');
    const browser = new FakeBrowser(type);
    this.browsers.push(browser);
    return browser;
  }
  unpublishAll(callback: () => void): void {
    this.calls.push('unpublishAll');
    if (this.answerUnpublish) setTimeout(callback, 5);
  }
  destroy(callback: () => void): void {
    this.calls.push('destroy');
    this.destroyed = true;
    if (this.answerDestroy) setTimeout(callback, 1);
  }
  get browser(): FakeBrowser {
    const last = this.browsers.at(-1);
    if (!last) throw new Error('no browser yet');
    return last;
  }
}

/** A factory that records every instance it made; `before` can tune or fail each one. */
export function fakeFactory(before?: (instance: FakeBonjour, index: number) => void): {
  factory: BonjourFactory;
  instances: FakeBonjour[];
} {
  const instances: FakeBonjour[] = [];
  return {
    instances,
    factory: (options) => {
      const instance = new FakeBonjour(options);
      before?.(instance, instances.length);
      instances.push(instance);
      return instance;
    },
  };
}

/** A service record as bonjour-service's browser builds it from another peer's answer. */
export function peerService(
  peerId: string,
  port: number,
  overrides: Partial<FoundService> & { cluster?: string; v?: string } = {},
): FoundService {
  const { cluster = 'alpha', v = '1', ...rest } = overrides;
  return {
    name: `qb-${peerId}`,
    port,
    txt: { peerId, cluster, v },
    addresses: [],
    referer: { address: '127.0.0.1' },
    ...rest,
  };
}
