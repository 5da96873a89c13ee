import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { combined, createDiscoveries, type DiscoveriesOptions } from '../../../src/mesh/discovery/index.js';
import type { Discovery, DiscoverySource } from '../../../src/mesh/discovery/types.js';
import { fakeFactory, peerService } from './fake-bonjour.js';
import { stopUnderFakeTime } from './lifecycle.js';
import { recorder } from './recorder.js';

const identity = { peerId: 'peer-a', cluster: 'alpha', protocolVersion: 1, port: 9001 };

describe('createDiscoveries', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('builds the providers MESH_DISCOVERY names, in order, each once', () => {
    const list = createDiscoveries({
      ...identity,
      discovery: ['static', 'dns', 'mdns', 'static'],
      dnsName: 'bot',
      bonjourFactory: fakeFactory().factory,
    });
    expect(list.map((d) => d.source)).toEqual(['static', 'dns', 'mdns']);
  });

  it('wires each provider to its slice of the config', async () => {
    const lookups: string[] = [];
    const fake = fakeFactory();
    const options: DiscoveriesOptions = {
      ...identity,
      discovery: ['mdns', 'dns', 'static'],
      peers: ['127.0.0.1:9002'],
      dnsName: 'bot',
      mdnsInterface: '10.9.0.1',
      lookup: async (name) => {
        lookups.push(name);
        return [{ address: '10.0.0.3', family: 4 }];
      },
      bonjourFactory: fake.factory,
    };
    const group = combined(createDiscoveries(options));
    const rec = recorder();
    await group.start(rec.context);
    await vi.advanceTimersByTimeAsync(0);
    fake.instances[0]?.browser.emit('up', peerService('peer-b', 9004));
    expect(fake.instances[0]?.options.interface).toBe('10.9.0.1');
    expect(fake.instances[0]?.published[0]).toMatchObject({
      port: 9001,
      txt: { peerId: 'peer-a', cluster: 'alpha' },
    });
    expect(lookups).toEqual(['bot']);
    // DNS records are dialed on this peer's own port unless the name carries one.
    expect(rec.sightings).toEqual(
      expect.arrayContaining([
        { address: '127.0.0.1:9002', source: 'static' },
        { address: '10.0.0.3:9001', source: 'dns' },
        { address: '127.0.0.1:9004', peerId: 'peer-b', source: 'mdns' },
      ]),
    );
    expect(rec.sightings).toHaveLength(3);
    await stopUnderFakeTime(group);
    expect(fake.instances[0]?.calls.at(-1)).toBe('destroy');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('refuses dns without MESH_DNS_NAME, and a bad static entry, with QB_ERR_CONFIG', () => {
    const config = expect.objectContaining({ code: 'QB_ERR_CONFIG' });
    expect(() => createDiscoveries({ ...identity, discovery: ['dns'] })).toThrow(config);
    expect(() => createDiscoveries({ ...identity, discovery: ['dns'], dnsName: ' ' })).toThrow(config);
    expect(() => createDiscoveries({ ...identity, discovery: ['static'], peers: ['nope'] })).toThrow(config);
    expect(createDiscoveries({ ...identity, discovery: ['static'] })).toHaveLength(1);
  });
});

/** A provider that records what is done to it and can be told to fail. */
function scripted(source: DiscoverySource, fail: { start?: boolean; stop?: boolean } = {}) {
  const log: string[] = [];
  const discovery: Discovery = {
    source,
    async start(ctx) {
      log.push('start');
      if (fail.start) throw new Error(`${source} cannot start`);
      ctx.onSighting({ address: `${source}:1`, source });
    },
    async stop() {
      log.push('stop');
      if (fail.stop) throw new Error(`${source} cannot stop`);
    },
  };
  return { discovery, log };
}

describe('combined', () => {
  it('starts and stops every provider; one failing to start or stop is reported, the others run', async () => {
    const a = scripted('static');
    const b = scripted('dns', { start: true, stop: true });
    const c = scripted('mdns');
    const group = combined([a.discovery, b.discovery, c.discovery]);
    const rec = recorder();
    await group.start(rec.context);
    expect(rec.addresses()).toEqual(['static:1', 'mdns:1']);
    await group.stop();
    for (const p of [a, b, c]) expect(p.log).toEqual(['start', 'stop']);
    expect(rec.errors.map((e) => [String(e.error), e.source])).toEqual([
      ['Error: dns cannot start', 'dns'],
      ['Error: dns cannot stop', 'dns'],
    ]);
    expect(group.discoveries).toHaveLength(3);
  });

  it('stop before start is safe', async () => {
    const a = scripted('static', { stop: true });
    await expect(combined([a.discovery]).stop()).resolves.toBeUndefined();
  });
});
