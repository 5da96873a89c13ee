/**
 * The Prometheus registry of a peer (prom-client). Loaded only when the app is ready, not on the
 * way to the first /health: prom-client and its dependencies are about a hundred modules.
 */
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { SUBSYSTEM_STATES } from '../../actors/subsystem.js';
import type { MeshCounters } from '../../mesh/node.js';
import type { AppDeps } from '../app.js';
import { replaceEventLoopLagGauges } from './event-loop.js';

/** A registry of this peer's metrics; each value is read from the live state at scrape time. */
export function createMetricsRegistry(deps: AppDeps): Registry {
  const register = new Registry();
  register.setDefaultLabels({ peer_id: deps.identity.peerId });
  // prom-client samples event-loop lag every 10 ms by default; an idle peer should sleep. Its
  // histogram figures include that resolution (about 1 s at idle): they are replaced just below.
  collectDefaultMetrics({ register, prefix: 'qb_', eventLoopMonitoringPrecision: 1000 });
  replaceEventLoopLagGauges(register, 'qb_', () => deps.health.eventLoopDelay());
  const states = [...SUBSYSTEM_STATES, 'disabled'];

  new Gauge({
    name: 'qb_subsystem_state',
    help: 'Subsystem lifecycle state: 1 for the current state, 0 for the others',
    labelNames: ['subsystem', 'state'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of deps.actors.status()) {
        for (const state of states) this.set({ subsystem: s.name, state }, s.state === state ? 1 : 0);
      }
    },
  });
  new Counter({
    name: 'qb_subsystem_restarts_total',
    help: 'Automatic restarts of a subsystem by its supervisor since the process started',
    labelNames: ['subsystem'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of deps.actors.status()) this.inc({ subsystem: s.name }, s.restarts);
    },
  });
  new Gauge({
    name: 'qb_subsystem_consecutive_failures',
    help: 'Failures in a row; at the limit the subsystem is held failed',
    labelNames: ['subsystem'],
    registers: [register],
    collect() {
      this.reset();
      for (const s of deps.actors.status()) this.set({ subsystem: s.name }, s.consecutiveFailures);
    },
  });
  new Gauge({
    name: 'qb_kill_switch_active',
    help: '1 while the kill switch halts operations',
    registers: [register],
    collect() {
      this.set(deps.killSwitch.get().active ? 1 : 0);
    },
  });
  new Gauge({
    name: 'qb_worker_respawns',
    help: 'Times the process supervisor respawned the worker before this one',
    registers: [register],
    collect() {
      this.set(deps.workerRespawns);
    },
  });
  registerMeshMetrics(register, deps);
  deps.features?.metrics(register);
  const queue = deps.queue;
  if (queue) {
    new Gauge({
      name: 'qb_queue_items',
      help: 'Queue items by queue and state (shared by the fleet with DATABASE_URL)',
      labelNames: ['queue', 'state'],
      registers: [register],
      async collect() {
        this.reset();
        const depths = await queue.depths().catch(() => ({}));
        for (const [name, byState] of Object.entries(depths)) {
          for (const [state, n] of Object.entries(byState)) this.set({ queue: name, state }, n);
        }
      },
    });
    new Gauge({
      name: 'qb_queue_store_connected',
      help: '1 while the queue reaches its store; 0 while PostgreSQL (DATABASE_URL) is unreachable',
      labelNames: ['kind'],
      registers: [register],
      collect() {
        const c = queue.connection();
        this.set({ kind: c.kind }, c.state === 'connected' ? 1 : 0);
      },
    });
  }
  return register;
}

function registerMeshMetrics(register: Registry, deps: AppDeps): void {
  const perKey = (
    name: string,
    help: string,
    label: string,
    pick: (c: MeshCounters) => Record<string, number>,
  ) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [register],
      collect() {
        this.reset();
        const counters = deps.mesh().counters;
        if (!counters) return;
        for (const [key, value] of Object.entries(pick(counters))) this.inc({ [label]: key }, value);
      },
    });
  new Gauge({
    name: 'qb_mesh_links',
    help: 'Known peers by link state',
    labelNames: ['state'],
    registers: [register],
    collect() {
      this.reset();
      const peers = deps.mesh().peers;
      for (const state of ['connecting', 'connected', 'suspect', 'down'] as const) {
        this.set({ state }, peers.filter((p) => p.state === state).length);
      }
    },
  });
  perKey('qb_mesh_messages_in_total', 'Mesh messages received, by type', 'type', (c) => c.messagesIn);
  perKey('qb_mesh_messages_out_total', 'Mesh messages sent, by type', 'type', (c) => c.messagesOut);
  perKey(
    'qb_mesh_handshake_failures_total',
    'Failed mesh handshakes, by reason',
    'reason',
    (c) => c.handshakeFailures,
  );
  // A newer peer's additions, ignored rather than fatal (rolling upgrades): worth seeing on a graph.
  perKey(
    'qb_mesh_unknown_messages_total',
    'Mesh messages of a type this version does not know, ignored, by type',
    'type',
    (c) => c.wire?.unknownTypes ?? {},
  );
  perKey(
    'qb_mesh_ignored_values_total',
    'Unknown enum values and over-budget subsystem data dropped',
    'kind',
    (c) => ({
      value: c.wire?.ignoredValues ?? 0,
    }),
  );
  perKey(
    'qb_mesh_upgrades_refused_total',
    'Mesh upgrades refused before any handshake (pending caps, failing address), by reason',
    'reason',
    (c) => c.refusedUpgrades ?? {},
  );
  new Counter({
    name: 'qb_mesh_reconnects_total',
    help: 'Dial attempts to peers',
    registers: [register],
    collect() {
      this.reset();
      this.inc(deps.mesh().counters?.reconnects ?? 0);
    },
  });
  new Gauge({
    name: 'qb_mesh_peer_rtt_ms',
    help: 'Round-trip time of the last heartbeat, per peer',
    labelNames: ['peer'],
    registers: [register],
    collect() {
      this.reset();
      for (const p of deps.mesh().peers)
        if (p.peerId && p.rttMs !== null) this.set({ peer: p.peerId }, p.rttMs);
    },
  });
}
