// The input of an explanation from a trace's batches: the finding's host facts and the device's events in the window
// the store would keep (explain.ts keepEvents). Batches are taken one at a time (a trace is streamed). Pure.
import type { Capability, Episode, EventBatch, Finding } from '../core/model.js';
import { findingSpan, keepEvents, stackIdsOf, type FindingSpan, type SeqEvent } from '../core/finding-window.js';
import type { ExplainInput } from './explain.js';

export class ExplainWindow {
  private readonly span: FindingSpan;
  private kernelRelease: string;
  private capabilities: Capability[] = [];
  private readonly events: SeqEvent[] = [];
  /** The boot's kernel stack table as its batches sent it (EventBatch.stacks: each id once per agent run). */
  private readonly stacks = new Map<number, string[]>();

  constructor(readonly finding: Finding, readonly episode: Episode | null) {
    this.span = findingSpan(finding, episode);
    this.kernelRelease = finding.kernelRelease;
  }

  /** A batch of the trace, in input order. */
  add(b: EventBatch): void {
    const f = this.finding, h = b.host;
    if ((h?.hostname ?? '') !== f.hostname || (h?.bootId ?? '') !== f.bootId) return;
    if (h?.kernelRelease) this.kernelRelease = h.kernelRelease;
    if (h?.capabilities && h.capabilities.length > 0) this.capabilities = [...h.capabilities];
    for (const k of b.stacks ?? []) {
      const id = Number(k.id ?? 0);
      if (id > 0 && k.frames && k.frames.length > 0) this.stacks.set(id, [...k.frames]);
    }
    const first = Number(b.firstSeq ?? 0);
    const list = b.events ?? [];
    for (let i = 0; i < list.length; i++) {
      const e = list[i]!;
      if (e.device !== f.device) continue;
      const ts = Number(e.tsNs ?? 0);
      if (ts >= this.span.keepFromNs && ts <= this.span.toNs) this.events.push({ seq: first + i, event: e });
    }
  }

  input(source: string): ExplainInput {
    const f = this.finding;
    const kept = keepEvents(this.events, this.span);
    const stacks = new Map<number, string[]>();
    for (const id of stackIdsOf(kept.events, this.episode, f)) { const frames = this.stacks.get(id); if (frames) stacks.set(id, frames); }
    return { finding: f, episode: this.episode,
      host: { hostname: f.hostname, bootId: f.bootId, kernelRelease: this.kernelRelease, capabilities: this.capabilities },
      events: kept.events, capped: kept.capped, source, stacks };
  }
}

/** The same over batches in memory. */
export function explainInputFromBatches(batches: Iterable<EventBatch>, finding: Finding, episode: Episode | null, source: string): ExplainInput {
  const w = new ExplainWindow(finding, episode);
  for (const b of batches) w.add(b);
  return w.input(source);
}

/** What a store keeps of a finding (services/store/finding-window.ts), as explain()'s input. */
export interface KeptWindow {
  finding: Finding; episode: Episode | null; events: SeqEvent[]; capped: boolean; kernelRelease: string; capabilities: Capability[];
  /** The kernel stacks the window names that the store has (kernel_stacks). */
  stacks: ReadonlyMap<number, readonly string[]>;
}

export function explainInputFromStore(w: KeptWindow, source: string): ExplainInput {
  const f = w.finding;
  return { finding: f, episode: w.episode, events: w.events, capped: w.capped, source, stacks: w.stacks,
    host: { hostname: f.hostname, bootId: f.bootId, kernelRelease: w.kernelRelease, capabilities: w.capabilities } };
}
