import { describe, expect, it } from 'vitest';
import { formatHostPort, parseHostPort } from '../../../src/mesh/discovery/address.js';

describe('host:port', () => {
  it('formats IPv4 and names plainly, IPv6 (with or without zone) in brackets', () => {
    expect(formatHostPort('127.0.0.1', 9000)).toBe('127.0.0.1:9000');
    expect(formatHostPort('peer-a.local', 9000)).toBe('peer-a.local:9000');
    expect(formatHostPort('::1', 9000)).toBe('[::1]:9000');
    expect(formatHostPort('[::1]', 9000)).toBe('[::1]:9000');
    expect(formatHostPort('fe80::1%eth0', 9000)).toBe('[fe80::1%eth0]:9000');
  });

  it('parses what it formats, and refuses what has no valid port', () => {
    expect(parseHostPort('127.0.0.1:9000')).toEqual({ host: '127.0.0.1', port: 9000 });
    expect(parseHostPort(' bot:1 ')).toEqual({ host: 'bot', port: 1 });
    expect(parseHostPort('[fe80::1%eth0]:65535')).toEqual({ host: 'fe80::1%eth0', port: 65535 });
    for (const bad of ['bot', 'bot:', 'bot:0', 'bot:65536', '::1', '::1:9000', '[::1]', ':9000', 'a b:1']) {
      expect(parseHostPort(bad), bad).toBeUndefined();
    }
  });
});
