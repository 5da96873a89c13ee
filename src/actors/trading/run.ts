/**
 * The trading subsystem under the supervisor: starts the engine (markets, reconciliation), then
 * ticks it every TRADING_TICK_INTERVAL, one tick at a time. A tick that throws (a strategy bug, a
 * broken ledger) is a subsystem failure, restarted with backoff; a failing exchange is not: the
 * engine retries it itself and shows `reconnecting`. Stopping cancels open orders when the kill
 * switch is the reason.
 */

import { defineRun } from '../subsystem.js';
import type { TradingEngine } from './engine.js';

export interface TradingRunInput {
  engine: TradingEngine;
  tickIntervalMs: number;
}

export const tradingRun = defineRun<TradingRunInput>(({ input, ready, fail }) => {
  const { engine, tickIntervalMs } = input;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let ticking = false;
  const tick = () => {
    if (ticking || stopped) return;
    ticking = true;
    engine
      .tick()
      .catch(fail)
      .finally(() => {
        ticking = false;
      });
  };
  engine.start().then(() => {
    if (stopped) return;
    ready();
    timer = setInterval(tick, tickIntervalMs);
    tick();
  }, fail);
  return () => {
    stopped = true;
    clearInterval(timer);
    engine.stop();
  };
});
