/**
 * An on-path attacker for mesh tests: a WebSocket relay on 127.0.0.1 that forwards every frame
 * between a dialer and the real acceptor, through hooks that may rewrite, drop, hold back or add
 * frames. Frame boundaries and text/binary kinds are kept, as an attacker on the TCP path could.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { onTestFinished } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';

export interface Frame {
  data: Buffer;
  isBinary: boolean;
}

/** Decides what goes on for one frame: the frames to send instead (none drops it). */
export type Hook = (frame: Frame, index: number, send: (f: Frame) => void) => void;

export interface Relay {
  address: string;
  /** Frames seen so far in each direction. */
  toAcceptor: Frame[];
  toDialer: Frame[];
}

const pass: Hook = (frame, _i, send) => send(frame);

export async function startRelay(
  target: string,
  hooks: { toAcceptor?: Hook; toDialer?: Hook } = {},
): Promise<Relay> {
  const server = createServer();
  const wss = new WebSocketServer({ server, perMessageDeflate: false, maxPayload: 4 * 1024 * 1024 });
  const relay: Relay = { address: '', toAcceptor: [], toDialer: [] };
  wss.on('connection', (inbound, req) => {
    const outbound = new WebSocket(`ws://${target}${req.url}`, { perMessageDeflate: false });
    const queued: Frame[] = [];
    const forward = (ws: WebSocket) => (f: Frame) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(f.data, { binary: f.isBinary });
    };
    outbound.on('open', () => {
      for (const f of queued.splice(0)) forward(outbound)(f);
    });
    inbound.on('message', (data, isBinary) => {
      const frame = { data: data as Buffer, isBinary };
      relay.toAcceptor.push(frame);
      (hooks.toAcceptor ?? pass)(frame, relay.toAcceptor.length - 1, (f) =>
        outbound.readyState === WebSocket.OPEN ? forward(outbound)(f) : queued.push(f),
      );
    });
    outbound.on('message', (data, isBinary) => {
      const frame = { data: data as Buffer, isBinary };
      relay.toDialer.push(frame);
      (hooks.toDialer ?? pass)(frame, relay.toDialer.length - 1, forward(inbound));
    });
    // Close codes are relayed too, so each side sees what the other said.
    inbound.on('close', (code) => outbound.close(validCode(code)));
    outbound.on('close', (code) => inbound.close(validCode(code)));
    inbound.on('error', () => {});
    outbound.on('error', () => inbound.terminate());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  relay.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  onTestFinished(async () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return relay;
}

/** 1005/1006 cannot be sent in a close frame. */
function validCode(code: number): number {
  return code === 1005 || code === 1006 ? 1000 : code;
}
