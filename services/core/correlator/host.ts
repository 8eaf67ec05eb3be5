// Per-host (hostname, boot_id) stream handling: sequence numbers (duplicates, gaps), the collector's own
// `dropped` counts, and the reorder buffer that turns per-CPU-interleaved arrival into ts order within the
// lateness window. Pure.
import {
  Capability, TriggerKind, bodyFieldOf, zapsBeforeLock, zapsUnderLock, type Cgroup, type Episode, type Event, type EventBatch, type Finding, type HostInfo,
} from '../model.js';
import { v1 } from '../model.js';
import { bodyOfField, NameTable, WireEvent, type BatchScan } from '../wire.js';
import type { HostContext } from './context.js';
import { DeviceTracker, type DeviceState } from './device.js';
import type { OpenEpisode } from './episode.js';
import { markInconclusive } from './findings.js';
import type { CorrelatorOptions } from './options.js';
import { ReorderBuffer, type DeviceRef } from './reorder.js';
import { TrackerList } from './tracker-list.js';
import type { CorrelatorStats } from './stats.js';
import { workloadOf } from '../workload.js';
import type { WorkloadIdentity } from './context.js';

interface LossWindow { from: number; to: number }

/** A device name of this host as the reorder buffer holds it: looked up once when its event arrives, its tracker
 * attached when its first event is applied (trackers exist only for devices with an applied event). */
interface DeviceSlot extends DeviceRef { tracker: DeviceTracker | null }

/** A host tracker as plain data (correlator checkpoints). */
export interface HostState {
  hostname: string; bootId: string; kernelRelease: string; hasDmabufRevoke: boolean; hasTriggerEnd: boolean;
  nextSeq: number; maxTs: number; nowNs: number; releasedTo: number; losses: LossWindow[]; forgetAt: number[];
  pending: Record<string, unknown>[]; devices: DeviceState[];
  /** The boot's cgroup table (EventBatch.cgroups): id, path, pod name. Absent in checkpoints of older versions. */
  cgroups?: [number, string, string][];
}

export interface HostOutputs {
  episode(e: Episode): void;
  finding(f: Finding): void;
  /** Called after each event is applied to its device (explain replays a finding's events and reads the state). */
  applied?(device: DeviceTracker, ev: Event, ts: number): void;
}

export class HostTracker implements HostContext {
  kernelRelease = '';
  hasDmabufRevoke = false;
  hasTriggerEnd = false;
  zapsBeforeLock = false;
  zapsUnderLock = false;
  readonly devices = new Map<string, DeviceTracker>();
  /** Devices whose memory_lock is held for write right now (for LOCK_HELD_OPEN). */
  private readonly locked = new TrackerList<DeviceTracker>();
  private nextSeq = -1;
  private maxTs = -Infinity;
  /** Newest EventBatch.now_ns (the collector's clock; heartbeats advance it when the host is idle). */
  private nowNs = -Infinity;
  /** Starts of loss windows not yet reached in ts order: there every device's knowledge is reset. */
  private forgetAt: number[] = [];
  /** Devices with released episodes waiting for their TriggerEnd. */
  private readonly closing = new TrackerList<DeviceTracker>();
  /** Everything at or before this ts has been processed. */
  private releasedTo = -Infinity;
  private readonly buf: ReorderBuffer<DeviceSlot>;
  /** Device names read from bytes, interned. */
  private readonly names = new NameTable();
  /** Every device name seen, with its tracker once it has one. */
  private readonly slots = new Map<string, DeviceSlot>();
  private lastSlot: DeviceSlot | null = null;
  private losses: LossWindow[] = [];
  /** The HostInfo the last batch's facts were taken from. */
  private lastHost: HostInfo | null | undefined = undefined;
  /** No open lock can be over the limit before this ts (LOCK_HELD_OPEN needs no check until then). */
  private openDeadline = Infinity;
  /** The boot's cgroups by id (EventBatch.cgroups), with what their paths name. */
  private readonly cgroups = new Map<number, { path: string; podName: string; identity: WorkloadIdentity }>();

  /** `wire`: the event the reorder buffer releases events from bytes into (shared by a correlator's hosts). */
  constructor(readonly hostname: string, readonly bootId: string, readonly opts: CorrelatorOptions,
    private readonly out: HostOutputs, private readonly stats: CorrelatorStats, wire: WireEvent = new WireEvent()) {
    this.buf = new ReorderBuffer<DeviceSlot>(wire);
  }

  toState(): HostState {
    return {
      hostname: this.hostname, bootId: this.bootId, kernelRelease: this.kernelRelease, hasDmabufRevoke: this.hasDmabufRevoke,
      hasTriggerEnd: this.hasTriggerEnd, nextSeq: this.nextSeq, maxTs: this.maxTs, nowNs: this.nowNs, releasedTo: this.releasedTo,
      losses: this.losses.map((w) => ({ ...w })), forgetAt: [...this.forgetAt],
      pending: this.buf.pending((frame, off, end) => v1.Event.decode(frame.subarray(off, end)))
        .map((ev) => v1.Event.toObject(ev as InstanceType<typeof v1.Event>)),
      devices: [...this.devices.values()].map((d) => d.toState()),
      cgroups: [...this.cgroups].map(([id, c]) => [id, c.path, c.podName]),
    };
  }

  static fromState(s: HostState, opts: CorrelatorOptions, out: HostOutputs, stats: CorrelatorStats, wire?: WireEvent): HostTracker {
    const h = new HostTracker(s.hostname, s.bootId, opts, out, stats, wire);
    h.setRelease(s.kernelRelease);
    h.hasDmabufRevoke = s.hasDmabufRevoke; h.hasTriggerEnd = s.hasTriggerEnd;
    h.nextSeq = s.nextSeq; h.maxTs = s.maxTs; h.nowNs = s.nowNs; h.releasedTo = s.releasedTo; h.losses = s.losses;
    h.forgetAt = s.forgetAt;
    h.noteCgroups((s.cgroups ?? []).map(([id, path, podName]) => ({ id, path, podName })));
    for (const o of s.pending) h.push(v1.Event.fromObject(o), false);
    for (const ds of s.devices) {
      const d = DeviceTracker.fromState(ds, h, h.devices.size);
      h.devices.set(d.device, d);
      if (d.episode) h.locked.add(d);
      if (d.closing) h.closing.add(d);
    }
    h.openDeadline = -Infinity; // recomputed at the first check
    return h;
  }

  emitEpisode(e: Episode): void { this.out.episode(e); }

  /** EventBatch.cgroups: the boot's cgroup table grows (an entry sent again replaces the old one). */
  noteCgroups(entries: readonly Cgroup[] | null | undefined): void {
    if (!entries) return;
    for (const c of entries) {
      const id = Number(c.id ?? 0), path = c.path ?? '';
      if (!id || !path) continue;
      const w = workloadOf(path);
      const podName = c.podName ?? '';
      this.cgroups.set(id, { path, podName, identity: { vm: w.vm ?? '', podUid: w.podUid ?? '', podName, containerId: w.containerId ?? '' } });
    }
  }

  workload(cgroupId: number): WorkloadIdentity | undefined { return cgroupId ? this.cgroups.get(cgroupId)?.identity : undefined; }
  emitFinding(f: Finding): void { this.out.finding(f); }

  private setRelease(release: string): void {
    this.kernelRelease = release;
    this.zapsBeforeLock = zapsBeforeLock(release);
    this.zapsUnderLock = zapsUnderLock(release);
  }

  hotResetHeldBy(tid: number, except: string): OpenEpisode | undefined {
    const locked = this.locked;
    if (locked.size === 0) return undefined; // the common case: no other write section open on the host
    for (let k = 0; k < locked.end; k++) {
      const d = locked.at(k), e = d?.episode;
      if (e && e.tid === tid && e.trigger === TriggerKind.HOT_RESET && d!.device !== except) return e;
    }
    return undefined;
  }

  lossTouches(from: number, to: number): boolean {
    for (const w of this.losses) if (w.to >= from && w.from < to) return true;
    return false;
  }

  ingest(batch: EventBatch): void {
    this.noteCgroups(batch.cgroups);
    const events = batch.events ?? [];
    const skip = this.header(batch.host, batch.firstSeq ?? 0, batch.dropped ?? 0, batch.nowNs ?? 0, events.length, (i) => events[i]!.tsNs ?? 0);
    if (skip < 0) return;
    for (let i = skip; i < events.length; i++) this.push(events[i]!, true);
    this.release(this.hostTime - this.opts.latenessNs);
  }

  /** Host time: the newest event ts or collector clock (now_ns) seen. */
  get lastTime(): number { return this.hostTime; }
  private get hostTime(): number { return this.nowNs > this.maxTs ? this.nowNs : this.maxTs; }

  /** The same batch as `ingest`, read from its bytes (see wire.ts): events stay bytes until released. */
  ingestScan(scan: BatchScan): void {
    if (scan.cgroups.length) this.noteCgroups(scan.cgroups);
    const skip = this.header(scan.host, scan.firstSeq, scan.dropped, scan.nowNs, scan.count, (i) => scan.ts[i]!);
    if (skip < 0) return;
    const frame = scan.frame;
    let slot: DeviceSlot | null = null; // the previous event's device (scan.devSame: the same bytes), when it was looked up
    for (let i = skip; i < scan.count; i++) {
      const ts = scan.ts[i]!;
      const devStart = scan.devStart[i]!, devEnd = scan.devEnd[i]!;
      if (!bodyOfField(scan.body[i]!) || devStart === devEnd || !(ts >= 0)) { this.stats.invalidEvents++; slot = null; continue; }
      if (slot === null || scan.devSame[i] === 0) slot = this.slot(this.names.get(frame, devStart, devEnd));
      if (this.admit(ts)) this.buf.pushScan(scan, i, slot);
    }
    this.release(this.hostTime - this.opts.latenessNs);
  }

  /** Host facts, seq accounting and loss of one batch; returns how many leading events are duplicates,
   * or -1 when the whole batch was seen before. */
  private header(host: HostInfo | null | undefined, first: number, dropped: number, nowNs: number, count: number,
    tsAt: (i: number) => number): number {
    if (host !== this.lastHost) { // the wire reader hands out one HostInfo object per distinct bytes: most batches skip this
      this.lastHost = host;
      if (host?.kernelRelease && host.kernelRelease !== this.kernelRelease) this.setRelease(host.kernelRelease);
      const caps = host?.capabilities;
      if (caps && caps.length > 0) {
        this.hasDmabufRevoke = caps.includes(Capability.DMABUF_REVOKE);
        this.hasTriggerEnd = caps.includes(Capability.TRIGGER_END);
      }
    }
    let skip = 0;
    let lost = dropped;
    if (this.nextSeq >= 0) {
      if (count > 0 && first + count <= this.nextSeq) { // a replayed batch: everything already seen
        this.stats.duplicateEvents += count;
        return -1;
      }
      if (first < this.nextSeq) { skip = Math.min(count, this.nextSeq - first); this.stats.duplicateEvents += skip; }
      else if (first > this.nextSeq) lost += first - this.nextSeq; // a gap in seq also means loss
    }
    if (first + count > this.nextSeq) this.nextSeq = first + count;
    if (lost > 0) {
      this.stats.lostEvents += lost;
      // Lost events were read between the last one seen and the next one: in ts they lie within the
      // lateness window around that boundary.
      let minTs = Infinity;
      for (let i = skip; i < count; i++) { const t = tsAt(i); if (t < minTs) minTs = t; }
      if (minTs === Infinity) minTs = Math.max(this.hostTime, nowNs);
      this.addLoss(this.hostTime - this.opts.latenessNs, minTs + this.opts.latenessNs);
    }
    // The batch's clock counts only after its loss was placed (the loss lies before this batch), and only when the
    // collector has caught up with what the kernel wrote: a heartbeat (no events), or a batch whose newest event lies
    // within the lateness of the clock. A collector reading its ring buffer seconds behind (the kernel lab's ftrace
    // under load: 6 s) cuts batches whose clock is past events it has not read yet; taking that clock would release
    // the window before they come, and every one of them would count as late, i.e. lost.
    if (nowNs > this.nowNs) {
      let newest = -Infinity;
      for (let i = skip; i < count; i++) { const t = tsAt(i); if (t > newest) newest = t; }
      if (count === 0 || nowNs - newest <= this.opts.latenessNs) this.nowNs = nowNs;
    }
    return skip;
  }

  private addLoss(from: number, to: number): void {
    this.losses.push({ from, to });
    // Lost events lie somewhere in (from, to] in ts order: what is known before `to` may be wrong after it, so every
    // device forgets at `to` (docs/rules.md §2); findings inside the window are inconclusive (lossTouches). A late
    // event's moment is already past: it resets at once (before the next event).
    const f = Math.max(to, this.releasedTo);
    const q = this.forgetAt;
    let i = q.length;
    while (i > 0 && q[i - 1]! > f) i--;
    q.splice(i, 0, f);
    // Windows entirely before every open episode and the release point can no longer matter.
    if (this.losses.length > 64) this.pruneLosses();
  }

  private pruneLosses(): void {
    let oldest = this.releasedTo;
    for (const d of this.locked) if (d.episode && d.episode.acquireTs < oldest) oldest = d.episode.acquireTs;
    this.losses = this.losses.filter((w) => w.to >= oldest - this.opts.latenessNs);
  }

  private push(ev: Event, count: boolean): void {
    const ts = ev.tsNs, device = ev.device;
    const field = bodyFieldOf(ev);
    if (typeof ts !== 'number' || !(ts >= 0) || field === 0 || !device) { this.stats.invalidEvents++; return; }
    if (!count || this.admit(ts)) this.buf.pushEvent(ev, ts, field, this.slot(device)); // !count: restored from a checkpoint
  }

  private slot(name: string): DeviceSlot {
    // most events name the device of the host's previous event (85% on a simulated fleet): a decoded name is a new
    // string each time, and comparing its bytes costs less than hashing it
    const last = this.lastSlot;
    if (last !== null && last.name === name) return last;
    let s = this.slots.get(name);
    if (s === undefined) { s = { name, tracker: null }; this.slots.set(name, s); }
    this.lastSlot = s;
    return s;
  }

  /** Count a valid event; false when it came later than the lateness window allows. */
  private admit(ts: number): boolean {
    this.stats.events++;
    if (ts <= this.releasedTo) {
      // Its moment is already decided. Count it and treat it as lost.
      this.stats.lateEvents++;
      this.addLoss(ts - 1, ts);
      return false;
    }
    if (ts > this.maxTs) this.maxTs = ts;
    return true;
  }

  /** Process every buffered event with ts <= watermark, in ts order, then run the open-lock check. */
  release(watermark: number, now = watermark): void {
    this.buf.release(watermark, this.applyInOrder);
    if (this.forgetAt.length > 0 && this.forgetAt[0]! <= watermark) this.forgetUpTo(watermark);
    if (watermark > this.releasedTo) this.releasedTo = watermark;
    if (now > this.openDeadline) this.checkOpenLocks(now);
    const closing = this.closing;
    if (closing.size > 0) {
      for (let k = 0; k < closing.end; k++) {
        const d = closing.at(k);
        if (d) { d.flushClosing(watermark); if (!d.closing) closing.delete(d); }
      }
    }
  }

  private readonly applyInOrder = (ev: Event, ts: number, slot: DeviceSlot, field: number): void => {
    if (this.forgetAt.length > 0 && this.forgetAt[0]! < ts) this.forgetUpTo(ts);
    if (ts > this.openDeadline) this.checkOpenLocks(ts);
    this.apply(ev, ts, slot, field);
  };

  /** Loss windows that begin before `ts`: every device of the host forgets what it knew. */
  private forgetUpTo(ts: number): void {
    const q = this.forgetAt;
    let at = -Infinity;
    while (q.length > 0 && q[0]! <= ts) at = q.shift()!;
    for (const d of this.devices.values()) d.forget(at);
  }

  /** LOCK_HELD_OPEN checks at `now`; then the earliest time the next check can matter. */
  private checkOpenLocks(now: number): void {
    let next = Infinity;
    for (const d of this.locked) {
      d.checkOpen(now);
      const e = d.episode;
      if (e && !e.openFlagged && !e.unobserved) next = Math.min(next, e.acquireTs + this.opts.openLockLimitNs);
    }
    this.openDeadline = next;
  }

  private apply(ev: Event, ts: number, slot: DeviceSlot, field: number): void {
    let d = slot.tracker;
    if (d === null) {
      const name = slot.name;
      d = this.devices.get(name) ?? null; // restored from a checkpoint
      if (d === null) { d = new DeviceTracker(name, this, this.devices.size); this.devices.set(name, d); }
      slot.tracker = d;
    }
    const before = d.episode;
    d.apply(ev, ts, field);
    this.out.applied?.(d, ev, ts);
    const after = d.episode;
    if (after !== before) {
      if (after) {
        this.locked.add(d);
        // An episode whose acquire was not seen has no LOCK_HELD_OPEN deadline.
        const deadline = after.unobserved ? Infinity : after.acquireTs + this.opts.openLockLimitNs;
        if (deadline < this.openDeadline) this.openDeadline = deadline;
      } else this.locked.delete(d);
    }
    if (d.closing) this.closing.add(d);
  }

  /** End of input: process everything; open-lock time advances to the newest event seen. */
  finish(): void {
    const last = this.hostTime;
    this.release(Infinity, last);
    this.releasedTo = last;
    for (const d of this.devices.values()) d.flushAllClosing();
    this.closing.clear();
    for (const d of this.locked) {
      // Findings of an episode that never released: emit them, inconclusive (the episode is incomplete).
      const e = d.episode!;
      for (const f of e.held ?? []) { markInconclusive(f, 'episode: no release seen by the end of the input'); this.out.finding(f); }
      e.held = null;
    }
  }

  /** Episodes still holding the lock (after finish(): open at the end of the input). */
  openEpisodes(): { device: string; episode: OpenEpisode }[] {
    const out: { device: string; episode: OpenEpisode }[] = [];
    // An episode that began unobserved (acquire ts 0) has no known hold time: it is not listed.
    for (const d of this.locked) if (d.episode && !d.episode.unobserved) out.push({ device: d.device, episode: d.episode });
    return out;
  }
}
