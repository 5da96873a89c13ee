import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createStaticDiscovery } from '../../../src/mesh/discovery/static.js';
import { describeDiscoveryLifecycle } from './lifecycle.js';
import { recorder } from './recorder.js';

describe('static discovery', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports every host:port once at start, IPv6 in brackets, duplicates once', async () => {
    const discovery = createStaticDiscovery([
      '127.0.0.1:9001',
      'peer-b:9002',
      '[::1]:9003',
      '127.0.0.1:9001',
    ]);
    const rec = recorder();
    await discovery.start(rec.context);
    expect(rec.sightings).toEqual([
      { address: '127.0.0.1:9001', source: 'static' },
      { address: 'peer-b:9002', source: 'static' },
      { address: '[::1]:9003', source: 'static' },
    ]);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(rec.sightings).toHaveLength(3); // no repeat unless asked
    expect(vi.getTimerCount()).toBe(0);
    await discovery.stop();
  });

  it('reports the list again every repeatMs, and stops repeating on stop', async () => {
    const discovery = createStaticDiscovery(['127.0.0.1:9001', '127.0.0.1:9002'], { repeatMs: 1_000 });
    const rec = recorder();
    await discovery.start(rec.context);
    expect(rec.sightings).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(999);
    expect(rec.sightings).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(rec.sightings).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(2_000); // ticks at 2000 and 3000
    expect(rec.addresses()).toEqual(Array(4).fill(['127.0.0.1:9001', '127.0.0.1:9002']).flat());
    await discovery.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(rec.sightings).toHaveLength(8);
  });

  it('an empty list is valid (the first peer of a cluster) and reports nothing', async () => {
    const discovery = createStaticDiscovery([]);
    const rec = recorder();
    await discovery.start(rec.context);
    expect(rec.sightings).toEqual([]);
    expect(rec.errors).toEqual([]);
  });

  it('refuses an entry that is not host:port with QB_ERR_CONFIG', () => {
    for (const bad of ['peer-a', 'peer-a:0', 'peer-a:70000', '::1:9000', '']) {
      expect(() => createStaticDiscovery([bad]), bad).toThrow(
        expect.objectContaining({ code: 'QB_ERR_CONFIG' }),
      );
    }
    expect(() => createStaticDiscovery(['a:1'], { repeatMs: 0 })).toThrow(
      expect.objectContaining({ code: 'QB_ERR_CONFIG' }),
    );
  });

  it('a listener that throws costs that sighting only: it becomes an onError', async () => {
    const errors: unknown[] = [];
    const seen: string[] = [];
    const discovery = createStaticDiscovery(['a:1', 'b:2'], { repeatMs: 100 });
    await discovery.start({
      onSighting: (s) => {
        if (s.address === 'a:1') throw new Error('listener bug');
        seen.push(s.address);
      },
      onError: (err, source) => errors.push([(err as Error).message, source]),
    });
    await vi.advanceTimersByTimeAsync(100); // from a timer too, where a throw would kill the process
    expect(seen).toEqual(['b:2', 'b:2']);
    expect(errors).toEqual([
      ['listener bug', 'static'],
      ['listener bug', 'static'],
    ]);
    await discovery.stop();
  });
});

describeDiscoveryLifecycle('static', () => {
  const discovery = createStaticDiscovery(['127.0.0.1:9001'], { repeatMs: 1_000 });
  return { discovery, provoke: () => vi.advanceTimersByTimeAsync(1_000).then(() => undefined) };
});
