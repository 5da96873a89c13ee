/**
 * The invariants a chaos run checks once everything is healed. Each check is a pure function of
 * what was recorded (the workload's accepted items, the peers' ledgers, the fault log, samples) and
 * returns { name, pass, detail, notes? }; report.mjs prints them.
 */

/** How long after the heal a full mesh must be back, ms (reconnect backoff is capped at 30 s). */
export const FULL_MESH_BOUND_MS = 45_000;
/** How long a kill-switch change may take to reach a linked peer before an order counts against it. */
export const KILL_SWITCH_GRACE_MS = 1_500;
/**
 * Two peers' orders on one account closer than this count as trading at once: one status interval
 * (MESH_SYNC_INTERVAL, 5 s) for a claim to arrive plus the ~4 s a holder takes to be seen down.
 */
export const TRADING_WINDOW_MS = 10_000;
/** RSS growth per peer allowed from the end of warm-up to the end of the run. */
export const RSS_BOUND_PCT = 50;

/** Faults that can cut a peer's links (a slow or lossy link misses heartbeats and drops). */
const FAULTS_CUTTING_A_PEER = new Set(['partition', 'delay', 'loss', 'mesh-restart']);
const FAULTS_STOPPING_A_PEER = new Set([
  'worker-sigkill',
  'sigstop',
  'peer-restart',
  'worker-crash',
  'event-loop-block',
]);

/**
 * Every accepted item completed, one record per idempotency key, resubmissions answered with the
 * first item; every queue item of every store completed; every job delivered and received.
 */
export function checkWork({ accepted, duplicates, peers, postgres, received }) {
  const problems = [];
  const notes = [];
  const storeOf = (peer) => (postgres ? postgres.queueItems : peers[peer].queueItems);
  let ai = 0;
  let jobs = 0;
  for (const [key, a] of accepted) {
    if (a.kind === 'ai') {
      ai++;
      const rows = storeOf(a.peer).filter((r) => r.queue === 'ai' && r.key === key);
      if (rows.length !== 1) problems.push(`AI ${key}: ${rows.length} records (want 1)`);
      else if (String(rows[0].id) !== String(a.id))
        problems.push(`AI ${key}: record ${rows[0].id}, accepted as ${a.id}`);
      else if (rows[0].state !== 'completed')
        problems.push(
          `AI ${key} (${a.id}, peer-${a.peer + 1}): ${rows[0].state} after ${rows[0].attempts} attempts: ${rows[0].lastError ?? ''}`,
        );
    } else {
      jobs++;
      const rows = (postgres?.jobs ?? peers[a.peer].jobs).filter(
        (j) => j.dedupKey === `url:https://jobs.example/chaos-api/${key}`,
      );
      if (rows.length !== 1) problems.push(`job ${key}: ${rows.length} records (want 1)`);
      else if (rows[0].id !== a.id) problems.push(`job ${key}: record ${rows[0].id}, accepted as ${a.id}`);
    }
  }
  for (const d of duplicates)
    problems.push(`resubmitted ${d.key} on ${d.peer}: got ${d.second}, first was ${d.first}`);
  // Every job of every peer (the API's and the feed's) ends delivered, and the receiver has it.
  let delivered = 0;
  let feedJobs = 0;
  // With PostgreSQL the jobs live in the fleet's database (one store) where the product keeps them
  // there, otherwise in each peer's SQLite.
  const jobStores = postgres?.jobs
    ? [['postgres', postgres.jobs]]
    : peers.map((p, i) => [`peer-${i + 1}`, p.jobs]);
  for (const [where, list] of jobStores) {
    for (const j of list) {
      if (j.source !== 'api') feedJobs++;
      if (j.status === 'skipped') continue;
      if (j.status !== 'delivered')
        problems.push(`${where} job ${j.id} (${j.dedupKey}): ${j.status} ${j.reason ?? ''}`);
      else if (!received.has(j.deliveryId))
        problems.push(`${where} job ${j.id}: delivered, but the receiver never got ${j.deliveryId}`);
      else delivered++;
    }
  }
  // Every queue item (AI tasks, proposals, deliveries) of every store is completed.
  const stores = postgres
    ? [['postgres', postgres.queueItems]]
    : peers.map((p, i) => [`peer-${i + 1}`, p.queueItems]);
  const states = {};
  for (const [where, items] of stores) {
    const keys = new Map();
    for (const it of items) {
      states[it.state] = (states[it.state] ?? 0) + 1;
      if (it.state !== 'completed')
        problems.push(
          `${where} queue ${it.queue} item ${it.id} (${it.key ?? 'no key'}): ${it.state} after ${it.attempts} attempts ${it.lastError ?? ''}`,
        );
      if (it.key) {
        const k = `${it.queue}\0${it.key}`;
        if (keys.has(k)) problems.push(`${where}: key ${it.key} recorded twice in ${it.queue}`);
        keys.set(k, it.id);
      }
    }
  }
  const repeats = [...received.values()].filter((r) => r.count > 1).length;
  // Where jobs live in each peer's SQLite, every peer polls the feed and delivers each item itself.
  // Shown, not failed: the product dedups per store (README, Features).
  const feedKeys = new Map();
  for (const [, list] of jobStores)
    for (const j of list)
      if (j.source !== 'api' && j.status === 'delivered')
        feedKeys.set(j.dedupKey, (feedKeys.get(j.dedupKey) ?? 0) + 1);
  const multi = [...feedKeys.values()].filter((n) => n > 1).length;
  notes.push(
    `feed items delivered by more than one peer: ${multi} of ${feedKeys.size} (${postgres?.jobs ? 'one job store for the fleet' : 'each peer keeps its own jobs'})`,
  );
  notes.push(
    `queue items by state: ${JSON.stringify(states)}; webhook ids received ${received.size}, of which ${repeats} more than once (at-least-once delivery)`,
  );
  return {
    name: 'every accepted item completed, recorded once per idempotency key',
    pass: problems.length === 0,
    detail: `${ai} AI tasks and ${jobs} API jobs accepted, ${feedJobs} feed jobs; ${delivered} jobs delivered and received${
      problems.length ? `; ${problems.length} problem(s): ${problems.slice(0, 8).join('; ')}` : ''
    }`,
    notes,
  };
}

/** A full mesh within FULL_MESH_BOUND_MS of the heal, and one TCP link per pair. */
export function checkMesh({ fullMeshMs, links, linkCheck }) {
  const pass =
    fullMeshMs !== null && fullMeshMs <= FULL_MESH_BOUND_MS && (linkCheck === 'skipped' || links.ok);
  const when =
    fullMeshMs === null ? 'no full mesh' : `full mesh ${(fullMeshMs / 1000).toFixed(1)} s after the heal`;
  return {
    name: `one link per pair of live peers, full mesh within ${FULL_MESH_BOUND_MS / 1000} s of the heal`,
    pass,
    detail: `${when}; ${linkCheck === 'skipped' ? 'TCP link count needs namespaces (skipped)' : links.detail}`,
  };
}

export function checkKillSwitch(states) {
  const views = states.map((s, i) =>
    s ? `peer-${i + 1}:${s.active ? 'on' : 'off'}@${s.epoch}/${s.origin}` : `peer-${i + 1}:?`,
  );
  const first = states[0];
  const same = states.every(
    (s) => s && first && s.active === first.active && s.epoch === first.epoch && s.origin === first.origin,
  );
  return { name: 'kill-switch state identical on every peer', pass: same, detail: views.join(' ') };
}

export function checkSubsystems(statuses) {
  const bad = [];
  const limit = [];
  const other = [];
  for (const [i, s] of statuses.entries()) {
    if (!s) {
      bad.push(`peer-${i + 1}: no /status`);
      continue;
    }
    for (const [name, sub] of Object.entries(s.subsystems ?? {})) {
      if (sub.state === 'failed') {
        const what = `peer-${i + 1}/${name} (${sub.consecutiveFailures} failures in a row: ${sub.lastError?.message ?? ''})`;
        if (sub.consecutiveFailures >= 10) limit.push(what);
        else bad.push(what);
      } else if (sub.enabled && sub.state !== 'running') other.push(`peer-${i + 1}/${name}: ${sub.state}`);
    }
  }
  return {
    name: 'no subsystem left failed unless the 10-attempt limit was hit',
    pass: bad.length === 0,
    detail: [
      bad.length ? `failed below the limit: ${bad.join('; ')}` : 'none failed below the limit',
      limit.length ? `at the 10-attempt limit: ${limit.join('; ')}` : 'none at the limit',
      other.length ? `not running at the end: ${other.join('; ')}` : 'all running',
    ].join('; '),
  };
}

function excuse(windows, peers, t) {
  const hit = windows.find((w) => peers.includes(w.peer) && t >= w.from && t <= w.to);
  if (!hit) return null;
  return FAULTS_CUTTING_A_PEER.has(hit.kind)
    ? 'partition'
    : FAULTS_STOPPING_A_PEER.has(hit.kind)
      ? 'handover'
      : hit.kind;
}

/**
 * Never two peers trading one account at once: orders of two peers on one account closer than
 * TRADING_WINDOW_MS. A pair around a kill, freeze or restart of one of them is a handover. Without a
 * lease (each peer's SQLite ledger), a pair where one peer was cut off is the documented limit of the
 * mesh's advisory guard (README, One trader per account): counted and named, not a failure. With the
 * fleet's PostgreSQL ledger and lease (`pgOrders`), nothing is excused but handovers, and the fencing
 * tokens must never go back: an order written under an older token after one under a newer token
 * means two holders wrote at once.
 */
export function checkOneTrader({ peers, windows, pgOrders, leaseLog }) {
  const index = (holder) => peers.findIndex((_, i) => `peer-${i + 1}` === holder);
  const orders = pgOrders
    ? pgOrders.map((o) => ({ ...o, peer: index(o.holder) }))
    : peers.flatMap((p, i) => p.orders.map((o) => ({ ...o, peer: i })));
  orders.sort((a, b) => a.at - b.at);
  const conflicts = [];
  const excused = { partition: 0, handover: 0 };
  for (let k = 1; k < orders.length; k++) {
    const b = orders[k];
    for (let j = k - 1; j >= 0 && b.at - orders[j].at < TRADING_WINDOW_MS; j--) {
      const a = orders[j];
      if (a.peer === b.peer || a.account !== b.account) continue;
      const why = excuse(windows, [a.peer, b.peer], b.at) ?? excuse(windows, [a.peer, b.peer], a.at);
      if (why === 'handover' || (why === 'partition' && !pgOrders)) excused[why]++;
      else
        conflicts.push(
          `peer-${a.peer + 1} ${new Date(a.at).toISOString()} and peer-${b.peer + 1} ${new Date(b.at).toISOString()} (${a.account})`,
        );
      break;
    }
  }
  if (pgOrders) {
    const byWrite = [...pgOrders].sort((a, b) => a.writtenAt - b.writtenAt);
    const top = new Map();
    for (const o of byWrite) {
      const seen = top.get(o.account);
      if (seen && o.token < seen.token)
        conflicts.push(
          `${o.holder} wrote order ${o.clientOrderId} under token ${o.token} after ${seen.holder} wrote under ${seen.token}`,
        );
      if (!seen || o.token > seen.token) top.set(o.account, o);
    }
  }
  const counts = peers.map((_, i) => `peer-${i + 1}:${orders.filter((o) => o.peer === i).length}`).join(' ');
  const source = pgOrders
    ? `the fleet's PostgreSQL ledger (holder, fencing token) and lease log (${leaseLog?.length ?? 0} events)`
    : 'derived from the peers\u2019 SQLite ledgers: orders\u2019 peers and times (no lease log in this store)';
  return {
    name: 'never two peers trading one account at once',
    pass: conflicts.length === 0,
    detail: `orders ${counts}; ${source}; ${conflicts.length} conflict(s)${conflicts.length ? `: ${conflicts.slice(0, 5).join('; ')}` : ''}; excused: ${excused.handover} handover(s) around a kill/freeze/restart, ${excused.partition} while one was cut off: partition, slow or lossy link, mesh restart (the advisory guard's documented limit)`,
  };
}

/** The kill switch's on-intervals from every peer's history (the highest epoch wins, as in the mesh). */
export function killSwitchIntervals(histories) {
  const states = new Map();
  for (const h of histories) for (const r of h) states.set(`${r.epoch}\0${r.origin}`, r);
  const ordered = [...states.values()].sort((a, b) => a.epoch - b.epoch || (a.origin < b.origin ? -1 : 1));
  const intervals = [];
  let on = null;
  for (const s of ordered) {
    if (s.active && !on) on = s;
    if (!s.active && on) {
      intervals.push({ from: on.atMs, to: s.atMs, origin: on.origin });
      on = null;
    }
  }
  if (on) intervals.push({ from: on.atMs, to: Number.POSITIVE_INFINITY, origin: on.origin });
  return intervals;
}

/** No order placed while the kill switch was on (after KILL_SWITCH_GRACE_MS, for a linked peer). */
export function checkNoOrderUnderKillSwitch({ peers, windows, pgOrders }) {
  const intervals = killSwitchIntervals(peers.map((p) => p.killSwitch));
  const bad = [];
  let excused = 0;
  for (const [i, p] of peers.entries()) {
    const mine = pgOrders ? pgOrders.filter((o) => o.holder === `peer-${i + 1}`) : p.orders;
    for (const o of mine) {
      const hit = intervals.find((v) => o.at > v.from + KILL_SWITCH_GRACE_MS && o.at < v.to);
      if (!hit) continue;
      // A peer cut off or frozen when the switch flipped cannot have heard it; it halts on rejoining.
      if (excuse(windows, [i], o.at) === 'partition' || excuse(windows, [i], hit.from) === 'partition')
        excused++;
      else
        bad.push(
          `peer-${i + 1} order ${o.clientOrderId} at ${new Date(o.at).toISOString()} (on since ${new Date(hit.from).toISOString()})`,
        );
    }
  }
  return {
    name: 'no order placed while the kill switch was on',
    pass: bad.length === 0,
    detail: `${intervals.length} on-interval(s); ${bad.length} order(s) inside one${bad.length ? `: ${bad.slice(0, 5).join('; ')}` : ''}${
      excused ? `; ${excused} by a partitioned peer (it could not hear the switch)` : ''
    }`,
  };
}

export function checkRss({ baseline, final }) {
  const rows = baseline.map((b, i) => {
    const f = final[i];
    const pct = b > 0 && f > 0 ? ((f - b) / b) * 100 : Number.NaN;
    return { peer: `peer-${i + 1}`, b, f, pct };
  });
  const mib = (x) => (x / 2 ** 20).toFixed(0);
  const bad = rows.filter((r) => !(r.pct <= RSS_BOUND_PCT));
  return {
    name: `RSS growth per peer within ${RSS_BOUND_PCT} % (end of warm-up to end of run)`,
    pass: bad.length === 0,
    detail: rows
      .map(
        (r) =>
          `${r.peer} ${mib(r.b)}->${mib(r.f)} MiB (${Number.isNaN(r.pct) ? '?' : `${r.pct >= 0 ? '+' : ''}${r.pct.toFixed(0)}`} %)`,
      )
      .join(', '),
    rows,
  };
}
