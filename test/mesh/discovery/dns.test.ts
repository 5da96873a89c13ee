import type { LookupAddress } from 'node:dns';
import { afterEach, beforeEach, describe, expect, it, onTestFinished, vi } from 'vitest';
import { createDnsDiscovery, type LookupAll } from '../../../src/mesh/discovery/dns.js';
import { describeDiscoveryLifecycle } from './lifecycle.js';
import { recorder } from './recorder.js';

function dnsError(code: string, hostname: string): Error {
  return Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), {
    code,
    hostname,
    syscall: 'getaddrinfo',
  });
}

/** A lookup whose answer the test changes over time; every call is recorded. */
function scriptedLookup(initial: LookupAddress[] | Error) {
  let answer: LookupAddress[] | Error = initial;
  const calls: string[] = [];
  const lookup: LookupAll = async (hostname) => {
    calls.push(hostname);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return {
    lookup,
    calls,
    set(next: LookupAddress[] | Error) {
      answer = next;
    },
  };
}

const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });

describe('dns discovery with an injected lookup', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reports every A and AAAA record as host:port, IPv6 in brackets, each once', async () => {
    const dns = scriptedLookup([v4('10.0.0.2'), v6('fd00::3'), v4('10.0.0.2'), v6('fe80::1%eth0')]);
    const discovery = createDnsDiscovery({ name: 'peers.internal', port: 9000, lookup: dns.lookup });
    const rec = recorder();
    await discovery.start(rec.context);
    await vi.advanceTimersByTimeAsync(0);
    expect(dns.calls).toEqual(['peers.internal']);
    expect(rec.sightings).toEqual([
      { address: '10.0.0.2:9000', source: 'dns' },
      { address: '[fd00::3]:9000', source: 'dns' },
      { address: '[fe80::1%eth0]:9000', source: 'dns' },
    ]);
    await discovery.stop();
  });

  it('takes the port from name:port', async () => {
    const dns = scriptedLookup([v4('10.0.0.2')]);
    const discovery = createDnsDiscovery({ name: 'bot:9100', port: 9000, lookup: dns.lookup });
    const rec = recorder();
    await discovery.start(rec.context);
    await vi.advanceTimersByTimeAsync(0);
    expect(dns.calls).toEqual(['bot']);
    expect(rec.addresses()).toEqual(['10.0.0.2:9100']);
    await discovery.stop();
  });

  it('resolves again every intervalMs and follows the records as they change', async () => {
    const dns = scriptedLookup([v4('10.0.0.2')]);
    const discovery = createDnsDiscovery({ name: 'bot', port: 9000, intervalMs: 5_000, lookup: dns.lookup });
    const rec = recorder();
    await discovery.start(rec.context);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(dns.calls).toHaveLength(1);
    dns.set([v4('10.0.0.2'), v4('10.0.0.3')]); // a replica came up
    await vi.advanceTimersByTimeAsync(1);
    expect(dns.calls).toHaveLength(2);
    dns.set([v4('10.0.0.3')]); // one went away
    await vi.advanceTimersByTimeAsync(5_000);
    expect(rec.addresses()).toEqual(['10.0.0.2:9000', '10.0.0.2:9000', '10.0.0.3:9000', '10.0.0.3:9000']);
    await discovery.stop();
  });

  it('sends ENOTFOUND to onError, never throws, and keeps trying until the name exists', async () => {
    const dns = scriptedLookup(dnsError('ENOTFOUND', 'bot'));
    const discovery = createDnsDiscovery({ name: 'bot', port: 9000, intervalMs: 1_000, lookup: dns.lookup });
    const rec = recorder();
    await discovery.start(rec.context);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(rec.sightings).toEqual([]);
    expect(rec.errors).toHaveLength(2);
    expect(rec.errors[0]).toEqual({ error: expect.objectContaining({ code: 'ENOTFOUND' }), source: 'dns' });
    dns.set([v4('10.0.0.9')]);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(rec.addresses()).toEqual(['10.0.0.9:9000']);
    expect(rec.errors).toHaveLength(2);
    await discovery.stop();
  });

  it('reports a lookup that hangs, and never starts a second one beside it', async () => {
    let release: ((r: LookupAddress[]) => void) | undefined;
    const calls: number[] = [];
    const lookup: LookupAll = () => {
      calls.push(Date.now());
      return new Promise((resolve) => {
        release = resolve;
      });
    };
    const discovery = createDnsDiscovery({
      name: 'bot',
      port: 9000,
      intervalMs: 1_000,
      slowLookupMs: 3_000,
      lookup,
    });
    const rec = recorder();
    await discovery.start(rec.context);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(rec.errors).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(rec.errors).toHaveLength(1);
    expect(String(rec.errors[0]?.error)).toMatch(/still pending after 3000 ms/);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls).toHaveLength(1);
    expect(rec.errors).toHaveLength(1);
    release?.([v4('10.0.0.4')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(rec.addresses()).toEqual(['10.0.0.4:9000']);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(calls).toHaveLength(2); // the loop goes on once the slow one settled
    await discovery.stop();
  });

  it('stop clears its timers, and a lookup settling after stop reports nothing', async () => {
    let release: ((r: LookupAddress[]) => void) | undefined;
    let calls = 0;
    const lookup: LookupAll = () => {
      calls += 1;
      return new Promise((resolve) => {
        release = resolve;
      });
    };
    const discovery = createDnsDiscovery({ name: 'bot', port: 9000, intervalMs: 1_000, lookup });
    const rec = recorder();
    await discovery.start(rec.context);
    expect(vi.getTimerCount()).toBe(1); // the slow-lookup watchdog
    await discovery.stop();
    release?.([v4('10.0.0.5')]);
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(1);
    expect(rec.sightings).toEqual([]);
    expect(rec.errors).toEqual([]);
  });

  it('stop between two lookups clears the interval timer', async () => {
    const dns = scriptedLookup([v4('10.0.0.2')]);
    const discovery = createDnsDiscovery({ name: 'bot', port: 9000, intervalMs: 1_000, lookup: dns.lookup });
    await discovery.start(recorder().context);
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(1);
    await discovery.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(dns.calls).toHaveLength(1);
  });

  it('refuses a configuration that cannot work with QB_ERR_CONFIG', () => {
    const lookup = scriptedLookup([]).lookup;
    const config = expect.objectContaining({ code: 'QB_ERR_CONFIG' });
    expect(() => createDnsDiscovery({ name: 'bot', lookup })).toThrow(config);
    expect(() => createDnsDiscovery({ name: '', port: 9000, lookup })).toThrow(config);
    expect(() => createDnsDiscovery({ name: 'bot', port: 0, lookup })).toThrow(config);
    expect(() => createDnsDiscovery({ name: 'bot', port: 9000, intervalMs: 0, lookup })).toThrow(config);
  });
});

describe('dns discovery with the real resolver', () => {
  it('resolves localhost through getaddrinfo (/etc/hosts) to loopback addresses', async () => {
    const discovery = createDnsDiscovery({ name: 'localhost', port: 9000, intervalMs: 50 });
    onTestFinished(() => discovery.stop());
    const rec = recorder();
    await discovery.start(rec.context);
    // Two rounds: the first report and a repeat after intervalMs.
    await vi.waitFor(() => expect(rec.sightings.length).toBeGreaterThanOrEqual(2), { timeout: 5_000 });
    expect(rec.errors).toEqual([]);
    const loopback = ['127.0.0.1:9000', '[::1]:9000'];
    expect(rec.addresses().every((a) => loopback.includes(a))).toBe(true);
    expect(rec.sightings[0]).toEqual({ address: expect.any(String), source: 'dns' });
  });
});

describeDiscoveryLifecycle('dns', () => {
  const dns = scriptedLookup([v4('10.0.0.2')]);
  const discovery = createDnsDiscovery({ name: 'bot', port: 9000, intervalMs: 1_000, lookup: dns.lookup });
  return { discovery, provoke: () => vi.advanceTimersByTimeAsync(1_000).then(() => undefined) };
});
