/**
 * The Discovery lifecycle contract (types.ts), run the same way on every provider: stop before
 * start is safe, start twice does not double anything, nothing is emitted after stop, stop leaves
 * no timer behind, and start after stop works again. Fake time throughout.
 */

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Discovery } from '../../../src/mesh/discovery/types.js';
import { recorder } from './recorder.js';

export interface LifecycleSubject {
  discovery: Discovery;
  /** Makes a running provider report at least one sighting (advance time, deliver an answer...). */
  provoke(): Promise<void>;
}

/** stop() under fake time: runs the timers it may wait on (a goodbye, a socket close). */
export async function stopUnderFakeTime(discovery: Pick<Discovery, 'stop'>): Promise<void> {
  const stopping = discovery.stop();
  await vi.runAllTimersAsync();
  await stopping;
}

export function describeDiscoveryLifecycle(name: string, make: () => LifecycleSubject): void {
  describe(`${name}: Discovery lifecycle`, () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('stop before start resolves, and twice', async () => {
      const { discovery } = make();
      await discovery.stop();
      await discovery.stop();
      expect(vi.getTimerCount()).toBe(0);
    });

    it('reports sightings with its own source while running', async () => {
      const { discovery, provoke } = make();
      const rec = recorder();
      await discovery.start(rec.context);
      await provoke();
      expect(rec.sightings.length).toBeGreaterThan(0);
      expect(rec.sightings.every((s) => s.source === discovery.source)).toBe(true);
      await stopUnderFakeTime(discovery);
    });

    it('start twice does not double sightings or timers', async () => {
      const once = make();
      const recOnce = recorder();
      await once.discovery.start(recOnce.context);
      await once.provoke();
      const timersOnce = vi.getTimerCount();
      await stopUnderFakeTime(once.discovery);

      const twice = make();
      const recTwice = recorder();
      await twice.discovery.start(recTwice.context);
      await twice.discovery.start(recTwice.context);
      await twice.provoke();
      expect(vi.getTimerCount()).toBe(timersOnce);
      expect(recTwice.sightings).toEqual(recOnce.sightings);
      await stopUnderFakeTime(twice.discovery);
    });

    it('emits nothing after stop and leaves no timer', async () => {
      const { discovery, provoke } = make();
      const rec = recorder();
      await discovery.start(rec.context);
      await provoke();
      const seen = rec.sightings.length;
      await stopUnderFakeTime(discovery);
      await provoke();
      await vi.advanceTimersByTimeAsync(60_000);
      expect(rec.sightings.length).toBe(seen);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('starts again after stop', async () => {
      const { discovery, provoke } = make();
      const first = recorder();
      await discovery.start(first.context);
      await stopUnderFakeTime(discovery);
      const second = recorder();
      await discovery.start(second.context);
      await provoke();
      expect(second.sightings.length).toBeGreaterThan(0);
      await stopUnderFakeTime(discovery);
    });
  });
}
