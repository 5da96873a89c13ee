// The mdns provider's own logic over a fake bonjour (filtering, re-query, stop order, recovery).
// The real library, over real multicast in a network namespace, is in mdns.test.ts.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createMdnsDiscovery, type MdnsDiscoveryOptions } from '../../../src/mesh/discovery/mdns.js';
import { fakeFactory, peerService } from './fake-bonjour.js';
import { describeDiscoveryLifecycle, stopUnderFakeTime } from './lifecycle.js';
import { recorder } from './recorder.js';

const base = { peerId: 'peer-a', cluster: 'alpha', protocolVersion: 1, port: 9001 };

function setup(options: Partial<MdnsDiscoveryOptions> = {}, before?: Parameters<typeof fakeFactory>[0]) {
  const fake = fakeFactory(before);
  const discovery = createMdnsDiscovery({
    ...base,
    requeryMs: 1_000,
    bonjourFactory: fake.factory,
    ...options,
  });
  return { discovery, instances: fake.instances, rec: recorder() };
}

describe('mdns discovery over a fake bonjour', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('publishes qb-<peerId> with TXT {peerId, cluster, v} and browses quantum-bot', async () => {
    const { discovery, instances, rec } = setup({ interface: '10.9.0.1' });
    await discovery.start(rec.context);
    expect(instances).toHaveLength(1);
    const [bonjour] = instances;
    expect(bonjour?.options.interface).toBe('10.9.0.1');
    expect(bonjour?.published).toEqual([
      {
        name: 'qb-peer-a',
        type: 'quantum-bot',
        port: 9001,
        txt: { peerId: 'peer-a', cluster: 'alpha', v: '1' },
      },
    ]);
    expect(bonjour?.browser.type).toBe('quantum-bot');
    await stopUnderFakeTime(discovery);
  });

  it('reports peers of its cluster and version at their source address, and nobody else', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const browser = instances[0]?.browser;
    browser?.emit('up', peerService('peer-a', 9001)); // itself, heard over multicast loopback
    browser?.emit('up', peerService('peer-b', 9002));
    browser?.emit('up', peerService('peer-x', 9009, { cluster: 'beta' }));
    browser?.emit('up', peerService('peer-y', 9008, { v: '2' }));
    browser?.emit(
      'up',
      peerService('peer-c', 9003, { referer: undefined, addresses: ['fd00::3', '10.0.0.3'] }),
    );
    // A peer restarted on another port, or whose TXT changed, is a new sighting too.
    browser?.emit('srv-update', peerService('peer-b', 9012));
    browser?.emit('txt-update', peerService('peer-d', 9004));
    expect(rec.sightings).toEqual([
      { address: '127.0.0.1:9002', peerId: 'peer-b', source: 'mdns' },
      { address: '10.0.0.3:9003', peerId: 'peer-c', source: 'mdns' },
      { address: '127.0.0.1:9012', peerId: 'peer-b', source: 'mdns' },
      { address: '127.0.0.1:9004', peerId: 'peer-d', source: 'mdns' },
    ]);
    await stopUnderFakeTime(discovery);
  });

  it('re-queries every requeryMs with a new browser, so live peers are sighted again', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const bonjour = instances[0];
    const first = bonjour?.browser;
    first?.emit('up', peerService('peer-b', 9002));
    await vi.advanceTimersByTimeAsync(999);
    expect(bonjour?.browsers).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(bonjour?.browsers).toHaveLength(2);
    expect(first?.stopped).toBe(true);
    bonjour?.browser.emit('up', peerService('peer-b', 9002));
    await vi.advanceTimersByTimeAsync(3_000);
    expect(bonjour?.browsers).toHaveLength(5);
    expect(bonjour?.browsers.filter((b) => !b.stopped)).toHaveLength(1);
    expect(rec.addresses()).toEqual(['127.0.0.1:9002', '127.0.0.1:9002']);
    expect(instances).toHaveLength(1); // the socket and the announcement are kept
    await stopUnderFakeTime(discovery);
  });

  it('stop: browser stopped, goodbye awaited, then the socket destroyed', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const bonjour = instances[0];
    let stopped = false;
    const stopping = discovery.stop().then(() => {
      stopped = true;
    });
    expect(bonjour?.browser.stopped).toBe(true);
    expect(bonjour?.calls).toEqual(['publish', 'find', 'unpublishAll']);
    await vi.advanceTimersByTimeAsync(4);
    expect(bonjour?.destroyed).toBe(false); // never before the goodbye is out
    await vi.advanceTimersByTimeAsync(1);
    expect(bonjour?.calls).toEqual(['publish', 'find', 'unpublishAll', 'destroy']);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(stopped).toBe(true);
    expect(rec.errors).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop does not hang on a goodbye that is never sent: it reports it and still closes', async () => {
    const { discovery, instances, rec } = setup({ unpublishTimeoutMs: 500 }, (b) => {
      b.answerUnpublish = false;
    });
    await discovery.start(rec.context);
    const stopping = discovery.stop();
    await vi.advanceTimersByTimeAsync(499);
    expect(instances[0]?.destroyed).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(instances[0]?.destroyed).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    await stopping;
    expect(rec.errors.map((e) => String(e.error))).toEqual(['Error: mDNS goodbye not sent within 500 ms']);
  });

  it('a fatal socket error is reported once; the next tick replaces the instance without a goodbye', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const broken = instances[0];
    const bindError = Object.assign(new Error('bind EADDRINUSE 0.0.0.0:5353'), { code: 'EADDRINUSE' });
    broken?.options.onFatal(bindError);
    broken?.options.onFatal(bindError);
    expect(rec.errors).toEqual([{ error: bindError, source: 'mdns' }]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(broken?.calls).toEqual(['publish', 'find', 'destroy']);
    expect(instances).toHaveLength(2);
    const fresh = instances[1];
    expect(fresh?.calls).toEqual(['publish', 'find']);
    fresh?.browser.emit('up', peerService('peer-b', 9002));
    expect(rec.addresses()).toEqual(['127.0.0.1:9002']);
    // Late noise from the replaced instance is not ours to report any more.
    broken?.options.onError(new Error('late warning'));
    broken?.options.onFatal(new Error('late fatal'));
    expect(rec.errors).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(instances).toHaveLength(2); // a healthy instance is kept
    await stopUnderFakeTime(discovery);
  });

  it('non-fatal errors (send failures, socket warnings) go to onError and change nothing', async () => {
    const { discovery, instances, rec } = setup();
    await discovery.start(rec.context);
    const sendError = Object.assign(new Error('send EHOSTUNREACH 224.0.0.251:5353'), {
      code: 'EHOSTUNREACH',
    });
    instances[0]?.options.onError(sendError);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(rec.errors).toEqual([{ error: sendError, source: 'mdns' }]);
    expect(instances).toHaveLength(1);
    await stopUnderFakeTime(discovery);
  });

  it('a factory that throws is reported and retried on the next tick', async () => {
    let attempts = 0;
    const { discovery, instances, rec } = setup({}, () => {
      attempts += 1;
      if (attempts === 1) throw new Error('no socket today');
    });
    await discovery.start(rec.context);
    expect(rec.errors.map((e) => String(e.error))).toEqual(['Error: no socket today']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(instances).toHaveLength(1);
    expect(instances[0]?.published).toHaveLength(1);
    await stopUnderFakeTime(discovery);
  });

  it('refuses non-positive timings with QB_ERR_CONFIG', () => {
    expect(() => createMdnsDiscovery({ ...base, requeryMs: 0 })).toThrow(
      expect.objectContaining({ code: 'QB_ERR_CONFIG' }),
    );
  });
});

describeDiscoveryLifecycle('mdns', () => {
  const fake = fakeFactory();
  const discovery = createMdnsDiscovery({ ...base, requeryMs: 1_000, bonjourFactory: fake.factory });
  return {
    discovery,
    provoke: async () => {
      fake.instances.at(-1)?.browsers.at(-1)?.emit('up', peerService('peer-b', 9002));
    },
  };
});
