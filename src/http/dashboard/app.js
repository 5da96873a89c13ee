// The fleet dashboard: renders the /live feed (snapshot, then deltas) and offers the kill switch and
// subsystem restarts through the same authenticated API as scripts use. No framework, no build step.
import { connectLive } from './live-client.js';

const TOKEN_KEY = 'quantum-bot.api-token';
/** Where this peer's token can be read (GET /token-hint), shown in the dialog and after a 401. */
let tokenHint = null;
const state = { self: null, peers: new Map(), links: [], killSwitch: null, events: [] };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k.startsWith('data-') || k === 'class' || k === 'href' || k === 'title' || k === 'datetime')
      node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function ago(iso) {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${(s / 3600).toFixed(1)}h`;
  return `${(s / 86400).toFixed(1)}d`;
}

// --- rendering ---------------------------------------------------------------------------------

function renderKillSwitch() {
  const ks = state.killSwitch;
  const active = Boolean(ks?.active);
  $('kill-switch').dataset.killSwitch = active ? 'active' : 'inactive';
  $('ks-state').textContent = active ? 'ACTIVE — every operation is halted' : 'inactive';
  $('ks-detail').textContent = ks?.epoch
    ? `${active ? 'since' : 'last change'} ${new Date(ks.since).toLocaleString()} by ${ks.origin}: ${ks.reason}`
    : '';
}

function tradingLine(t) {
  if (!t || typeof t !== 'object') return null;
  const pnl = typeof t.pnl === 'number' ? t.pnl.toFixed(2) : (t.pnl?.total ?? '—');
  const positions =
    Array.isArray(t.positions) && t.positions.length
      ? `; ${t.positions.map((p) => `${p.symbol} ${p.amount}`).join(', ')}`
      : '';
  const tripped = Array.isArray(t.tripped) && t.tripped.length ? `; TRIPPED ${t.tripped.join(', ')}` : '';
  const standby = t.standby?.holder ? ` (account traded by ${t.standby.holder})` : '';
  return `${t.mode ?? '?'} on ${t.exchange ?? '?'}, ${t.state ?? '?'}${standby}, PnL ${pnl}${positions}${tripped}`;
}

/** AI spend against the caps, the breaker and why the subsystem pauses, if it does. */
function aiLines(ai) {
  if (!ai || typeof ai !== 'object') return null;
  const sp = ai.spend ?? {};
  const spend = el(
    'span',
    { class: 'spend', 'data-ai-spend': '' },
    `${sp.requests ?? 0}/${sp.maxRequests ?? '?'} req · ${sp.tokens ?? 0}/${sp.maxTokens ?? '?'} tok this hour`,
  );
  return el(
    'span',
    { 'data-ai-state': ai.state, 'data-breaker': ai.breaker },
    `${ai.state}, breaker ${ai.breaker} · `,
    spend,
    ai.paused ? el('span', { class: 'paused', 'data-ai-paused': '' }, ` — ${ai.paused}`) : null,
  );
}

function freelanceLine(f) {
  if (!f || typeof f !== 'object') return null;
  const parts = [`${f.awaitingApproval ?? 0} awaiting approval`];
  if (f.failingFeeds) parts.push(`${f.failingFeeds} feed(s) failing`);
  if (f.deliveryPaused) parts.push(`deliveries paused: ${f.deliveryPaused}`);
  return parts.join(' · ');
}

function peerCard(p) {
  const isSelf = p.peerId === state.self;
  // What a peer that is not connected reported is only its last known state: shown greyed, never
  // as a green "running" that nobody can vouch for.
  const stale = !isSelf && p.state !== 'connected' && p.subsystems.length > 0;
  const subs = el(
    'ul',
    { class: 'subs', 'data-stale': stale ? 'true' : null },
    stale ? el('li', { class: 'stale-label', title: `as of ${ago(p.lastSeen)}` }, 'last known:') : null,
    p.subsystems.map((s) =>
      el(
        'li',
        {
          'data-sub-state': s.state,
          title: `${s.name}: ${s.state}, ${s.restarts} restart(s)${stale ? `; last known, ${ago(p.lastSeen)}` : ''}`,
        },
        `${s.name}: ${s.state}${s.restarts ? ` ↻${s.restarts}` : ''}`,
        isSelf && (s.state === 'failed' || s.state === 'backoff' || s.state === 'stopped')
          ? el(
              'button',
              { type: 'button', 'data-restart': s.name, onclick: () => restartSubsystem(s.name) },
              'restart',
            )
          : null,
      ),
    ),
  );
  const queues = Object.entries(p.queues ?? {});
  const href = p.address && !isSelf ? `http://${p.address}/` : null;
  return el(
    'article',
    { class: 'peer', 'data-peer-id': p.peerId, 'data-peer-state': p.state },
    el(
      'header',
      {},
      el('h3', {}, p.peerId, isSelf ? el('span', { class: 'muted' }, ' (this peer)') : null),
      duplicateIdBadge(p),
      el('span', { class: 'state' }, p.state),
    ),
    el(
      'dl',
      {},
      el('dt', {}, 'address'),
      el('dd', {}, href ? el('a', { href, title: 'open its dashboard' }, p.address) : (p.address ?? '—')),
      el('dt', {}, 'uptime'),
      el('dd', {}, duration(p.uptime)),
      el('dt', {}, 'last seen'),
      el('dd', {}, isSelf ? 'now' : ago(p.lastSeen)),
      el('dt', {}, 'RTT'),
      el('dd', {}, p.rttMs === null || p.rttMs === undefined ? '—' : `${p.rttMs} ms`),
      el('dt', {}, 'reconnects'),
      el('dd', {}, String(p.reconnectAttempts ?? 0)),
      el('dt', {}, 'queues'),
      el('dd', {}, queues.length ? queues.map(([k, v]) => `${k} ${v}`).join(', ') : '—'),
      el('dt', {}, 'trading'),
      el(
        'dd',
        { 'data-trading-state': p.trading?.state ?? null, title: p.trading?.reason ?? '' },
        tradingLine(p.trading) ?? '—',
      ),
      el('dt', {}, 'AI'),
      el('dd', {}, aiLines(p.ai) ?? '—'),
      el('dt', {}, 'freelance'),
      el('dd', {}, freelanceLine(p.freelance) ?? '—'),
      el('dt', {}, 'kill switch'),
      el(
        'dd',
        { 'data-card-kill-switch': p.killSwitch ? String(p.killSwitch.epoch) : null },
        p.killSwitch ? (p.killSwitch.active ? `ACTIVE (epoch ${p.killSwitch.epoch})` : 'inactive') : '—',
      ),
    ),
    subs,
    p.refused ? el('p', { class: 'refused' }, `refused: ${p.refused.reason} (${p.refused.code})`) : null,
  );
}

/** 4414 is CLOSE.DUPLICATE_PEER_ID (src/mesh/protocol.ts): the other side runs our peer id too. */
const DUPLICATE_PEER_ID = 4415;

/** A PEER_ID conflict (two live processes with one peer id) is shown on the card, not only logged. */
function duplicateIdBadge(p) {
  const refusedAsDuplicate = p.refused?.code === DUPLICATE_PEER_ID;
  if (!p.duplicateId && !refusedAsDuplicate) return null;
  const title = p.duplicateId
    ? `two live processes use this peer id (boots ${p.duplicateId.bootIds.join(', ')}); ${p.duplicateId.refusals} link(s) refused`
    : 'another live process uses this peer id';
  return el('span', { class: 'badge duplicate-id', title, 'data-duplicate-id': 'true' }, 'DUPLICATE PEER_ID');
}

function renderPeers() {
  const peers = [...state.peers.values()].sort((a, b) =>
    a.peerId === state.self ? -1 : b.peerId === state.self ? 1 : a.peerId.localeCompare(b.peerId),
  );
  $('peers').replaceChildren(...peers.map(peerCard));
  const up = peers.filter((p) => p.state === 'connected').length;
  $('peer-count').textContent = `${up}/${peers.length} connected`;
  renderGraph(peers);
}

const SVG = 'http://www.w3.org/2000/svg';
function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function renderGraph(peers) {
  const g = $('graph');
  const n = peers.length;
  const pos = new Map();
  peers.forEach((p, i) => {
    const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
    const r = n === 1 ? 0 : 110;
    pos.set(p.peerId, [r * Math.cos(a), r * Math.sin(a)]);
  });
  const color = (s) => `var(--${s in { connected: 1, connecting: 1, suspect: 1, down: 1 } ? s : 'disabled'})`;
  const children = [];
  for (const l of state.links) {
    const a = pos.get(l.from);
    const b = pos.get(l.to);
    if (!a || !b) continue;
    children.push(
      svg('line', {
        x1: a[0],
        y1: a[1],
        x2: b[0],
        y2: b[1],
        stroke: color(l.state),
        'stroke-dasharray': l.state === 'connected' ? '' : '6 4',
        'data-link': `${l.from}|${l.to}`,
        'data-link-state': l.state,
      }),
    );
  }
  for (const p of peers) {
    const [x, y] = pos.get(p.peerId);
    const node = svg('g', { 'data-node': p.peerId });
    node.append(
      svg('circle', {
        cx: x,
        cy: y,
        r: p.peerId === state.self ? 14 : 11,
        fill: color(p.state),
        stroke: '#0f1419',
        'stroke-width': 3,
      }),
    );
    const label = svg('text', { x, y: y + (y < 0 ? -18 : 26) });
    label.textContent = p.peerId.length > 18 ? `${p.peerId.slice(0, 17)}…` : p.peerId;
    node.append(label);
    children.push(node);
  }
  g.replaceChildren(...children);
}

function renderEvents() {
  const items = state.events
    .slice(-300)
    .reverse()
    .map((e) =>
      el(
        'li',
        { 'data-kind': e.kind },
        el('time', { datetime: e.at }, new Date(e.at).toLocaleTimeString()),
        e.message,
      ),
    );
  $('events').replaceChildren(...items);
}

// --- the feed ----------------------------------------------------------------------------------

function onMessage(msg) {
  switch (msg.type) {
    case 'snapshot':
      state.self = msg.self;
      state.peers = new Map(msg.peers.map((p) => [p.peerId, p]));
      state.links = msg.links;
      state.killSwitch = msg.killSwitch;
      state.events = msg.events;
      $('self-id').textContent = msg.self;
      document.title = `quantum-bot · ${msg.self}`;
      renderKillSwitch();
      renderPeers();
      renderEvents();
      break;
    case 'peer':
      state.peers.set(msg.peer.peerId, msg.peer);
      renderPeers();
      break;
    case 'peer-removed':
      state.peers.delete(msg.peerId);
      renderPeers();
      break;
    case 'links':
      state.links = msg.links;
      renderPeers();
      break;
    case 'killswitch':
      state.killSwitch = msg.killSwitch;
      renderKillSwitch();
      break;
    case 'event':
      state.events.push(msg.event);
      if (state.events.length > 300) state.events.shift();
      renderEvents();
      break;
  }
}

function setFeedStatus(status, detail) {
  const pill = $('feed-status');
  pill.dataset.status = status;
  pill.textContent = status === 'unauthorized' ? 'feed needs the token' : status;
  if (status === 'unauthorized')
    showMessage(
      `The live feed refused the token${detail ? `: ${detail}` : ''}.${tokenHint ? ` This peer's token is ${tokenHint}.` : ''}`,
    );
}

// --- controls ----------------------------------------------------------------------------------

function hideMessage() {
  clearTimeout(showMessage.timer);
  $('message').hidden = true;
}

function showMessage(text, kind = 'error') {
  const box = $('message');
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(showMessage.timer);
  showMessage.timer = setTimeout(() => {
    box.hidden = true;
  }, 8000);
}

function askToken() {
  return new Promise((resolve) => {
    const dialog = $('token-dialog');
    const input = $('token-input');
    input.value = '';
    const done = (value) => {
      dialog.close();
      resolve(value);
    };
    $('token-cancel').onclick = () => done(null);
    $('token-form').onsubmit = (e) => {
      e.preventDefault();
      done(input.value.trim() || null);
    };
    dialog.showModal();
    input.focus();
  });
}

/** Is an API token kept for this tab? (Panels that poll read only with one, never asking.) */
export function hasToken() {
  return Boolean(sessionStorage.getItem(TOKEN_KEY));
}

/** A GET that needs the token; `interactive` asks for it when there is none. */
export async function authorizedGet(path, { interactive = false } = {}) {
  let token = sessionStorage.getItem(TOKEN_KEY);
  if (!token && interactive) token = await askToken();
  if (!token) return null;
  const res = await fetch(path, { headers: { authorization: `Bearer ${token}` } });
  if (res.status === 401) {
    sessionStorage.removeItem(TOKEN_KEY);
    showMessage(
      `Wrong API token: the peer refused it (401).${tokenHint ? ` This peer's token is ${tokenHint}.` : ''}`,
    );
    return null;
  }
  if (!res.ok) return { error: res.status };
  sessionStorage.setItem(TOKEN_KEY, token);
  return res.json();
}

/** Calls a mutating endpoint with the session's token, asking for it once (and again if wrong). */
export async function authorizedPost(path, body) {
  // A message about an earlier step (such as "Give a reason") no longer applies once the action
  // goes ahead; one about this action (a refused token) is shown from here on.
  hideMessage();
  let token = sessionStorage.getItem(TOKEN_KEY);
  for (let tries = 0; tries < 2; tries++) {
    if (!token) {
      token = await askToken();
      if (!token) return null;
    }
    const res = await fetch(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (res.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      token = null;
      const refusal = await res.json().catch(() => ({}));
      showMessage(
        `Wrong API token: the peer refused it (401). ${tokenHint ? `This peer's token is ${tokenHint}.` : (refusal?.error?.message ?? '')}`,
      );
      continue;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      showMessage(`${res.status}: ${data?.error?.message ?? 'request failed'}`);
      return null;
    }
    return data;
  }
  return null;
}

async function setKillSwitch(activate) {
  const reason = $('ks-reason').value.trim();
  if (!reason) {
    showMessage('Give a reason: it is recorded with the change on every peer.');
    $('ks-reason').focus();
    return;
  }
  const result = await authorizedPost('/kill-switch', { activate, reason });
  if (result) {
    $('ks-reason').value = '';
    showMessage(`Kill switch ${result.active ? 'activated' : 'deactivated'} (epoch ${result.epoch}).`, 'ok');
  }
}

async function restartSubsystem(name) {
  const result = await authorizedPost(`/subsystems/${encodeURIComponent(name)}/restart`);
  if (result) showMessage(`Restarting ${name}.`, 'ok');
}

// --- the work panel: jobs awaiting approval, recent AI tasks (this peer's) ----------------------

/** GET with the session's token when there is one: details need it, states do not. */
async function readWithToken(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const res = await fetch(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json();
}

function jobItem(j) {
  const title = j.title ?? `job ${j.id.slice(0, 8)} (token needed for details)`;
  const budget = j.budget === null || j.budget === undefined ? '' : ` · ${j.budget} ${j.currency ?? ''}`;
  return el(
    'li',
    { 'data-job-id': j.id },
    el('strong', {}, title),
    el('span', { class: 'muted' }, budget),
    j.proposal
      ? el('p', { class: 'proposal' }, j.proposal.length > 400 ? `${j.proposal.slice(0, 400)}…` : j.proposal)
      : null,
    el(
      'span',
      { class: 'actions' },
      el(
        'button',
        { type: 'button', 'data-approve': j.id, onclick: () => decideJob(j.id, 'approve') },
        'Approve',
      ),
      el(
        'button',
        { type: 'button', class: 'danger', 'data-reject': j.id, onclick: () => decideJob(j.id, 'reject') },
        'Reject',
      ),
    ),
  );
}

function taskItem(t) {
  const label = t.prompt ? (t.prompt.length > 80 ? `${t.prompt.slice(0, 80)}…` : t.prompt) : `task ${t.id}`;
  const tokens = t.usage ? ` · ${t.usage.totalTokens} tok` : '';
  return el(
    'li',
    { 'data-task-id': t.id, 'data-task-state': t.status },
    el('span', { class: 'state' }, t.status),
    ` ${label}`,
    el('span', { class: 'muted' }, ` · ${t.attempts} attempt(s)${tokens}${t.error ? ` · ${t.error}` : ''}`),
  );
}

async function refreshWork() {
  try {
    const [jobs, tasks] = await Promise.all([
      readWithToken('/freelance/jobs?status=awaiting-approval&limit=50').catch(() => ({ jobs: [] })),
      readWithToken('/ai/tasks?limit=20').catch(() => ({ tasks: [] })),
    ]);
    $('jobs').replaceChildren(
      ...(jobs.jobs.length ? jobs.jobs.map(jobItem) : [el('li', { class: 'muted' }, 'none')]),
    );
    $('tasks').replaceChildren(
      ...(tasks.tasks.length ? tasks.tasks.map(taskItem) : [el('li', { class: 'muted' }, 'none')]),
    );
  } catch {
    // The next refresh tries again; the feed status pill shows a dead peer.
  }
}

async function decideJob(id, decision) {
  const result = await authorizedPost(`/freelance/jobs/${encodeURIComponent(id)}/${decision}`);
  if (result) showMessage(`Job ${decision === 'approve' ? 'approved' : 'rejected'}.`, 'ok');
  refreshWork();
}

refreshWork();
setInterval(refreshWork, 3000);

$('ks-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setKillSwitch(e.submitter?.value === 'activate');
});

// Where the token is: a file path or a variable, never the token (the endpoint needs no token).
fetch('/token-hint')
  .then((res) => (res.ok ? res.json() : null))
  .then((body) => {
    if (typeof body?.tokenHint !== 'string') return;
    tokenHint = body.tokenHint;
    $('token-hint').textContent = `This peer's token is ${tokenHint}.`;
  })
  .catch(() => {});

// Relative times age without any new message.
setInterval(() => {
  if (state.peers.size) renderPeers();
}, 5000);

connectLive({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/live`,
  onMessage,
  onStatus: setFeedStatus,
  token: () => sessionStorage.getItem(TOKEN_KEY),
});
