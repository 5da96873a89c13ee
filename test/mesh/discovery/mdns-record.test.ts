import { describe, expect, it } from 'vitest';
import {
  buildTxt,
  type FoundService,
  judgeService,
  pickHost,
  serviceName,
} from '../../../src/mesh/discovery/mdns-record.js';

const self = { peerId: 'peer-a', cluster: 'alpha', protocolVersion: 1 };
const judge = { self, isCompatibleVersion: (v: number) => v === 1 };

function found(overrides: Partial<FoundService> = {}, txt: Record<string, unknown> = {}): FoundService {
  return {
    name: 'qb-peer-b',
    port: 9002,
    txt: { peerId: 'peer-b', cluster: 'alpha', v: '1', ...txt },
    addresses: [],
    referer: { address: '192.168.7.2' },
    ...overrides,
  };
}

describe('mDNS record', () => {
  it('announces the peer id, cluster and protocol version as TXT strings', () => {
    expect(buildTxt(self)).toEqual({ peerId: 'peer-a', cluster: 'alpha', v: '1' });
    expect(serviceName('peer-a')).toBe('qb-peer-a');
  });

  it('turns another peer of the cluster into a sighting at the packet source, with its claimed id', () => {
    expect(judgeService(found({ addresses: ['10.1.1.1'] }), judge)).toEqual({
      sighting: { address: '192.168.7.2:9002', peerId: 'peer-b', source: 'mdns' },
    });
  });

  it('ignores itself, other clusters, other versions and records without our TXT', () => {
    expect(judgeService(found({}, { peerId: 'peer-a' }), judge)).toEqual({ ignored: 'self' });
    expect(judgeService(found({}, { cluster: 'beta' }), judge)).toEqual({ ignored: 'other-cluster' });
    expect(judgeService(found({}, { v: '2' }), judge)).toEqual({ ignored: 'incompatible-version' });
    expect(judgeService(found({}, { v: 'x' }), judge)).toEqual({ ignored: 'incompatible-version' });
    expect(judgeService(found({}, { v: undefined }), judge)).toEqual({ ignored: 'incompatible-version' });
    expect(judgeService(found({ txt: undefined }), judge)).toEqual({ ignored: 'no-txt' });
    expect(judgeService(found({}, { cluster: '' }), judge)).toEqual({ ignored: 'no-txt' });
  });

  it('ignores a record whose claimed peer id our protocol would refuse (the TXT is unauthenticated)', () => {
    expect(judgeService(found({}, { peerId: 'not a valid id!' }), judge)).toEqual({ ignored: 'bad-peer-id' });
    expect(judgeService(found({}, { peerId: 'x'.repeat(65) }), judge)).toEqual({ ignored: 'bad-peer-id' });
    expect(judgeService(found({}, { peerId: 'peer_b.2-x' }), judge)).toHaveProperty('sighting');
  });

  it('asks the version rule, so a range of versions can be accepted', () => {
    const lenient = { self, isCompatibleVersion: (v: number) => v >= 1 && v <= 3 };
    expect(judgeService(found({}, { v: '3' }), lenient)).toHaveProperty('sighting');
    expect(judgeService(found({}, { v: '4' }), lenient)).toEqual({ ignored: 'incompatible-version' });
  });

  it('announces a version range and links a record whose range overlaps ours (rolling upgrades)', () => {
    expect(buildTxt({ ...self, protocolVersionMin: 1 })).toEqual({
      peerId: 'peer-a',
      cluster: 'alpha',
      v: '1',
      vMin: '1',
    });
    // A peer one version ahead that still speaks ours.
    expect(judgeService(found({}, { v: '2', vMin: '1' }), judge)).toHaveProperty('sighting');
    // One that dropped ours, and nonsense ranges.
    expect(judgeService(found({}, { v: '3', vMin: '2' }), judge)).toEqual({
      ignored: 'incompatible-version',
    });
    expect(judgeService(found({}, { v: '1', vMin: '2' }), judge)).toEqual({
      ignored: 'incompatible-version',
    });
    expect(judgeService(found({}, { v: '9', vMin: 'x' }), judge)).toEqual({
      ignored: 'incompatible-version',
    });
    expect(judgeService(found({}, { v: String(2 ** 40), vMin: '0' }), judge)).toEqual({
      ignored: 'incompatible-version',
    });
  });

  it('ignores a record with no usable port or address', () => {
    expect(judgeService(found({ port: 0 }), judge)).toEqual({ ignored: 'bad-port' });
    expect(judgeService(found({ port: undefined }), judge)).toEqual({ ignored: 'bad-port' });
    expect(judgeService(found({ referer: undefined, addresses: [] }), judge)).toEqual({
      ignored: 'no-address',
    });
  });

  it('falls back to the A/AAAA records when there is no source address, IPv4 first', () => {
    expect(pickHost({ addresses: ['fd00::2', '10.0.0.2'] })).toBe('10.0.0.2');
    expect(pickHost({ referer: { address: 'not-an-ip' }, addresses: ['fd00::2'] })).toBe('fd00::2');
    expect(judgeService(found({ referer: undefined, addresses: ['fd00::2'] }), judge)).toEqual({
      sighting: { address: '[fd00::2]:9002', peerId: 'peer-b', source: 'mdns' },
    });
    expect(pickHost({ addresses: ['garbage'] })).toBeUndefined();
  });

  it('reads TXT values given as buffers or numbers', () => {
    const txt = { peerId: Buffer.from('peer-c'), cluster: Buffer.from('alpha'), v: 1 };
    expect(judgeService(found({ txt }), judge)).toEqual({
      sighting: { address: '192.168.7.2:9002', peerId: 'peer-c', source: 'mdns' },
    });
  });
});
