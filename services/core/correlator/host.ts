// Per-host (hostname, boot_id) stream handling: sequence numbers (duplicates, gaps), the collector's own
// `dropped` counts, and the reorder buffer that turns per-CPU-interleaved arrival into ts order within the
// lateness window. Pure.
import { Capability, bodyOf, zapsBeforeLock, type BodyKind, type Episode, type Event, type EventBatch, type Finding } from '../model.js';
import type { HostContext } from './context.js';
import { DeviceTracker, type DeviceState } from './device.js';
import { v1 } from '../model.js';
import type { CorrelatorOptions } from './options.js';
import type { CorrelatorStats } from './stats.js';

/** Tie-break for events of equal ts_ns (rare at ns resolution): the protocol's own order. */
const RANK: Record<BodyKind, number> = {
  deviceInfo: 0, barMmap: 1, trigger: 2, lockAcquire: 3, barFault: 4, zap: 5, dmabufRevoke: 6, moveNotify: 7,
  lockRelease: 8, barMunmap: 9,
};

function before(a: Event, b: Event): number {
  return a.tsNs! - b.tsNs! || RANK[bodyOf(a)!] - RANK[bodyOf(b)!] || (a.tid ?? 0) - (b.tid ?? 0) || (a.cpu ?? 0) - (b.cpu ?? 0);
}

interface LossWindow { from: number; to: number }

/** A host tracker as plain data (correlator checkpoints). */
export interface HostState {
  hostname: string; bootId: string; kernelRelease: string; hasDmabufRevoke: boolean;
  nextSeq: number; maxTs: number; releasedTo: number; losses: LossWindow[];
  pending: Record<string, unknown>[]; devices: DeviceState[];
}

export interface HostOutputs {
  episode(e: Episode): void;
  finding(f: Finding): void;
}

export class HostTracker implements HostContext {
  kernelRelease = '';
  hasDmabufRevoke = false;
  zapsBeforeLock = false;
  readonly devices = new Map<string, DeviceTracker>();
  /** Devices whose memory_lock is held for write right now (for LOCK_HELD_OPEN). */
  private readonly locked = new Set<DeviceTracker>();
  private nextSeq = -1;
  private maxTs = -Infinity;
  /** Everything at or before this ts has been processed. */
  private releasedTo = -Infinity;
  private buf: Event[] = [];
  private head = 0;
  private sorted = true;
  private losses: LossWindow[] = [];
  /** No open lock can be over the limit before this ts (LOCK_HELD_OPEN needs no check until then). */
  private openDeadline = Infinity;

  constructor(readonly hostname: string, readonly bootId: string, readonly opts: CorrelatorOptions,
    private readonly out: HostOutputs, private readonly stats: CorrelatorStats) {}

  toState(): HostState {
    return {
      hostname: this.hostname, bootId: this.bootId, kernelRelease: this.kernelRelease, hasDmabufRevoke: this.hasDmabufRevoke,
      nextSeq: this.nextSeq, maxTs: this.maxTs, releasedTo: this.releasedTo, losses: this.losses.map((w) => ({ ...w })),
      pending: this.buf.slice(this.head).map((ev) => v1.Event.toObject(ev as InstanceType<typeof v1.Event>)),
      devices: [...this.devices.values()].map((d) => d.toState()),
    };
  }

  static fromState(s: HostState, opts: CorrelatorOptions, out: HostOutputs, stats: CorrelatorStats): HostTracker {
    const h = new HostTracker(s.hostname, s.bootId, opts, out, stats);
    h.kernelRelease = s.kernelRelease;
    h.zapsBeforeLock = zapsBeforeLock(s.kernelRelease);
    h.hasDmabufRevoke = s.hasDmabufRevoke;
    h.nextSeq = s.nextSeq; h.maxTs = s.maxTs; h.releasedTo = s.releasedTo; h.losses = s.losses;
    h.buf = s.pending.map((o) => v1.Event.fromObject(o));
    h.sorted = false;
    for (const ds of s.devices) {
      const d = DeviceTracker.fromState(ds, h);
      h.devices.set(d.device, d);
      if (d.episode) h.locked.add(d);
    }
    h.openDeadline = -Infinity; // recomputed at the first check
    return h;
  }

  emitEpisode(e: Episode): void { this.out.episode(e); }
  emitFinding(f: Finding): void { this.out.finding(f); }

  lossTouches(from: number, to: number): boolean {
    for (const w of this.losses) if (w.to >= from && w.from < to) return true;
    return false;
  }

  ingest(batch: EventBatch): void {
    const host = batch.host;
    if (host?.kernelRelease && host.kernelRelease !== this.kernelRelease) {
      this.kernelRelease = host.kernelRelease;
      this.zapsBeforeLock = zapsBeforeLock(host.kernelRelease);
    }
    const caps = host?.capabilities;
    if (caps && caps.length > 0) this.hasDmabufRevoke = caps.includes(Capability.DMABUF_REVOKE);
    const events = batch.events ?? [];
    const first = batch.firstSeq ?? 0;
    let skip = 0;
    let lost = batch.dropped ?? 0;
    if (this.nextSeq >= 0) {
      if (first + events.length <= this.nextSeq) { // a replayed batch: everything already seen
        this.stats.duplicateEvents += events.length;
        return;
      }
      if (first < this.nextSeq) { skip = this.nextSeq - first; this.stats.duplicateEvents += skip; }
      else if (first > this.nextSeq) lost += first - this.nextSeq; // a gap in seq also means loss
    }
    this.nextSeq = first + events.length;
    if (lost > 0) {
      this.stats.lostEvents += lost;
      // Lost events were read between the last one seen and the next one: in ts they lie within the
      // lateness window around that boundary.
      let minTs = Infinity;
      for (let i = skip; i < events.length; i++) { const t = events[i]!.tsNs ?? 0; if (t < minTs) minTs = t; }
      if (minTs === Infinity) minTs = this.maxTs;
      this.addLoss(this.maxTs - this.opts.latenessNs, minTs + this.opts.latenessNs);
    }
    for (let i = skip; i < events.length; i++) this.push(events[i]!);
    this.release(this.maxTs - this.opts.latenessNs);
  }

  private addLoss(from: number, to: number): void {
    this.losses.push({ from, to });
    // Windows entirely before every open episode and the release point can no longer matter.
    if (this.losses.length > 64) this.pruneLosses();
  }

  private pruneLosses(): void {
    let oldest = this.releasedTo;
    for (const d of this.locked) if (d.episode && d.episode.acquireTs < oldest) oldest = d.episode.acquireTs;
    this.losses = this.losses.filter((w) => w.to >= oldest - this.opts.latenessNs);
  }

  private push(ev: Event): void {
    const ts = ev.tsNs;
    const kind = bodyOf(ev);
    if (typeof ts !== 'number' || !(ts >= 0) || !kind || !ev.device) { this.stats.invalidEvents++; return; }
    this.stats.events++;
    if (ts <= this.releasedTo) {
      // Later than the lateness window allows: its moment is already decided. Count it and treat it as lost.
      this.stats.lateEvents++;
      this.addLoss(ts - 1, ts);
      return;
    }
    const buf = this.buf;
    if (this.sorted && buf.length > this.head && before(buf[buf.length - 1]!, ev) > 0) this.sorted = false;
    buf.push(ev);
    if (ts > this.maxTs) this.maxTs = ts;
  }

  /** Process every buffered event with ts <= watermark, in ts order, then run the open-lock check. */
  release(watermark: number, now = watermark): void {
    let buf = this.buf;
    if (!this.sorted) {
      buf = buf.slice(this.head).sort(before);
      this.buf = buf;
      this.head = 0;
      this.sorted = true;
    }
    let i = this.head;
    const n = buf.length;
    while (i < n && buf[i]!.tsNs! <= watermark) {
      const ev = buf[i++]!;
      const ts = ev.tsNs!;
      if (ts > this.openDeadline) this.checkOpenLocks(ts);
      this.apply(ev, ts);
    }
    if (i === n) { this.buf = []; this.head = 0; }
    else if (i > 4096 && i > n >>> 1) { this.buf = buf.slice(i); this.head = 0; }
    else this.head = i;
    if (watermark > this.releasedTo) this.releasedTo = watermark;
    if (now > this.openDeadline) this.checkOpenLocks(now);
  }

  /** LOCK_HELD_OPEN checks at `now`; then the earliest time the next check can matter. */
  private checkOpenLocks(now: number): void {
    let next = Infinity;
    for (const d of this.locked) {
      d.checkOpen(now);
      const e = d.episode;
      if (e && !e.openFlagged) next = Math.min(next, e.acquireTs + this.opts.openLockLimitNs);
    }
    this.openDeadline = next;
  }

  private apply(ev: Event, ts: number): void {
    const name = ev.device!;
    let d = this.devices.get(name);
    if (!d) { d = new DeviceTracker(name, this); this.devices.set(name, d); }
    const before = d.episode;
    d.apply(ev, ts);
    const after = d.episode;
    if (after !== before) {
      if (after) {
        this.locked.add(d);
        const deadline = after.acquireTs + this.opts.openLockLimitNs;
        if (deadline < this.openDeadline) this.openDeadline = deadline;
      } else this.locked.delete(d);
    }
  }

  /** End of input: process everything; open-lock time advances to the newest event seen. */
  finish(): void {
    this.release(Infinity, this.maxTs);
    this.releasedTo = this.maxTs;
    for (const d of this.locked) {
      // Findings of an episode that never released: emit them, inconclusive (the episode is incomplete).
      const e = d.episode!;
      for (const f of e.held ?? []) { f.inconclusive = true; this.out.finding(f); }
      e.held = null;
    }
  }
}
