/**
 * The lifecycle contract every startable part of a peer keeps (STYLE.md section 2, after js-libp2p's
 * startable compliance tests): start twice is safe, stop without start is safe, stop is idempotent,
 * and nothing is left running after stop, nor started by a later start.
 */
import { describe, expect, it, onTestFinished, vi } from 'vitest';

export interface LifecycleSubject {
  start(): unknown;
  stop(): Promise<void>;
  /**
   * How many instances of the subject's work are live now (run actors, listening servers...). After
   * stop it must reach 0; a handle's close may complete a turn of the event loop later.
   */
  running(): number;
  /** What running() is once started (one per subsystem, one server...). */
  expectedRunning: number;
}

export function lifecycleContract(
  name: string,
  make: () => LifecycleSubject | Promise<LifecycleSubject>,
): void {
  describe(`${name}: lifecycle contract`, () => {
    async function subject(): Promise<LifecycleSubject> {
      const s = await make();
      onTestFinished(() => s.stop());
      return s;
    }

    it('start runs it once; starting twice is safe and runs nothing twice', async () => {
      const s = await subject();
      await s.start();
      await vi.waitFor(() => expect(s.running()).toBe(s.expectedRunning));
      await s.start();
      expect(s.running()).toBe(s.expectedRunning);
      await s.stop();
      await vi.waitFor(() => expect(s.running()).toBe(0));
    });

    it('stop without start is safe', async () => {
      const s = await subject();
      await expect(s.stop()).resolves.toBeUndefined();
      expect(s.running()).toBe(0);
    });

    it('stop is idempotent, also when called concurrently', async () => {
      const s = await subject();
      await s.start();
      await vi.waitFor(() => expect(s.running()).toBe(s.expectedRunning));
      await Promise.all([s.stop(), s.stop()]);
      await expect(s.stop()).resolves.toBeUndefined();
      await vi.waitFor(() => expect(s.running()).toBe(0));
    });

    it('start after stop starts nothing again', async () => {
      const s = await subject();
      await s.start();
      await s.stop();
      await s.start();
      await vi.waitFor(() => expect(s.running()).toBe(0));
    });
  });
}
