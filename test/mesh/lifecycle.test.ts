// MeshNode restarts (issue 11, defects 2 and 3): a dial in flight at stop is retried after the next
// start, and a stop that lands while start is still waiting leaves nothing running.

import type { AddressInfo } from 'node:net';
import { createServer, type Socket } from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Keyring } from '../../src/mesh/auth.js';
import type { Discovery } from '../../src/mesh/discovery/types.js';
import { CLOSE } from '../../src/mesh/protocol.js';
import { dialWebSocket, HandshakeError } from '../../src/mesh/transport.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { MemoryKillSwitch, makePeer, SECRET } from './harness.js';

/** A TCP server that accepts connections and never answers: a dial to it hangs in its handshake. */
async function silentServer(): Promise<{ port: number; sockets: Socket[]; connections: () => number }> {
  const sockets: Socket[] = [];
  let count = 0;
  const server = createServer((socket) => {
    count++;
    sockets.push(socket);
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as AddressInfo).port, sockets, connections: () => count };
}

describe('the WebSocket dialer', () => {
  it('settles at once when aborted, though the other side never answers', async () => {
    const silent = await silentServer();
    const pending = dialWebSocket(`127.0.0.1:${silent.port}`, {
      self: { peerId: 'a', bootId: 'a-boot', cluster: 'quantum-bot', listenPort: 1 },
      keyring: new Keyring([SECRET]),
      killSwitch: () => KILL_SWITCH_NEVER_SET,
    });
    await vi.waitFor(() => expect(silent.connections()).toBe(1));
    const started = performance.now();
    pending.abort();
    const err = await pending.link.catch((e: unknown) => e);
    // Well before the 5 s handshake timeout.
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(HandshakeError);
    expect((err as HandshakeError).closeCode).toBe(CLOSE.GOING_AWAY);
  });
});

describe('MeshNode restarts', () => {
  it('re-dials after a restart an address whose dial was in flight at stop', async () => {
    const silent = await silentServer();
    const a = await makePeer('a');
    a.peers = [`127.0.0.1:${silent.port}`];
    await a.node.start();
    await vi.waitFor(() => expect(silent.connections()).toBe(1));
    await a.node.stop();
    // The hanging dial fails while the node is stopped.
    for (const s of silent.sockets) s.destroy();
    await vi.waitFor(() => expect(a.node.handshakesInFlight).toBe(0));
    await a.node.start();
    await vi.waitFor(() => expect(silent.connections()).toBe(2), { timeout: 5_000 });
  });

  it('a stop while start waits for the previous stop leaves no timer, listener or announcement', async () => {
    let active = 0;
    // A provider whose withdrawal (mDNS goodbye) takes a while.
    const slow: Discovery = {
      source: 'mdns',
      async start() {
        active++;
      },
      async stop() {
        await new Promise((r) => setTimeout(r, 50));
        active = Math.max(0, active - 1);
      },
    };
    const killSwitch = new MemoryKillSwitch();
    const a = await makePeer('a', { alsoDiscover: slow, killSwitch });
    await a.node.start();
    expect(active).toBe(1);
    const firstStop = a.node.stop();
    const restart = a.node.start();
    const secondStop = a.node.stop();
    await Promise.all([firstStop, restart, secondStop]);
    // Whatever the restart would still do after the first stop has happened by now.
    await new Promise((r) => setTimeout(r, 100));
    expect(a.node.isRunning).toBe(false);
    expect(killSwitch.listeners.size).toBe(0);
    expect(active).toBe(0);
    // The node starts cleanly afterwards.
    await a.node.start();
    expect(killSwitch.listeners.size).toBe(1);
  });
});
