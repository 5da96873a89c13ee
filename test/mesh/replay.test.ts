// No nonce cache (issue 11, defect 13): an unauthenticated hello's nonce is not remembered, so
// nobody can send an honest dialer into a 30 s REPLAYED backoff by sending its nonce first. Replay
// is prevented by the acceptor's own fresh nonce, which every proof binds.

import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type HandshakeBinding, Keyring } from '../../src/mesh/auth.js';
import { decode, encode, MESH_PATH, message, PROTOCOL_VERSION } from '../../src/mesh/protocol.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { makePeer, SECRET } from './harness.js';

/** One raw dialer handshake with a chosen nonce; resolves to 'ready' or the close code. */
function handshake(port: number, nonce: string, keyring: Keyring): Promise<string | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${MESH_PATH}`);
    const self = { peerId: 'raw', bootId: 'raw-boot', cluster: 'quantum-bot' };
    ws.on('open', () =>
      ws.send(
        encode(
          message('hello', {
            v: PROTOCOL_VERSION,
            ...self,
            nonce,
            listenPort: 1,
            killSwitch: KILL_SWITCH_NEVER_SET,
          }),
        ),
      ),
    );
    ws.on('message', (data) => {
      const msg = decode(data as Buffer);
      if (msg.type === 'challenge') {
        const binding: HandshakeBinding = {
          cluster: self.cluster,
          dialerId: self.peerId,
          dialerBoot: self.bootId,
          dialerNonce: nonce,
          acceptorId: msg.peerId,
          acceptorBoot: msg.bootId,
          acceptorNonce: msg.nonce,
        };
        ws.send(encode(message('auth', { proof: keyring.prove('dialer', binding) })));
      } else if (msg.type === 'ready') {
        ws.close(1000);
        resolve('ready');
      }
    });
    ws.on('close', (code) => resolve(code));
    ws.on('error', () => {});
  });
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
