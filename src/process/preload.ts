/**
 * Loads the peer's code in steps. A module graph is linked and evaluated in one synchronous stretch:
 * while `import('../peer.js')` runs, nothing else does, not even the boot gate's /health. Importing
 * the heavy parts one at a time, with a turn of the event loop after each, lets the gate answer
 * between them; the final import of peer.js then finds them loaded.
 */

/** Heaviest dependencies first, each behind the module of ours that owns it. */
const STEPS: ReadonlyArray<() => Promise<unknown>> = [
  () => import('fastify'),
  () => import('../http/routes/dashboard.js'), // @fastify/static, send, mime
  () => import('../store/db.js'), // better-sqlite3
  () => import('../actors/root.js'), // xstate
  () => import('../http/live.js'), // ws
  () => import('../http/app.js'),
];

/** The mesh's, when it runs (MESH_SECRET): TypeBox alone is some 700 modules, split in two steps. */
const MESH_STEPS: ReadonlyArray<() => Promise<unknown>> = [
  () => import('typebox'),
  () => import('typebox/compile'),
  () => import('../mesh/protocol.js'),
  () => import('../mesh/node.js'),
  () => import('../mesh/discovery/index.js'), // bonjour-service, dns-packet
];

/** One turn of the event loop: timers, then a poll for I/O (the gate's probes), then on. */
const turn = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

export async function loadPeerModule(options: { mesh: boolean }): Promise<typeof import('../peer.js')> {
  for (const step of options.mesh ? [...STEPS, ...MESH_STEPS] : STEPS) {
    await step();
    await turn();
  }
  return import('../peer.js');
}
