// Explaining one finding (issue 17, docs/explain.md): the device's events around it replayed through the correlator
// (the same rules and the same DeviceKnowledge, read after each event through Correlator.observe), giving the
// timeline with relative times, durations and tasks, the device state at each step with the event that established
// it, the rule and the kernel function it mirrors, what was unknown (evidence.unknown) and what to check next. Pure:
// the caller reads the events (a trace, or the store's finding_events) and renders the result (explain-table.ts).
import { Correlator, type CorrelatorOptions, type DeviceTracker } from '../core/correlator/index.js';
import { RULES } from '../core/correlator/findings.js';
import {
  Backing, FindingKind, Severity, TriggerKind, ZapTarget, bodyOf,
  type Capability, type Episode, type Event, type Finding,
} from '../core/model.js';
import { EXPLAIN_LIMITS, bySeqTime, findingSpan, type SeqEvent } from '../core/finding-window.js';
import { evidenceObject } from '../trace/json.js';
import { adviceFor } from './advice.js';
import { barsLabel, powerStateName, zapBars } from './timeline.js';
import { formatNs } from './table.js';

/** The host facts a replay needs (HostInfo of the trace; the store's host_health). */
export interface ExplainHost { hostname: string; bootId: string; kernelRelease: string; capabilities: Capability[] }

export interface ExplainInput {
  finding: Finding;
  /** The finding's episode (null: none, or not found). */
  episode: Episode | null;
  host: ExplainHost;
  /** The device's kept events (keepEvents), any order. */
  events: SeqEvent[];
  /** More events were in the window than kept (the oldest were left out). */
  capped: boolean;
  /** Where the events came from, e.g. "trace.jsonl" or "store". */
  source: string;
  opts?: Partial<CorrelatorOptions>;
  /** Kernel stacks of the host's boot by id (frames innermost first): EventBatch.stacks of a trace, the store's
   * kernel_stacks. An id the events name that is not here is shown as unknown. */
  stacks?: ReadonlyMap<number, readonly string[]>;
}

/** A piece of the device's state: its value, whether a kernel fact established it, which step did (null: none of the
 * replayed events did) and, when it is unknown, why. */
export interface StatePiece {
  value: boolean | number | string;
  known: boolean;
  since: { step: number; tsNs: number; relNs: number; event: string } | null;
  unknown?: string[];
}

export const STATE_PIECES = ['lock', 'memoryEnabled', 'memoryBit', 'lowPower', 'revoked', 'permanentRevoke', 'open', 'mappings'] as const;
export type StatePieceName = typeof STATE_PIECES[number];
export type DeviceStateView = Record<StatePieceName, StatePiece>;

export interface ExplainStep {
  step: number;
  seq: number;
  tsNs: number;
  /** ts − the anchor (the episode's acquire, or the finding). */
  relNs: number;
  /** The event's own duration (zap, revoke, move_notify, power transition, reset), the lock wait of an acquire, the
   * hold of a release; null when it has none. */
  durationNs: number | null;
  pid: number; tid: number; comm: string;
  /** The event body (lockAcquire, zap, …) and what it was, in kernel words. */
  event: string;
  what: string;
  /** Inside the finding's episode. */
  inEpisode: boolean;
  /** The step the finding was made at. */
  finding: boolean;
  /** The kernel stack taken at the event's hit (Event.stack_id; frames in Explanation.stacks); null: none. */
  stackId: number | null;
  /** Pieces of state this event changed (value or knowledge). */
  changed: StatePieceName[];
  state: DeviceStateView;
}

export interface Explanation {
  finding: {
    findingId: string; kind: string; severity: string; inconclusive: boolean; hostname: string; bootId: string; device: string;
    driver: string; kernelRelease: string; episodeId: string; tsNs: number;
  };
  /** What it means, in plain language. */
  reason: string;
  rule: { id: string; mirrors: string };
  evidence: Record<string, unknown>;
  /** For an inconclusive finding: which piece was unknown and why (evidence.unknown). */
  unknown: string[];
  episode: {
    episodeId: string; trigger: string; task: { pid: number; comm: string }; acquireRelNs: number | null; releaseRelNs: number;
    lockWaitNs: number; holdNs: number; revokeNs: number; complete: boolean; triggerRet: number;
    /** The LockAcquire's kernel stack (frames in stacks); null: none. */
    acquireStackId: number | null;
  } | null;
  window: {
    fromNs: number; toNs: number; anchorNs: number; keepFromNs: number;
    /** Events replayed (kept), shown (in [fromNs, toNs]), and whether the cap left older ones out. */
    replayed: number; shown: number; capped: boolean; maxEvents: number; source: string;
  };
  /** The replay of the kept events made this same finding (same id, severity and certainty): the state shown is the
   * one the rule saw. False when the facts it rests on are older than the kept events (the cap, the lead-in), or lie on
   * another device (a hot reset's other devices) or in lost events. */
  reproduced: boolean;
  timeline: ExplainStep[];
  /** The kernel stacks the timeline's steps, the episode's acquire and the evidence name, by id (decimal): frames
   * innermost first, or null when the frames never came (the batch carrying them was lost, or the store has none). */
  stacks: Record<string, string[] | null>;
  /** The device state the rule judged: before the finding's event, or at the finding's moment when no event is at it
   * (LOCK_HELD_OPEN, SLOW_REVOKE). */
  stateAtFinding: { at: string; state: DeviceStateView } | null;
  next: string[];
}

/** Why a finding is inconclusive when loss made it so (correlator/device.ts markInconclusive). */
const LOSS_REASONS = new Set(['episode: touched by lost events', 'moment: touched by lost events']);

const kindName = (k: number): string => FindingKind[k] ?? String(k);

export function explain(input: ExplainInput): Explanation {
  const { finding: f, episode: ep, host } = input;
  const span = findingSpan(f, ep);
  const kept = [...input.events].sort(bySeqTime);
  const ev = evidenceObject(f.evidence);
  const ruleId = typeof ev.rule === 'string' ? ev.rule : '';
  const known = Object.values(RULES).find((r) => r.id === ruleId);
  const mirrors = typeof ev.mirrors === 'string' ? ev.mirrors : known?.mirrors ?? '';

  // Replay: one batch of the kept events, host time carried to the window's end (LOCK_HELD_OPEN needs it).
  const index = new Map<Event, number>(kept.map((k, i) => [k.event, i]));
  const states: { i: number; state: DeviceStateView }[] = [];
  const labels = new Map<number, string>();
  const since = new Map<StatePieceName, StatePiece['since']>();
  let prev: DeviceStateView | null = null;
  const correlator = new Correlator(input.opts);
  correlator.observe((d: DeviceTracker, e: Event, ts: number) => {
    const i = index.get(e);
    if (i === undefined || d.device !== f.device) return;
    const now = readState(d);
    // an acquire names the trigger whose state change it made (docs/rules.md §3: changes take effect at acquire)
    const trig = e.lockAcquire && d.episode ? d.episode.trigger : TriggerKind.TRIGGER_UNSPECIFIED;
    const label = describe(e) + (trig !== TriggerKind.TRIGGER_UNSPECIFIED ? ` for ${triggerName(trig)}` : '');
    labels.set(i, label);
    for (const name of STATE_PIECES) {
      const p = now[name], q = prev?.[name];
      if (!q || q.value !== p.value || q.known !== p.known) {
        if (q || p.known) since.set(name, { step: i, tsNs: ts, relNs: ts - span.anchorNs, event: label });
      }
      p.since = since.get(name) ?? null;
    }
    states.push({ i, state: now });
    prev = now;
  });
  const replayHost = { hostname: host.hostname, bootId: host.bootId, kernelRelease: host.kernelRelease, capabilities: host.capabilities };
  correlator.ingest({ host: replayHost, firstSeq: 0, dropped: 0, events: kept.map((k) => k.event) });
  // then the window's end as a heartbeat (a batch's own clock counts only within the lateness of its newest event)
  correlator.ingest({ host: replayHost, firstSeq: kept.length, dropped: 0, nowNs: span.toNs, events: [] });
  correlator.finish();
  // the same finding: same id (kind, device, episode, ts), severity and certainty. The kept events carry no loss (the
  // host's sequence gaps are not kept with a device's events): a finding that loss alone made inconclusive replays
  // certain, and counts as the same.
  const unknownOf = (g: Finding): unknown[] => { const u = evidenceObject(g.evidence).unknown; return Array.isArray(u) ? u : []; };
  const byLossOnly = f.inconclusive && unknownOf(f).length > 0 && unknownOf(f).every((u) => LOSS_REASONS.has(String(u)));
  const reproduced = correlator.takeFindings().some((g) => g.findingId === f.findingId && g.severity === f.severity
    && (g.inconclusive === f.inconclusive || (byLossOnly && !g.inconclusive)));

  const stateOf = new Map(states.map((s) => [s.i, s.state]));
  const inEpisode = (ts: number): boolean => !!ep && f.episodeId !== '' && ts <= ep.releaseTsNs
    && ts >= (ep.acquireTsNs > 0 ? ep.acquireTsNs : ep.releaseTsNs);
  // the finding's step: the last event at or before its ts (the fault, zap, revoke or release it was made at)
  let findingStep = -1;
  for (let i = 0; i < kept.length; i++) if (Number(kept[i]!.event.tsNs ?? 0) <= f.tsNs && stateOf.has(i)) findingStep = i;
  const timeline: ExplainStep[] = [];
  let acquireTs: number | null = null;
  for (let i = 0; i < kept.length; i++) {
    const { seq, event: e } = kept[i]!;
    const ts = Number(e.tsNs ?? 0);
    const state = stateOf.get(i);
    if (e.lockAcquire) acquireTs = ts;
    if (ts >= span.fromNs && ts <= span.toNs && state) {
      const changed = STATE_PIECES.filter((n) => state[n].since?.step === i);
      timeline.push({
        step: i, seq, tsNs: ts, relNs: ts - span.anchorNs, durationNs: durationOf(e, ts, acquireTs), pid: e.pid ?? 0, tid: e.tid ?? 0,
        comm: e.comm ?? '', event: bodyOf(e) ?? 'unknown', what: labels.get(i) ?? describe(e), inEpisode: inEpisode(ts), finding: i === findingStep,
        stackId: stackIdOrNull(e.stackId), changed, state,
      });
    }
    if (e.lockRelease) acquireTs = null;
  }
  let stateAtFinding: Explanation['stateAtFinding'] = null;
  if (findingStep >= 0) {
    const atEvent = Number(kept[findingStep]!.event.tsNs ?? 0) === f.tsNs;
    const before = [...states].reverse().find((s) => s.i < findingStep);
    const state = atEvent ? before?.state : stateOf.get(findingStep);
    if (state) stateAtFinding = { at: atEvent ? `before step ${findingStep} (${labels.get(findingStep) ?? ''})` : `after step ${findingStep}`, state };
  }
  const advice = adviceFor(f.kind);
  return {
    finding: {
      findingId: f.findingId, kind: kindName(f.kind), severity: Severity[f.severity] ?? String(f.severity), inconclusive: f.inconclusive,
      hostname: f.hostname, bootId: f.bootId, device: f.device, driver: f.driver, kernelRelease: f.kernelRelease, episodeId: f.episodeId,
      tsNs: f.tsNs,
    },
    reason: advice.reason,
    rule: { id: ruleId, mirrors },
    evidence: ev,
    unknown: Array.isArray(ev.unknown) ? ev.unknown.map(String) : [],
    episode: ep ? {
      episodeId: ep.episodeId, trigger: TriggerKind[ep.trigger] ?? String(ep.trigger), task: { pid: ep.pid, comm: ep.comm },
      acquireRelNs: ep.acquireTsNs > 0 ? ep.acquireTsNs - span.anchorNs : null, releaseRelNs: ep.releaseTsNs - span.anchorNs,
      lockWaitNs: ep.lockWaitNs, holdNs: ep.holdNs, revokeNs: ep.revokeNs, complete: ep.complete, triggerRet: ep.triggerRet,
      acquireStackId: stackIdOrNull(ep.acquireStackId),
    } : null,
    window: {
      fromNs: span.fromNs, toNs: span.toNs, anchorNs: span.anchorNs, keepFromNs: span.keepFromNs, replayed: kept.length,
      shown: timeline.length, capped: input.capped, maxEvents: EXPLAIN_LIMITS.maxEvents, source: input.source,
    },
    reproduced,
    timeline,
    stacks: stacksNamed(timeline, ep, ev, input.stacks),
    stateAtFinding,
    next: advice.next,
  };
}

// ---------------------------------------------------------------- kernel stacks

function stackIdOrNull(v: unknown): number | null {
  const n = Number(v ?? 0);
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** The stacks the explanation names, in the order first named: the timeline's, then the acquire's and the evidence's. */
function stacksNamed(timeline: readonly ExplainStep[], ep: Episode | null, ev: Record<string, unknown>,
  known: ReadonlyMap<number, readonly string[]> | undefined): Record<string, string[] | null> {
  const out: Record<string, string[] | null> = {};
  const ids = [...timeline.map((s) => s.stackId), stackIdOrNull(ep?.acquireStackId), stackIdOrNull(ev.stackId)];
  for (const id of ids) {
    if (id === null || String(id) in out) continue;
    const frames = known?.get(id);
    out[String(id)] = frames && frames.length > 0 ? [...frames] : null;
  }
  return out;
}

// ---------------------------------------------------------------- the device state as the correlator knows it

function piece(value: StatePiece['value'], known: boolean, unknown: readonly string[] = []): StatePiece {
  return unknown.length > 0 && !known ? { value, known, since: null, unknown: [...unknown] } : { value, known, since: null };
}

/** What the correlator knows of the device right now (docs/rules.md §2). */
function readState(d: DeviceTracker): DeviceStateView {
  const k = d.k;
  const mem = k.memoryEnabled();
  const rev = k.revokedJudged();
  const perm = k.permanentJudged();
  const open = k.openJudged();
  const e = d.episode;
  const lock = !d.lockKnown ? 'unknown' : e ? `held by tid ${e.tid}` : 'free';
  const live = d.mappings.toState().live;
  let device = 0, populated = 0, dmabuf = 0;
  for (const [, m] of live) {
    if (m.backing === Backing.DMABUF) dmabuf++;
    else { device++; if (m.populated) populated++; }
  }
  const mappings = `${device} device-fd (${populated} populated), ${dmabuf} DMABUF`;
  return {
    lock: piece(lock, d.lockKnown, d.lockKnown ? [] : ['lock: no LockAcquire or LockRelease seen yet']),
    memoryEnabled: piece(mem.value, mem.known, mem.unknown),
    memoryBit: piece(k.memBit, k.memBitKnown, ['PCI_COMMAND memory bit: no kernel fact']),
    lowPower: piece(k.lowPower, k.lowPowerKnown, ['power state: no kernel fact']),
    revoked: piece(rev.value, rev.known, rev.unknown),
    permanentRevoke: piece(perm.value, perm.known, perm.unknown),
    open: piece(open.value, open.known, open.unknown),
    mappings: piece(mappings, d.mappings.known, ['mappings: no DeviceInfo or snapshot for the device in the kept events']),
  };
}

// ---------------------------------------------------------------- events in kernel words

function durationOf(e: Event, ts: number, acquireTs: number | null): number | null {
  if (e.zap) return Number(e.zap.durationNs ?? 0);
  if (e.dmabufRevoke) return Number(e.dmabufRevoke.durationNs ?? 0);
  if (e.moveNotify) return Number(e.moveNotify.durationNs ?? 0);
  if (e.powerTransition) return Number(e.powerTransition.durationNs ?? 0);
  if (e.resetFunction) return Number(e.resetFunction.durationNs ?? 0);
  if (e.lockAcquire) return Number(e.lockAcquire.waitNs ?? 0);
  if (e.lockRelease && acquireTs !== null) return ts - acquireTs;
  return null;
}

const triggerName = (k: number | null | undefined): string => TriggerKind[k ?? 0] ?? String(k);
const yesNo = (v: boolean | null | undefined, name: string): string | null => (v == null ? null : `${name}=${v ? 'yes' : 'no'}`);

/** One line for an event, naming the kernel function it was seen at. */
export function describe(e: Event): string {
  switch (bodyOf(e)) {
    case 'deviceInfo': {
      const i = e.deviceInfo!;
      const parts = [`driver=${i.driver ?? ''}`, yesNo(i.memoryEnabled, 'memory_enabled'),
        i.powerState != null ? `power=${powerStateName(i.powerState)}` : null, yesNo(i.revoked, 'revoked'),
        i.openCount != null ? `open_count=${i.openCount}` : null, yesNo(i.zapBarsOnRevoke, 'zap_bars_on_revoke'),
        i.dmabufBarMmap ? 'dmabuf_bar_mmap' : null, yesNo(i.noCommandMemory, 'no_command_memory')];
      return `DeviceInfo ${parts.filter((p) => p !== null).join(' ')}`;
    }
    case 'lockAcquire': return `down_write(memory_lock) acquired (waited ${formatNs(Number(e.lockAcquire!.waitNs ?? 0))})`;
    case 'lockRelease': return 'up_write(memory_lock)';
    case 'zap': {
      const z = e.zap!;
      const target = z.target === ZapTarget.DMABUF ? 'DMABUF file mapping' : 'vdev inode';
      const vmas = z.hadVmas == null ? '' : z.hadVmas ? ', had VMAs' : ', no VMAs';
      return `zap ${target} ${barsLabel(zapBars(Number(z.start ?? 0), Number(z.length ?? 0)))} (unmap_mapping_range${vmas})`;
    }
    case 'dmabufRevoke': {
      const r = e.dmabufRevoke!;
      const vmas = r.deviceHasVmas == null ? '' : `, device_has_vmas=${r.deviceHasVmas ? 'yes' : 'no'}`;
      return `vfio_pci_dma_buf_move(revoked=${r.revoked ? 'true' : 'false'}) ${r.dmabufCount ?? 0} DMABUF(s)${vmas}`;
    }
    case 'moveNotify': return `dma_buf_move_notify DMABUF #${String(e.moveNotify!.dmabufId ?? 0)}, ${e.moveNotify!.importerCount ?? 0} importer(s)`;
    case 'barMmap': {
      const m = e.barMmap!;
      return `mmap BAR${m.bar ?? 0} ${Backing[m.backing ?? 0] ?? '?'} mapping #${String(m.mappingId ?? 0)}${m.snapshot ? ' (found at collector start)' : ''}`;
    }
    case 'barMunmap': return `munmap BAR${e.barMunmap!.bar ?? 0} mapping #${String(e.barMunmap!.mappingId ?? 0)}`;
    case 'barFault': {
      const b = e.barFault!;
      return `fault BAR${b.bar ?? 0} mapping #${String(b.mappingId ?? 0)}: ${b.ok ? 'PTEs installed' : 'refused (SIGBUS)'}`;
    }
    case 'trigger': {
      const t = e.trigger!;
      return `trigger ${triggerName(t.kind)}${t.groupId ? ` (group ${String(t.groupId)})` : ''}`;
    }
    case 'triggerEnd': return `${triggerName(e.triggerEnd!.kind)} returned ${e.triggerEnd!.ret ?? 0}`;
    case 'powerTransition': {
      const p = e.powerTransition!;
      return `vfio_pci_set_power_state ${powerStateName(p.from ?? 0)} → ${powerStateName(p.to ?? 0)}`;
    }
    case 'resetFunction': return `pci_try_reset_function / pci_reset_bus returned ${e.resetFunction!.ret ?? 0}`;
    default: return 'an event of a kind this version does not know';
  }
}
