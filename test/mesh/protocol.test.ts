import { describe, expect, it } from 'vitest';
import {
  announcedRange,
  CLOSE,
  decode,
  decodeTolerant,
  encode,
  fitExtra,
  MAX_EXTRA_BYTES,
  MAX_MESSAGE_BYTES,
  MAX_SUMMARY_LINKS,
  message,
  negotiateVersion,
  PROTOCOL_VERSION,
  ProtocolError,
  repairsOf,
} from '../../src/mesh/protocol.js';

const killSwitch = { active: false, reason: '', since: new Date(0).toISOString(), origin: '', epoch: 0 };
const hello = message('hello', {
  v: PROTOCOL_VERSION,
  cluster: 'quantum-bot',
  peerId: 'peer-a',
  bootId: 'boot-a',
  nonce: 'n'.repeat(32),
  listenPort: 9000,
  killSwitch,
});

function withoutPort({ type: _type, listenPort: _port, ...rest }: typeof hello) {
  return rest;
}

function closeCodeOf(fn: () => unknown): number {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ProtocolError);
    return (err as ProtocolError).closeCode;
  }
  throw new Error('expected a ProtocolError');
}

describe('protocol', () => {
  it('round-trips every message through encode and decode', () => {
    const summary = {
      peerId: 'peer-a',
      bootId: 'boot-a',
      version: '1.0.0',
      uptime: 12,
      apiPort: 9000,
      killSwitch,
      subsystems: [{ name: 'health', state: 'running', restarts: 0 }],
      queues: { ai: 3 },
      links: [{ peerId: 'peer-b', state: 'connected' as const }],
    };
    const all = [
      hello,
      message('challenge', { ...withoutPort(hello), proof: 'a'.repeat(64) }),
      message('auth', { proof: 'b'.repeat(64) }),
      message('ready', {}),
      message('status', { summary }),
      message('killswitch', { state: { ...killSwitch, active: true, reason: 'x', epoch: 3 } }),
      message('ping', { id: 1, t: 5 }),
      message('pong', { id: 1, t: 5 }),
      message('bye', { reason: 'stopping' }),
    ];
    for (const m of all) expect(decode(encode(m as never))).toEqual(m);
  });

  it('refuses what is not JSON with BAD_MESSAGE', () => {
    expect(closeCodeOf(() => decode('{nope'))).toBe(CLOSE.BAD_MESSAGE);
    expect(closeCodeOf(() => decode('[1,2]'))).toBe(CLOSE.BAD_MESSAGE);
    expect(closeCodeOf(() => decode('null'))).toBe(CLOSE.BAD_MESSAGE);
  });

  it('refuses an unknown type, naming it', () => {
    const err = (() => {
      try {
        decode(JSON.stringify({ type: 'teleport' }));
      } catch (e) {
        return e as ProtocolError;
      }
    })();
    expect(err?.closeCode).toBe(CLOSE.BAD_MESSAGE);
    expect(err?.message).toContain('teleport');
    expect(closeCodeOf(() => decode(JSON.stringify({ type: 'constructor' })))).toBe(CLOSE.BAD_MESSAGE);
  });

  it('refuses a schema violation, naming the field', () => {
    const bad = { ...hello, listenPort: 'x' };
    expect(() => decode(JSON.stringify(bad))).toThrow(/listenPort/);
    expect(closeCodeOf(() => decode(JSON.stringify({ ...hello, peerId: 'has space' })))).toBe(
      CLOSE.BAD_MESSAGE,
    );
    expect(closeCodeOf(() => decode(JSON.stringify({ type: 'auth', proof: 'short' })))).toBe(
      CLOSE.BAD_MESSAGE,
    );
  });

  it('refuses an oversize message with TOO_LARGE before parsing it', () => {
    const big = 'x'.repeat(MAX_MESSAGE_BYTES + 1);
    expect(closeCodeOf(() => decode(big))).toBe(CLOSE.TOO_LARGE);
  });

  it('leaves the version check to the handshake: a hello of another version still decodes', () => {
    expect(decode(JSON.stringify({ ...hello, v: PROTOCOL_VERSION + 1 }))).toMatchObject({
      v: PROTOCOL_VERSION + 1,
    });
  });

  it('links on the highest version both ranges hold, and on none when they do not overlap', () => {
    expect(negotiateVersion({ min: 2, max: 3 }, { min: 2, max: 2 })).toBe(2);
    expect(negotiateVersion({ min: 2, max: 2 }, { min: 2, max: 3 })).toBe(2);
    expect(negotiateVersion({ min: 2, max: 4 }, { min: 3, max: 5 })).toBe(4);
    expect(negotiateVersion({ min: 2, max: 2 }, { min: 3, max: 4 })).toBeUndefined();
    expect(announcedRange({ v: 3 })).toEqual({ min: 3, max: 3 });
    expect(announcedRange({ v: 3, vMin: 2 })).toEqual({ min: 2, max: 3 });
  });

  it('after the handshake: returns an unknown type for counting instead of throwing', () => {
    expect(decodeTolerant('{"type":"gossip","x":1}')).toEqual({ kind: 'unknown-type', type: 'gossip' });
    expect(closeCodeOf(() => decodeTolerant('{"x":1}'))).toBe(CLOSE.BAD_MESSAGE);
    expect(closeCodeOf(() => decodeTolerant('[1]'))).toBe(CLOSE.BAD_MESSAGE);
    expect(closeCodeOf(() => decodeTolerant('{"type":"ping","id":-1,"t":0}'))).toBe(CLOSE.BAD_MESSAGE);
    const ok = decodeTolerant('{"type":"ping","id":1,"t":0,"added":"in N+1"}');
    expect(ok).toMatchObject({ kind: 'message', ignored: 0, msg: { type: 'ping', id: 1 } });
  });

  it('keeps one subsystem within its budget without dropping the others', () => {
    const { extra, dropped } = fitExtra({ a: 1, big: 'x'.repeat(MAX_EXTRA_BYTES), b: { c: 2 } });
    expect(extra).toEqual({ a: 1, b: { c: 2 } });
    expect(dropped).toBe(1);
  });
});

describe('optional fields are repaired, never fatal', () => {
  const summary = {
    peerId: 'peer-a',
    bootId: 'boot-a',
    version: '1',
    uptime: 1,
    apiPort: 9000,
    killSwitch,
    subsystems: [],
    queues: {},
  };

  it('drops invalid links entries and trims links to MAX_SUMMARY_LINKS, and says so', () => {
    const links = [
      { peerId: 'not a valid id!', state: 'connecting' },
      ...Array.from({ length: 600 }, (_, i) => ({ peerId: `p-${i}`, state: 'connected' })),
    ];
    const msg = decode(JSON.stringify({ type: 'status', summary: { ...summary, links } }));
    expect(msg.type === 'status' && msg.summary.links).toHaveLength(MAX_SUMMARY_LINKS);
    expect(msg.type === 'status' && msg.summary.links?.[0]?.peerId).toBe('p-0');
    expect(repairsOf(msg)).toEqual(['links']);
    // The repair note never goes back on the wire.
    expect(encode(msg)).not.toContain('repaired');
  });

  it('drops an invalid extra, and leaves a valid summary untouched', () => {
    const bad = decode(JSON.stringify({ type: 'status', summary: { ...summary, extra: 'not an object' } }));
    expect(bad.type === 'status' && bad.summary.extra).toBeUndefined();
    expect(repairsOf(bad)).toEqual(['extra']);
    const good = decode(
      JSON.stringify({ type: 'status', summary: { ...summary, links: [{ peerId: 'p', state: 'down' }] } }),
    );
    expect(repairsOf(good)).toEqual([]);
  });

  it('still refuses a bad required field', () => {
    expect(
      closeCodeOf(() =>
        decode(JSON.stringify({ type: 'status', summary: { ...summary, peerId: 'bad id!' } })),
      ),
    ).toBe(CLOSE.BAD_MESSAGE);
  });
});

describe('kill-switch epoch on the wire', () => {
  it('refuses an epoch that is not a safe integer, accepts the largest safe one', () => {
    const ks = (epoch: number) => JSON.stringify({ type: 'killswitch', state: { ...killSwitch, epoch } });
    expect(closeCodeOf(() => decode(ks(1e300)))).toBe(CLOSE.BAD_MESSAGE);
    expect(closeCodeOf(() => decode(ks(Number.MAX_SAFE_INTEGER + 2)))).toBe(CLOSE.BAD_MESSAGE);
    expect(decode(ks(Number.MAX_SAFE_INTEGER))).toMatchObject({ state: { epoch: Number.MAX_SAFE_INTEGER } });
  });
});
