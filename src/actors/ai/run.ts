/**
 * The AI subsystem as the supervisor sees it: running means the engine claims and calls; stopping
 * (operator stop, kill switch) aborts the calls in flight and requeues their tasks.
 */
import { defineRun } from '../subsystem.js';
import type { AiEngine } from './engine.js';

export interface AiRunInput {
  engine: AiEngine;
}

export const aiRun = defineRun<AiRunInput>(({ input, ready }) => {
  input.engine.start();
  ready();
  return () => input.engine.stop();
});
