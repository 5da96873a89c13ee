// Failure detection on a monotonic clock (issue 11, defect 6): a wall-clock step must not stall it.
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { Keyring } from '../../src/mesh/auth.js';
import { dialHandshake } from '../../src/mesh/transport.js';
import { KILL_SWITCH_NEVER_SET } from '../helpers/contract.js';
import { makePeer, SECRET, stateOf } from './harness.js';

describe('failure detection and a wall-clock step', () => {
  it('still sees a silent peer down when the wall clock steps back an hour', async () => {
    // Only Date is faked (it keeps advancing with real time); timers, sockets and performance.now
    // stay real. Faked before the node exists, so whatever clock it reads is the stepped one.
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const a = await makePeer('a');
    await a.node.start();
    // A peer that completes the handshake and then never answers a ping (a frozen process).
    const silent = await dialHandshake(`127.0.0.1:${a.port}`, {
      self: { peerId: 'frozen', bootId: 'frozen-boot', cluster: 'quantum-bot', listenPort: 1 },
      keyring: new Keyring([SECRET]),
      killSwitch: () => KILL_SWITCH_NEVER_SET,
    });
    onTestFinished(() => silent.terminate(1001, 'test over'));
    await vi.waitFor(() => expect(stateOf(a, 'frozen')).toBe('connected'));
    // NTP (or an operator) steps the wall clock back by an hour.
    vi.setSystemTime(Date.now() - 3_600_000);
    // Heartbeats every 200 ms: down after about 4 missed intervals, well within 5 s.
    await vi.waitFor(() => expect(stateOf(a, 'frozen')).toBe('down'), { timeout: 5_000, interval: 50 });
    // Display times stay wall times (in the stepped clock's frame), not monotonic readings.
    const lastSeen = Date.parse(a.node.peers().find((p) => p.peerId === 'frozen')?.lastSeen ?? '');
    expect(Math.abs(lastSeen - Date.now())).toBeLessThan(60_000);
  });
});
