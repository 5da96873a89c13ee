// No nonce cache (issue 11, defect 13): an unauthenticated hello's nonce is not remembered, so
// nobody can send an honest dialer into a 30 s REPLAYED backoff by sending its nonce first. Replay
// is prevented by the acceptor's own fresh nonce, which every proof binds.

import { describe, expect, it } from 'vitest';
import { Keyring } from '../../src/mesh/auth.js';
import { dialHandshake, HandshakeError } from '../../src/mesh/transport.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { makePeer, SECRET } from './harness.js';

/** One dialer handshake with a chosen nonce; resolves to 'ready' or the close code. */
async function handshake(port: number, nonce: string, keyring: Keyring): Promise<string | number> {
  try {
    const link = await dialHandshake(`127.0.0.1:${port}`, {
      self: { peerId: 'raw', bootId: 'raw-boot', cluster: 'quantum-bot', listenPort: 1 },
      keyring,
      killSwitch: () => KILL_SWITCH_NEVER_SET,
      nonce,
    });
    link.close(1000, 'done');
    return 'ready';
  } catch (err) {
    return err instanceof HandshakeError ? err.closeCode : String(err);
  }
}

describe('handshake nonces', () => {
  it('a nonce seen before (sent first by anyone, unauthenticated) does not refuse a later handshake', async () => {
    const a = await makePeer('a');
    await a.node.start();
    const nonce = 'n'.repeat(32);
    // Someone without the secret sends the honest dialer's nonce first.
    expect(await handshake(a.port, nonce, new Keyring(['not the secret, but long enough']))).toBe(4401);
    // The honest dialer is not refused as a replay.
    expect(await handshake(a.port, nonce, new Keyring([SECRET]))).toBe('ready');
  });
});
