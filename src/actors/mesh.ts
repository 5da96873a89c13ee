/**
 * The mesh subsystem: runs the MeshNode under the supervisor. The node's sockets and timers are
 * dropped synchronously when the actor stops; `drain` waits for discovery to withdraw (mDNS
 * unpublish) so a restarted mesh does not race its own old announcement.
 */
import { fromPromise } from 'xstate';
import type { MeshNode } from '../mesh/node.js';
import { defineRun } from './subsystem.js';

export interface MeshRunInput {
  node: MeshNode;
}

export const meshRun = defineRun<MeshRunInput>(({ input, ready, fail }) => {
  input.node.start().then(ready, fail);
  return () => {
    void input.node.stop();
  };
});

export const meshDrain = fromPromise<void, MeshRunInput>(({ input }) => input.node.stop());
