/**
 * A TCP proxy on 127.0.0.1 that can "lose the machine" behind it: after freeze() it forwards
 * nothing more in either direction and closes nothing, as when a host loses power or its network,
 * so the far side sees neither data nor FIN/RST and keeps its session open. `freezeOn` freezes at
 * the moment a client sends bytes containing a marker (the marker itself is dropped), to cut a
 * protocol exchange at an exact step. Closed (every socket destroyed) when the test finishes.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { onTestFinished } from 'vitest';

export interface FreezableProxy {
  port: number;
  /** Freezes every connection now. */
  freeze(): void;
  /** Freezes as soon as a client sends bytes containing `marker`, and resolves then. */
  freezeOn(marker: string): Promise<void>;
  frozen(): boolean;
  /** Resets every connection so far (the lost host's sessions end) and forwards new ones again. */
  reset(): void;
  /** Resets every connection and stops listening. */
  close(): Promise<void>;
}

export async function startFreezableProxy(targetPort: number): Promise<FreezableProxy> {
  const sockets = new Set<Socket>();
  let isFrozen = false;
  let trigger: { marker: string; fired: () => void } | undefined;

  const freeze = () => {
    isFrozen = true;
    // Paused sockets stop reading: nothing is forwarded, and nothing is closed.
    for (const s of sockets) s.pause();
  };

  const server = createServer((client) => {
    const upstream = createConnection(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.on('data', (chunk: Buffer) => {
      if (!isFrozen && trigger && chunk.includes(trigger.marker)) {
        const { fired } = trigger;
        trigger = undefined;
        freeze();
        fired();
      }
      if (!isFrozen) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!isFrozen) client.write(chunk);
    });
    // A close before the freeze is an ordinary one; after it, the lost host says nothing.
    client.on('end', () => isFrozen || upstream.end());
    upstream.on('end', () => isFrozen || client.end());
    if (isFrozen) freeze();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const reset = () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    isFrozen = false;
  };
  const close = async () => {
    reset();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  onTestFinished(close);
  return {
    port,
    freeze,
    freezeOn(marker) {
      const { promise, resolve } = Promise.withResolvers<void>();
      trigger = { marker, fired: resolve };
      return promise;
    },
    frozen: () => isFrozen,
    reset,
    close,
  };
}
