/**
 * The answers users and scripts rely on (DESIGN.md section 5), written once for the inject() tests
 * and the real-process tests alike, so both hold the peer to the same contract.
 */
import { expect } from 'vitest';
import type { KillSwitchState } from '../../src/store/kill-switch.js';
import type { BotProcess } from './process.js';

/** Every field of GET /status. */
export const STATUS_FIELDS = [
  'peerId',
  'bootId',
  'uptime',
  'continuousMode',
  'killSwitch',
  'trading',
  'freelance',
  'ai',
  'mesh',
  'reconnectAttempts',
  'subsystems',
  'prompt',
] as const;

/** The fields of GET /health, exactly (sorted). */
export const HEALTH_FIELDS = [
  'connections',
  'cpu',
  'eventLoopDelayMs',
  'memory',
  'status',
  'uptime',
] as const;

/** The kill switch of a peer where it was never set (GET /kill-switch, /status.killSwitch, the store). */
export const KILL_SWITCH_NEVER_SET: Readonly<KillSwitchState> = Object.freeze({
  active: false,
  reason: '',
  since: new Date(0).toISOString(),
  origin: '',
  epoch: 0,
});

/** GET /status of a peer process, which must answer 200; the parsed body. */
export async function status(bot: BotProcess) {
  const answer = await bot.get('/status');
  expect(answer.status).toBe(200);
  return answer.json();
}
