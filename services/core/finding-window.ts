// A finding's window of raw events (issue 17): what `explain` replays and what the store keeps with each finding
// (finding_events) beyond the raw events' TTL. The same rule for a trace and for the store, so both explain a finding
// from the same events. Pure.
import { FindingKind, type Episode, type Event, type Finding } from './model.js';

export const EXPLAIN_LIMITS = {
  /** Shown from this long before the episode's lock wait began (a trigger names an acquire within 1 s). */
  beforeNs: 1_000_000_000,
  /** Shown until this long after the release (or the finding): trigger returns, the next faults. Not more than the
   * correlator's lateness (2 s): the store copies the window when the finding is written. */
  afterNs: 1_000_000_000,
  /** Replayed, not shown, from this long before the shown window: the facts the state at its start rests on. */
  leadInNs: 60_000_000_000,
  /** At most this many events per finding, the newest (a busy device keeps a shorter lead-in). */
  maxEvents: 2000,
} as const;

/** The device's events a finding keeps: [keepFromNs, toNs]; shown: [fromNs, toNs]; times relative to anchorNs (the
 * episode's acquire when it was observed, else the finding). */
export interface FindingSpan { keepFromNs: number; fromNs: number; toNs: number; anchorNs: number }

export type EpisodeTimes = Pick<Episode, 'acquireTsNs' | 'lockWaitNs' | 'releaseTsNs'>;

/** The window of `f` with its episode. A LOCK_HELD_OPEN is made before its episode is released (the store writes it
 * without one): its window is its evidence's acquire to the finding, whatever the episode did later. */
export function findingSpan(f: Pick<Finding, 'tsNs' | 'kind' | 'evidence'>, ep: EpisodeTimes | null | undefined): FindingSpan {
  let from = f.tsNs, to = f.tsNs, anchor = f.tsNs;
  if (f.kind === FindingKind.LOCK_HELD_OPEN) {
    const acquire = acquireOf(f.evidence);
    if (acquire !== undefined && acquire > 0 && acquire <= f.tsNs) { from = acquire; anchor = acquire; }
  } else if (ep) {
    const start = ep.acquireTsNs > 0 ? ep.acquireTsNs - ep.lockWaitNs : ep.releaseTsNs;
    if (ep.acquireTsNs > 0) anchor = ep.acquireTsNs;
    from = Math.min(from, start);
    to = Math.max(to, ep.releaseTsNs);
  }
  from = Math.max(0, from - EXPLAIN_LIMITS.beforeNs);
  return { keepFromNs: Math.max(0, from - EXPLAIN_LIMITS.leadInNs), fromNs: from, toNs: to + EXPLAIN_LIMITS.afterNs, anchorNs: anchor };
}

function acquireOf(evidence: unknown): number | undefined {
  let ev = evidence;
  if (typeof ev === 'string') { try { ev = JSON.parse(ev); } catch { return undefined; } }
  const v = ev && typeof ev === 'object' ? (ev as Record<string, unknown>).acquireTsNs : undefined;
  return typeof v === 'number' || typeof v === 'string' ? Number(v) : undefined;
}

/** An event of the device with its sequence number (per host and boot). */
export interface SeqEvent { seq: number; event: Event }

export const bySeqTime = (a: SeqEvent, b: SeqEvent): number => Number(a.event.tsNs ?? 0) - Number(b.event.tsNs ?? 0) || a.seq - b.seq;

/** The events of one device a finding keeps: ts in [keepFromNs, toNs], the newest maxEvents, in (ts, seq) order (the
 * store's copy keeps the same). Duplicates by seq are dropped. `capped`: the cap was reached (older events may have
 * been left out). */
export function keepEvents(events: Iterable<SeqEvent>, span: FindingSpan, maxEvents: number = EXPLAIN_LIMITS.maxEvents):
  { events: SeqEvent[]; capped: boolean } {
  const bySeq = new Map<number, SeqEvent>();
  for (const e of events) {
    const ts = Number(e.event.tsNs ?? 0);
    if (ts >= span.keepFromNs && ts <= span.toNs) bySeq.set(e.seq, e);
  }
  const all = [...bySeq.values()].sort(bySeqTime);
  return { events: all.length > maxEvents ? all.slice(all.length - maxEvents) : all, capped: all.length >= maxEvents };
}

/** The kernel stack ids an explanation of these events names (Event.stack_id; docs/identity-and-stacks.md): the
 * events', the episode's acquire stack and the finding's evidence `stackId`. 0 (no stack) is not an id. */
export function stackIdsOf(events: Iterable<SeqEvent>, episode: Pick<Episode, 'acquireStackId'> | null, f: Pick<Finding, 'evidence'>): number[] {
  const ids = new Set<number>();
  const add = (v: unknown): void => { const n = Number(v ?? 0); if (Number.isFinite(n) && n > 0) ids.add(n); };
  for (const e of events) add(e.event.stackId);
  add(episode?.acquireStackId);
  let ev: unknown = f.evidence;
  if (typeof ev === 'string') { try { ev = JSON.parse(ev); } catch { ev = undefined; } }
  if (ev && typeof ev === 'object') add((ev as Record<string, unknown>).stackId);
  return [...ids].sort((a, b) => a - b);
}
