/**
 * Status summaries as deltas, pure: what changed between the summary last sent on a link and the
 * current one, and the receiver's side, applying a delta to the summary it holds. Sending the whole
 * summary (with its list of N links) to N peers every sync made the bytes parsed per round grow as
 * N^3 across a fleet; with deltas an idle fleet sends no status at all.
 *
 * `uptime` changes every second, so it never counts as a change by itself: it rides along with
 * every delta, and a receiver advances it by the time elapsed since (see advanceUptime).
 */
import type { Summary, SummaryDelta } from './protocol.js';
import { MAX_SUMMARY_LINKS } from './protocol.js';

type LinkEntry = NonNullable<Summary['links']>[number];

/** Top-level fields compared as a whole (JSON-equal); `links` is diffed entry by entry. */
const FIELDS = ['bootId', 'version', 'apiPort', 'killSwitch', 'subsystems', 'queues', 'extra'] as const;

/**
 * The changes from `prev` to `next`, or undefined when nothing but `uptime` changed. Both are
 * summaries of the same peer (`peerId` never changes on a link).
 */
export function diffSummary(prev: Summary, next: Summary): Omit<SummaryDelta, 'type' | 'seq'> | undefined {
  const set: Partial<Summary> = {};
  const unset: string[] = [];
  let changed = false;
  for (const f of FIELDS) {
    if (same(prev[f], next[f])) continue;
    changed = true;
    if (next[f] === undefined) unset.push(f);
    else (set as Record<string, unknown>)[f] = next[f];
  }
  const before = new Map((prev.links ?? []).map((l) => [l.peerId, l.state]));
  const after = new Map((next.links ?? []).map((l) => [l.peerId, l.state]));
  const linkSet: LinkEntry[] = [];
  const linkRemoved: string[] = [];
  for (const [peerId, state] of after) if (before.get(peerId) !== state) linkSet.push({ peerId, state });
  for (const peerId of before.keys()) if (!after.has(peerId)) linkRemoved.push(peerId);
  const linksChanged = linkSet.length > 0 || linkRemoved.length > 0;
  if (!changed && !linksChanged) return undefined;
  return {
    uptime: next.uptime,
    ...(changed ? { set } : {}),
    ...(unset.length ? { unset } : {}),
    ...(linksChanged ? { links: { set: linkSet, removed: linkRemoved } } : {}),
  };
}

/**
 * The summary `base` becomes with `delta` applied; `base` is not changed. Link entries keep their
 * order (new ones at the end) and stay within MAX_SUMMARY_LINKS.
 */
export function applyDelta(base: Summary, delta: Omit<SummaryDelta, 'type' | 'seq'>): Summary {
  const next: Summary = { ...base, ...(delta.set ?? {}), peerId: base.peerId, uptime: delta.uptime };
  for (const f of delta.unset ?? []) {
    // Only optional fields may be removed; a required one named here is ignored.
    if (f === 'extra') delete next.extra;
  }
  if (delta.links) {
    const states = new Map((base.links ?? []).map((l) => [l.peerId, l.state]));
    for (const peerId of delta.links.removed) states.delete(peerId);
    for (const l of delta.links.set) states.set(l.peerId, l.state);
    next.links = [...states].slice(0, MAX_SUMMARY_LINKS).map(([peerId, state]) => ({ peerId, state }));
  }
  return next;
}

/** A held summary as of now: its `uptime` advanced by the whole seconds since it was received. */
export function advanceUptime(summary: Summary, receivedAt: number, now: number): Summary {
  const elapsed = Math.max(0, Math.floor((now - receivedAt) / 1000));
  return elapsed === 0 ? summary : { ...summary, uptime: summary.uptime + elapsed };
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
