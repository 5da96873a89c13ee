/**
 * What MeshNode needs from a network, and nothing more: dial an address, accept inbound links, and
 * frame sockets to run the handshake (handshake.ts) and the sealed Link (link.ts) over. Two
 * implementations: transport.ts (WebSocket, production) and memory-transport.ts (in-memory pipes on
 * virtual time, with partitions, drops, delays and paused peers, for fast deterministic tests).
 */
import type { Scheduler } from './clock.js';
import {
  asHandshakeError,
  type Frame,
  HandshakeError,
  type HandshakeMachine,
  type HandshakeOptions,
} from './handshake.js';
import { Link } from './link.js';
import { CLOSE, HANDSHAKE_TIMEOUT_MS } from './protocol.js';

/** One connection's frames, whatever carries them. */
export interface FrameSocket {
  /** Frames can be sent (WebSocket: readyState OPEN). */
  readonly isOpen: boolean;
  send(frame: Frame): void;
  /** Closes with a code, falling back to terminate() should the other side never answer. */
  close(code: number, reason: string): void;
  /** Drops the connection at once. */
  terminate(): void;
  /** @returns a function that removes the listener. */
  onFrame(listener: (data: Buffer, binary: boolean) => void): () => void;
  /** Called once, when the connection has ended for any reason. @returns a remover. */
  onClose(listener: (code: number, reason: string) => void): () => void;
}

/** A handshake under way, dialed or accepted. */
export interface PendingLink {
  /** The authenticated link, or a HandshakeError with the close code; never rejects otherwise. */
  readonly link: Promise<Link>;
  /**
   * Ends the handshake now: the promise rejects at once (1001) and the socket is dropped. Always
   * settles, whatever the other side does; a no-op once settled.
   */
  abort(reason?: string): void;
}

/** Where a transport hands the inbound handshakes it accepts. */
export interface Acceptor {
  /** The options of a handshake starting now (the kill switch as it is now). */
  options(): HandshakeOptions;
  /** An inbound handshake began from `remoteAddress` (an IP). */
  inbound(pending: PendingLink, remoteAddress: string): void;
}

export interface Transport {
  /** Starts handing inbound handshakes to `acceptor`. */
  listen(acceptor: Acceptor): void;
  /** Stops accepting and drops every connection it accepted (linked or not). Idempotent. */
  close(): void;
  dial(address: string, opts: HandshakeOptions): PendingLink;
}

export interface RunOptions {
  timeoutMs?: number;
  scheduler: Scheduler;
  /** Told once how the handshake ended (admission counts failures per address). */
  onSettled?: (ok: boolean) => void;
}

/** A PendingLink whose owner may also fail it with a given error (the admission byte budget). */
export interface RunningHandshake extends PendingLink {
  fail(err: HandshakeError): void;
}

/**
 * Runs one side's handshake `machine` over `socket`: feeds it every frame, sends its replies,
 * bounds the whole by the handshake timeout, and settles exactly once: with a Link, or with a
 * HandshakeError after closing the socket with its code. The dialer sends its hello itself (a
 * WebSocket only once open).
 */
export function runHandshake(
  socket: FrameSocket,
  machine: HandshakeMachine,
  opts: RunOptions,
): RunningHandshake {
  const timeoutMs = opts.timeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  const { promise, resolve, reject } = Promise.withResolvers<Link>();
  let done = false;
  const finish = (err: HandshakeError | undefined, link?: Link, drop = false) => {
    if (done) return;
    done = true;
    opts.scheduler.clear(timer);
    stopReading();
    stopWatching();
    opts.onSettled?.(err === undefined);
    if (err) {
      if (drop) socket.terminate();
      else socket.close(err.closeCode, err.message);
      reject(err);
    } else resolve(link as Link);
  };
  const timer = opts.scheduler.setTimeout(
    () => finish(new HandshakeError(CLOSE.HANDSHAKE_TIMEOUT, `handshake not finished in ${timeoutMs} ms`)),
    timeoutMs,
  );
  const stopWatching = socket.onClose((code, reason) =>
    finish(new HandshakeError(code, reason || `closed during handshake (${code})`)),
  );
  const stopReading = socket.onFrame((data, binary) => {
    if (done) return;
    let step: ReturnType<HandshakeMachine['receive']>;
    try {
      step = machine.receive(data, binary);
    } catch (err) {
      return finish(asHandshakeError(err));
    }
    if (step.reply) socket.send(step.reply);
    // The Link listens from here on: frames after the last handshake frame are its own.
    if (step.established) finish(undefined, new Link(socket, step.established));
  });
  return {
    link: promise,
    abort: (reason = 'handshake aborted') =>
      finish(new HandshakeError(CLOSE.GOING_AWAY, reason), undefined, true),
    fail: (err) => finish(err),
  };
}
