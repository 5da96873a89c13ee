/**
 * Process titles, so `ps` tells the supervisor from its worker (their command lines are otherwise
 * identical): `quantum-bot supervisor <peerId>`, `quantum-bot worker <peerId>`, and
 * `quantum-bot single <peerId>` with CONTINUOUS_MODE=false. The worker learns the peer id when it
 * starts and tells its supervisor over the fork's IPC channel. Linux keeps a title within the
 * bytes of the original command line, so `node bot.js` typed by hand shows a shortened one;
 * /status `pids` is the exact answer.
 */
export type ProcessRole = 'supervisor' | 'worker' | 'single';

/** The IPC message a worker sends its supervisor once it knows its peer id. */
export interface PeerIdMessage {
  type: 'quantum-bot:peer-id';
  peerId: string;
}

export function setProcessTitle(role: ProcessRole, peerId?: string): void {
  process.title = peerId ? `quantum-bot ${role} ${peerId}` : `quantum-bot ${role}`;
}

/**
 * A worker (or single process) that knows its peer id: shows it in its own title and tells its
 * supervisor, which has no other way to learn a generated id.
 */
export function announcePeerId(role: 'worker' | 'single', peerId: string): void {
  setProcessTitle(role, peerId);
  const message: PeerIdMessage = { type: 'quantum-bot:peer-id', peerId };
  // A closed channel (the supervisor is gone) goes to the callback, not to an 'error' event.
  if (process.connected) process.send?.(message, undefined, {}, () => {});
}

export function isPeerIdMessage(message: unknown): message is PeerIdMessage {
  const m = message as Partial<PeerIdMessage> | null;
  return m?.type === 'quantum-bot:peer-id' && typeof m.peerId === 'string';
}
