// The ground truth's judge: docs/rules.md §4 evaluated on the simulator's own kernel state. Values always come from
// the kernel model (host.ts, kernel.ts); what this file tracks is only what the collector's events have let a
// correlator *know* (rules §2): a premise that is known is the kernel's value, an unknown one takes the old default
// (D0, memory bit set, not a VF, DMABUFs unrevoked, device open) and makes the finding inconclusive. It never reads
// the events back, and it shares no code with the correlator, so a correlator that is wrong about the kernel, or
// about what it can know, disagrees with it. Called by HostSim for every event the collector delivers, in ts order
// per device.
//
// Where docs/rules.md, read literally, would make a certain finding of a correct kernel, the judge follows the
// kernel and says why:
// - a mapping in the collector's start snapshot is taken as populated, but that is an assumption: before 6.11 a
//   mapping no zap reached may simply not be on vma_list (never faulted, or zapped before the collector started);
// - a DMABUF made after a revoke is revoked only if memory is disabled then (vfio_pci_dmabuf_export(): priv->revoked =
//   !__vfio_pci_memory_enabled(vdev)): the device's earlier revoke says nothing about a mapping made later;
// - the first write section seen without a trigger may have had one before the collector started (or lost it), and
//   any path may change the power state or the memory bit: what facts said of memory before it no longer stands.
import { Backing, TriggerKind, VFIO_PCI_OFFSET_SHIFT } from '../../services/core/model.js';
import type { Era } from './eras.js';
import type { Device, Mapping } from './host.js';
import { REVOKING_TRIGGERS, ZAPPING_TRIGGERS, memoryEnabled } from './kernel.js';
import type { TruthEpisode, TruthFinding } from './truth.js';

const S = 1_000_000_000;
/** docs/rules.md defaults: LOCK_HELD_OPEN after 5 s, SLOW_REVOKE above 50 ms, triggers name episodes within 1 s. */
export const OPEN_LOCK_LIMIT_NS = 5 * S;
export const SLOW_REVOKE_LIMIT_NS = 50_000_000;
export const TRIGGER_ATTACH_NS = 1 * S;

const BAR_SPAN = 2 ** VFIO_PCI_OFFSET_SHIFT;

interface Pending { tid: number; kind: TriggerKind; groupId: number; ts: number; fact: boolean; stale: number }
interface PreZap { tid: number; ts: number; end: number; bars: number }

/** One write section as the collector lets a correlator see it. */
export interface Ep {
  tid: number; pid: number; comm: string;
  /** 0: the episode began before observation (collector start or loss inside the window). */
  acquireTs: number;
  trigger: TriggerKind | undefined;
  /** The trigger is a fact: seen inside the window, or announced on a host whose collector reports TriggerEnd. */
  triggerFact: boolean;
  groupId: number; stale: number; triggerRet: number;
  deviceZaps: number;
  /** Bitmask of BARs a DEVICE zap of the episode reached. */
  covered: number;
  /** The first DEVICE zap's range (start −1: none), then the others' starts and lengths in turn (null until a second). */
  zap0Start: number; zap0Length: number;
  zapRanges: number[] | null;
  revokedTrue: boolean;
  deviceHasVmas: boolean | undefined;
  revokeStart: number; revokeEnd: number;
  incomplete: boolean;
  intendedEmpty: number;
  /** Findings of the episode so far (null while none). */
  findings: TruthFinding[] | null;
  record: TruthEpisode | undefined;
}

/** What a correlator can know of one device (docs/rules.md §2). Kept on the device. */
export interface Knowledge {
  lock: boolean;
  memBit: boolean; lowPower: boolean; noCmd: boolean;
  /** __vfio_pci_memory_enabled() proven directly (ok or failed fault, unrevoke, DeviceInfo) since a piece last changed. */
  memFact: boolean;
  revoked: boolean; permanent: boolean; open: boolean;
  /** The mapping list is known (a DeviceInfo with its snapshot, since the last loss). */
  maps: boolean;
  /** A DeviceInfo was seen: the era (dmabuf_bar_mmap) and the static flags are known. */
  described: boolean;
  /** Why pieces are unknown: since the collector started, or since the host lost events. */
  since: string;
  /** Why the memory pieces are unknown when an open or a close made them so (else `since` says). */
  memSince: string | undefined;
  pending: Pending[];
  preZaps: PreZap[];
  ep: Ep | undefined;
  /** The last episode per task (its TriggerEnd gives trigger_ret): scenario devices only, which keep records. */
  lastEps: Ep[];
  /** A released episode object to reuse (devices without records). */
  spare: Ep | undefined;
  /** A DEVICE zap since which memory stayed disabled or the DMABUFs revoked, with no ok fault (REDUNDANT_ZAP). */
  mark: boolean;
  /** UNPAIRED_REVOKE was reported for the DMABUFs' current revoke (until they move again). */
  unpaired: boolean;
}

export function newKnowledge(): Knowledge {
  return { lock: false, memBit: false, lowPower: false, noCmd: false, memFact: false, revoked: false, permanent: false,
    open: false, maps: false, described: false, since: 'no kernel fact since the collector started', memSince: undefined, pending: [],
    preZaps: [], ep: undefined, lastEps: [], spare: undefined, mark: false, unpaired: false };
}

/** memView() codes: memory enabled known, disabled known, or unknown with the defaults' value. */
const ON = 0, OFF = 1, UNKNOWN_ON = 2, UNKNOWN_OFF = 3;

export interface JudgeHost {
  readonly era: Era;
  /** The host's collector reports TriggerEnd (a trigger named by acquire is then a fact). */
  readonly triggerEndFacts: boolean;
  /** HostInfo.kernel_release is >= 6.19 (without a DeviceInfo the series cannot be told apart). */
  readonly releaseAtLeast619: boolean;
  readonly devices: readonly Device[];
  addFinding(dev: Device, f: Omit<TruthFinding, 'hostname' | 'bootId' | 'kernelRelease' | 'device' | 'driver' | 'fault' | 'scenario'>): TruthFinding;
  addEpisode(dev: Device, e: Omit<TruthEpisode, 'hostname' | 'bootId' | 'device' | 'scenario'>): TruthEpisode;
}

export class Judge {
  /** Per task: the HOT_RESET episode it holds (an episode it opens meanwhile belongs to the same hot reset). */
  private readonly hotResets = new Map<number, Ep>();

  constructor(private readonly h: JudgeHost) {}

  // ---------------------------------------------------------------- knowledge

  /** __vfio_pci_memory_enabled() as the facts decide it (codes above). */
  private memView(d: Device): number {
    const k = d.k;
    const on = memoryEnabled(d);
    if (k.memFact) return on ? ON : OFF;
    if (k.lowPower && d.power >= 3) return OFF;
    const bit = k.memBit ? d.memBit : true, vf = k.noCmd ? d.noCmd : false;
    const cmdKnown = (k.noCmd && d.noCmd) || (k.memBit && d.memBit) || (k.memBit && k.noCmd);
    if (cmdKnown && !(bit || vf)) return OFF;
    const value = (k.lowPower ? d.power < 3 : true) && (bit || vf);
    if (k.lowPower && cmdKnown) return value ? ON : OFF;
    return value ? UNKNOWN_ON : UNKNOWN_OFF;
  }

  private memUnknown(d: Device): string[] {
    const k = d.k, out: string[] = [];
    const since = k.memSince ?? k.since;
    if (!k.lowPower) out.push(`power state: ${since}`);
    if (!k.memBit) out.push(`PCI_COMMAND memory bit: ${since}`);
    if (!k.noCmd) out.push('no_command_memory (a VF?): not read by the collector');
    return out;
  }

  private revokedValue(d: Device): boolean { return d.k.revoked ? d.revoked : false; }

  /** A piece of memory state changed: a direct fact about __vfio_pci_memory_enabled() no longer stands. */
  private memPieceChanged(d: Device): void { d.k.memFact = false; }

  /** After every event: the REDUNDANT_ZAP mark stands only while memory is known disabled or the DMABUFs known
   * revoked (under the defaults neither holds). */
  private settle(d: Device): void {
    const k = d.k;
    if (k.mark && this.memView(d) !== OFF && !(k.revoked && d.revoked)) k.mark = false;
  }

  /** Loss on the host (rules §2): every piece that can change is unknown again on every device; episodes and
   * waiting triggers it touches are incomplete. */
  lost(ts: number): void {
    for (const d of this.h.devices) {
      const k = d.k;
      k.lock = false; k.memBit = false; k.lowPower = false; k.memFact = false; k.revoked = false; k.permanent = false;
      k.open = false; k.maps = false; k.mark = false; k.unpaired = false;
      k.since = `no kernel fact since the host lost events at ts ${ts}`;
      k.memSince = undefined;
      for (const m of d.mappings.values()) { m.seen = false; m.obsPopulated = false; }
      // Waiting triggers are dropped: their TriggerEnd may be what was lost; so are pre-6.11 zaps waiting for an acquire.
      k.pending.length = 0;
      k.preZaps.length = 0;
      if (k.ep) {
        k.ep.incomplete = true;
        if (k.ep.record) k.ep.record.complete = false;
        if (k.ep.findings) for (const f of k.ep.findings) f.inconclusive = true;
      }
    }
  }

  // ---------------------------------------------------------------- collector facts

  /** DeviceInfo (with its mapping snapshot following): 'full' carries the state fields, 'basic' only the flags. */
  deviceInfo(d: Device, full: boolean): void {
    const k = d.k;
    k.described = true;
    k.maps = true;
    if (!full) return;
    k.noCmd = true; k.lowPower = true; k.memFact = true;
    // memory_enabled with power D0 and not a VF gives the bit itself.
    if (d.power < 3 && !d.noCmd) k.memBit = true;
    if (this.h.era.dmabufExport) {
      k.revoked = true;
      if (!d.revoked) k.permanent = true; // not revoked: not permanently revoked either
    }
    k.open = true;
    this.settle(d);
  }

  mapping(d: Device, m: Mapping, snapshot: boolean): void {
    m.seen = true;
    m.obsPopulated = snapshot; // a snapshot counts as populated: a running process mapped it (an assumption)
    m.populatedFact = false;
    // Its DMABUF (series): in a snapshot, made at a time not seen, so unknown (a DMABUF exported after the device's
    // last move need not be in the device's state) until the DMABUFs move or it faults; made now, revoked exactly
    // when memory is disabled (vfio_pci_dmabuf_export(): priv->revoked = !__vfio_pci_memory_enabled(vdev)).
    if (m.backing === Backing.DMABUF) {
      const v = this.memView(d);
      m.dmabufKnown = !snapshot && (v === ON || v === OFF);
    }
    d.k.open = true;
  }

  fault(d: Device, m: Mapping, ok: boolean, ts: number, buggy: boolean): void {
    const k = d.k;
    k.open = true;
    if (!ok) {
      // The fault handler refuses PTEs only with memory disabled (device-fd mapping) or the DMABUF revoked.
      if (m.seen && m.backing !== Backing.DMABUF) k.memFact = true;
      this.settle(d);
      return;
    }
    // Before the series every BAR mmap is a device-fd mapping: a fault proves one even where the collector did not
    // see it being made (after loss). In the series an unseen mapping's backing is unknown.
    if (!m.seen && !this.h.era.dmabufBarMmap) m.seen = true;
    // FAULT_WHILE_REVOKED: PTEs installed where MMIO must be unreachable (vfio_pci_mmap_huge_fault() checks
    // __vfio_pci_memory_enabled() under the read lock; a DMABUF fault checks priv->revoked).
    const v = this.memView(d);
    const memOff = v === OFF || v === UNKNOWN_OFF;
    if (!m.seen) {
      // Memory disabled and the DMABUFs revoked together rule out both backings; one of them alone leaves it open.
      const rev = this.revokedValue(d);
      if (memOff && rev) {
        this.finding(d, undefined, 'FAULT_WHILE_REVOKED', 'CRITICAL', ts, v === OFF ? [] : this.memUnknown(d),
          'ok fault on a mapping not seen, with memory disabled and the DMABUFs revoked');
      } else if (memOff || rev) {
        this.finding(d, undefined, 'FAULT_WHILE_REVOKED', 'CRITICAL', ts, ['mapping backing: the mapping was not seen being made'],
          'ok fault on a mapping not seen, with memory disabled or the DMABUFs revoked');
      }
    } else if (m.backing === Backing.DMABUF) {
      // Its own DMABUF's state: a DMABUF made after the device's last revoke is not revoked by it.
      if (m.dmabufKnown && m.dmabufRevoked) {
        this.finding(d, undefined, 'FAULT_WHILE_REVOKED', 'CRITICAL', ts, [], 'ok fault on a DMABUF mapping whose DMABUF is revoked');
      }
    } else if (memOff) {
      this.finding(d, undefined, 'FAULT_WHILE_REVOKED', 'CRITICAL', ts, v === OFF ? [] : this.memUnknown(d),
        'ok fault on a device-fd mapping while memory is disabled');
    }
    if (m.seen) { m.obsPopulated = true; m.populatedFact = true; }
    if (!buggy) {
      k.memFact = true; k.lowPower = true;
      if (d.memBit) k.memBit = true;
      if (m.seen && m.backing === Backing.DMABUF) m.dmabufKnown = true;
    }
    k.mark = false;
  }

  trigger(d: Device, tid: number, kind: TriggerKind, groupId: number, ts: number): void {
    const k = d.k;
    // vfio_pci_core_enable() at the first open sets power D0 and copies the command register into vdev->vconfig
    // afresh; after a close nothing faults until that open. Either way what was known of memory no longer stands.
    if (kind === TriggerKind.OPEN || kind === TriggerKind.CLOSE) {
      k.memBit = false; k.lowPower = false; this.memPieceChanged(d);
      k.memSince = kind === TriggerKind.OPEN ? `set afresh by the open at ts ${ts} (vfio_pci_core_enable()), no kernel fact since`
        : `the device was closed at ts ${ts}; its next open sets it afresh, no kernel fact since`;
      this.settle(d);
    }
    if (kind === TriggerKind.OPEN) { k.open = true; return; }
    const ep = k.ep;
    if (ep && k.lock && d.lockHolder === tid && ep.tid === tid) {
      // Rule 1: a marker inside the task's own window names that episode (always a fact).
      if (ep.trigger === undefined) {
        ep.trigger = kind; ep.triggerFact = true; ep.groupId = groupId;
        if (ep.record) { ep.record.trigger = TriggerKind[kind]!; ep.record.groupId = groupId; }
        this.stateAtAcquire(d, kind);
      }
      return;
    }
    // Rule 4: a newer trigger of the task replaces its waiting one.
    let stale = 0;
    for (let i = 0; i < k.pending.length; i++) {
      if (k.pending[i]!.tid === tid) { stale = k.pending[i]!.stale + 1; removeAt(k.pending, i); break; }
    }
    k.pending.push({ tid, kind, groupId, ts, fact: this.h.triggerEndFacts, stale });
  }

  /** PowerTransition: vfio_pci_set_power_state() moved the device (a kernel fact about low power). */
  powerTransition(d: Device): void {
    d.k.lowPower = true;
    this.memPieceChanged(d);
    this.settle(d);
  }

  /** The trigger function returned: before the task's acquire it voids its waiting trigger (rule 5), after it it
   * gives the task's episode its trigger_ret. */
  triggerEnd(d: Device, tid: number, kind: TriggerKind, ret: number): void {
    const k = d.k;
    for (let i = 0; i < k.pending.length; i++) {
      if (k.pending[i]!.tid === tid && k.pending[i]!.kind === kind) { removeAt(k.pending, i); return; }
    }
    if (kind === TriggerKind.OPEN) return;
    for (const e of k.lastEps) {
      if (e.tid === tid && e.trigger === kind) { e.triggerRet = ret; if (e.record) e.record.triggerRet = ret; return; }
    }
  }

  /** Rules §3: state changes take effect when the episode acquires; here they become known. */
  private stateAtAcquire(d: Device, kind: TriggerKind | undefined): void {
    const k = d.k;
    switch (kind) {
      case TriggerKind.MEM_DISABLE: case TriggerKind.MEM_ENABLE:
        k.memBit = true; this.memPieceChanged(d); break;
      case TriggerKind.D3HOT: case TriggerKind.RUNTIME_PM_ENTRY: case TriggerKind.D0: case TriggerKind.RUNTIME_PM_EXIT:
      case TriggerKind.RESET: case TriggerKind.FLR: case TriggerKind.HOT_RESET:
        k.lowPower = true; this.memPieceChanged(d); break;
      case TriggerKind.PERMANENT_REVOKE:
        k.permanent = true; break;
      default: break;
    }
  }

  acquire(d: Device, tid: number, pid: number, comm: string, ts: number, waitNs: number): void {
    const k = d.k;
    if (k.preZaps.length > 0) this.resolvePreZaps(d, ts);
    // Workload devices keep no episode record: their released episode object is reused.
    let ep: Ep;
    if (k.spare !== undefined) {
      ep = k.spare; k.spare = undefined;
      ep.tid = tid; ep.pid = pid; ep.comm = comm; ep.acquireTs = ts; ep.trigger = undefined; ep.triggerFact = false; ep.groupId = 0;
      ep.stale = 0; ep.triggerRet = 0; ep.deviceZaps = 0; ep.covered = 0; ep.zap0Start = -1; ep.zap0Length = 0; ep.zapRanges = null; ep.revokedTrue = false;
      ep.deviceHasVmas = undefined; ep.revokeStart = ts; ep.revokeEnd = 0; ep.incomplete = false; ep.intendedEmpty = 0;
      ep.findings = null; ep.record = undefined;
    } else {
      ep = { tid, pid, comm, acquireTs: ts, trigger: undefined, triggerFact: false, groupId: 0, stale: 0, triggerRet: 0,
        deviceZaps: 0, covered: 0, zap0Start: -1, zap0Length: 0, zapRanges: null, revokedTrue: false, deviceHasVmas: undefined, revokeStart: ts, revokeEnd: 0,
        incomplete: false, intendedEmpty: 0, findings: null, record: undefined };
    }
    // Rule 2: the task's waiting trigger, when its wait began within 1 s after it.
    for (let i = 0; i < k.pending.length; i++) {
      const p = k.pending[i]!;
      if (p.tid !== tid) continue;
      const waitStart = ts - waitNs;
      if (waitStart >= p.ts && waitStart - p.ts <= TRIGGER_ATTACH_NS) {
        ep.trigger = p.kind; ep.triggerFact = p.fact; ep.groupId = p.groupId; ep.stale = p.stale;
      }
      removeAt(k.pending, i);
      break;
    }
    // Hot reset: an episode the task opens while holding another device's HOT_RESET episode belongs to it.
    if (ep.trigger === undefined && this.hotResets.size > 0) {
      const hr = this.hotResets.get(tid);
      if (hr) { ep.trigger = TriggerKind.HOT_RESET; ep.triggerFact = hr.triggerFact; ep.groupId = hr.groupId; }
    }
    // Pre-6.11 zaps by the task just before its down_write belong to this episode.
    for (let i = 0; i < k.preZaps.length;) {
      const z = k.preZaps[i]!;
      if (z.tid === tid && ts - z.ts <= TRIGGER_ATTACH_NS) {
        ep.deviceZaps++; ep.covered |= z.bars;
        if (z.ts < ep.revokeStart) ep.revokeStart = z.ts;
        if (z.end > ep.revokeEnd) ep.revokeEnd = z.end;
        removeAt(k.preZaps, i);
      } else i++;
    }
    const firstSeen = !k.lock;
    k.lock = true;
    k.ep = ep;
    if (ep.trigger === TriggerKind.HOT_RESET) this.hotResets.set(tid, ep);
    if (ep.trigger === undefined && firstSeen) {
      // The first write section seen since the collector started (or lost events) has no trigger: it may have been
      // announced before, unseen, and any memory_lock path may change the power state or the memory bit (D3hot,
      // runtime PM, a COMMAND write). What the facts said of memory before it no longer stands.
      k.memFact = false; k.memBit = false; k.lowPower = false;
      k.since = `the first write section seen, acquired at ts ${ts}, had no trigger: its path is unknown`;
      k.memSince = undefined;
    }
    this.stateAtAcquire(d, ep.trigger);
    if (d.scenario !== undefined) {
      ep.record = this.h.addEpisode(d, this.episodeRecord(ep));
      this.remember(k, ep);
    }
    this.settle(d);
  }

  private episodeRecord(ep: Ep): Omit<TruthEpisode, 'hostname' | 'bootId' | 'device' | 'scenario'> {
    return { acquireTsNs: ep.acquireTs, releaseTsNs: 0, trigger: TriggerKind[ep.trigger ?? 0]!, groupId: ep.groupId,
      pid: ep.pid, comm: ep.comm, complete: !ep.incomplete, triggerRet: ep.triggerRet, staleTriggers: ep.stale,
      intendedEmptyZaps: 0 };
  }

  private remember(k: Knowledge, ep: Ep): void {
    for (let i = 0; i < k.lastEps.length; i++) if (k.lastEps[i]!.tid === ep.tid) { k.lastEps[i] = ep; return; }
    k.lastEps.push(ep);
  }

  /** An episode for events on a device whose lock state is unknown (it began before observation). */
  private unobserved(d: Device, tid: number): Ep {
    const ep: Ep = { tid, pid: 0, comm: '', acquireTs: 0, trigger: undefined, triggerFact: false, groupId: 0, stale: 0, triggerRet: 0,
      deviceZaps: 0, covered: 0, zap0Start: -1, zap0Length: 0, zapRanges: null, revokedTrue: false, deviceHasVmas: undefined, revokeStart: 0, revokeEnd: 0,
      incomplete: true, intendedEmpty: 0, findings: null, record: undefined };
    d.k.ep = ep;
    if (d.scenario !== undefined) ep.record = this.h.addEpisode(d, this.episodeRecord(ep));
    return ep;
  }

  /** A DEVICE zap (DMABUF-target zaps belong to their DmaBufRevoke and say nothing here). */
  zap(d: Device, tid: number, ts: number, durationNs: number, start: number, length: number, hadVmas: boolean | undefined): void {
    const k = d.k;
    const bars = coveredBars(start, length);
    if (this.h.era.zap === 'vma-list') {
      // zap_vma_ptes() per VMA before down_write: it belongs to the task's next acquire within 1 s.
      if (k.ep && k.lock && d.lockHolder === tid) this.addZap(d, k.ep, ts, durationNs, start, length, bars);
      else k.preZaps.push({ tid, ts, end: ts + durationNs, bars });
      for (const m of d.mappings.values()) if (m.seen && m.backing !== Backing.DMABUF && (bars & (1 << m.bar))) m.obsPopulated = false;
      this.settle(d);
      return;
    }
    if (!k.lock) {
      // The collector started (or lost events) inside a write section: no finding, the episode began unobserved.
      const ep = k.ep ?? this.unobserved(d, tid);
      this.addZap(d, ep, ts, durationNs, start, length, bars);
      this.clearPopulated(d, bars);
      return;
    }
    if (d.lockHolder !== tid) {
      // lockdep_assert_held_write() in vfio_pci_zap_bars(): another task's zap, or no task holds the lock.
      this.finding(d, undefined, 'LOCK_NOT_HELD', 'CRITICAL', ts, [], 'DEVICE zap by a task not holding memory_lock for write');
      this.clearPopulated(d, bars);
      return;
    }
    const ep = k.ep!;
    // REDUNDANT_ZAP (6.11+), one per zap.
    let redundant = '';
    const seriesDevice = k.described && d.dmabufBarMmap;
    let empty = false;
    if (seriesDevice) {
      if (hadVmas === false) empty = true;
      else if (hadVmas === undefined && k.maps) {
        empty = true;
        for (const m of d.mappings.values()) if (m.seen && m.backing !== Backing.DMABUF) { empty = false; break; }
      }
    }
    if (empty && d.customVmOpsBars !== 0) {
      ep.intendedEmpty++; // the series' "crude tracking": drivers with their own vm_ops zap by design
      if (ep.record) ep.record.intendedEmptyZaps = ep.intendedEmpty;
    } else if (empty) redundant = 'DEVICE zap with no live non-DMABUF mapping on a DMABUF-mmap kernel';
    else if (sameRange(ep, start, length)) redundant = 'second zap of the same range in one episode';
    else if (k.mark) redundant = 'zap of a range already zapped while memory stayed disabled or the DMABUFs revoked, no ok fault since';
    if (redundant) this.finding(d, ep, 'REDUNDANT_ZAP', 'INFO', ts, [], redundant);
    this.addZap(d, ep, ts, durationNs, start, length, bars);
    this.clearPopulated(d, bars);
    k.mark = true;
    this.settle(d);
  }

  private addZap(d: Device, ep: Ep, ts: number, durationNs: number, start: number, length: number, bars: number): void {
    ep.deviceZaps++; ep.covered |= bars;
    if (ep.zap0Start < 0) { ep.zap0Start = start; ep.zap0Length = length; } else (ep.zapRanges ??= []).push(start, length);
    if (ts + durationNs > ep.revokeEnd) ep.revokeEnd = ts + durationNs;
    void d;
  }

  private clearPopulated(d: Device, bars: number): void {
    for (const m of d.mappings.values()) if (m.backing !== Backing.DMABUF && (bars & (1 << m.bar))) m.obsPopulated = false;
  }

  /** vfio_pci_dma_buf_move(vdev, revoked); `wasRevoked` is the kernel's state before the call. */
  dmabufRevoke(d: Device, tid: number, ts: number, revoked: boolean, count: number, durationNs: number,
    deviceHasVmas: boolean | undefined, wasRevoked: boolean): void {
    const k = d.k;
    if (count > 0 || !revoked) k.unpaired = false; // the DMABUFs moved
    let ep = k.ep;
    if (!k.lock) ep ??= this.unobserved(d, tid);
    else if (d.lockHolder !== tid) {
      this.finding(d, undefined, 'LOCK_NOT_HELD', 'CRITICAL', ts, [], 'DmaBufRevoke by a task not holding memory_lock for write');
      ep = undefined;
    }
    if (revoked) {
      if (ep) {
        ep.revokedTrue = true;
        if (deviceHasVmas !== undefined) ep.deviceHasVmas = deviceHasVmas;
        if (ts + durationNs > ep.revokeEnd) ep.revokeEnd = ts + durationNs;
      }
      k.revoked = true;
      for (const m of d.mappings.values()) if (m.backing === Backing.DMABUF) { m.obsPopulated = false; if (m.seen) m.dmabufKnown = true; }
    } else {
      if (count > 0) {
        if (k.revoked && !wasRevoked) {
          this.finding(d, ep, 'UNREVOKE_WITHOUT_REVOKE', 'WARNING', ts, [], 'unrevoke changed DMABUFs that were not revoked');
        } else if (!k.revoked) {
          // "Not revoked" would hold under the old default: inconclusive (rules §4), although a correct kernel only
          // ever changes revoked DMABUFs on an unrevoke.
          this.finding(d, ep, 'UNREVOKE_WITHOUT_REVOKE', 'WARNING', ts, [`DMABUF revoke state: ${k.since}`], 'unrevoke while the revoke state is unknown');
        }
      }
      // The kernel unrevokes only with memory enabled; every DMABUF of the device is now in a known state.
      k.revoked = true; k.memFact = true;
      for (const m of d.mappings.values()) if (m.seen && m.backing === Backing.DMABUF) m.dmabufKnown = true;
      if (!d.revoked) k.permanent = true;
    }
    this.settle(d);
  }

  release(d: Device, tid: number, ts: number, close: boolean): void {
    const k = d.k;
    const ep = k.ep ?? this.unobserved(d, tid);
    k.ep = undefined;
    k.lock = true;
    if (this.hotResets.size > 0 && this.hotResets.get(tid) === ep) this.hotResets.delete(tid);
    this.judgeRelease(d, ep, ts);
    if (ep.record) { ep.record.releaseTsNs = ts; ep.record.complete = !ep.incomplete; }
    if (ep.findings) for (const f of ep.findings) f.releaseTsNs = ts;
    if (ep.record === undefined) k.spare = ep;
    // vfio_pci_dma_buf_cleanup() left the device with no DMABUFs: not revoked, not permanently revoked. (Every
    // device-fd mapping is gone too, but rules §2 makes the mapping list known only by a DeviceInfo.)
    if (close) { k.revoked = true; k.permanent = true; }
    this.settle(d);
  }

  private judgeRelease(d: Device, ep: Ep, ts: number): void {
    const k = d.k, era = this.h.era;
    if (ep.acquireTs === 0) return; // began before observation: no release-time rule
    const seen = ep.deviceZaps > 0 || ep.revokedTrue;
    const revokeEp = seen || (ep.trigger !== undefined && REVOKING_TRIGGERS.has(ep.trigger));
    // A finding that needs the trigger to be a revoking one rests on it alone when nothing revoking was seen.
    const triggerOk = seen || ep.triggerFact;
    // --- SKIPPED_ZAP (vfio_pci_zap_and_down_write_memory_lock / vfio_pci_zap_bars)
    const eraUnknown = this.h.releaseAtLeast619 && !k.described;
    let skipped: { severity: string; unknown: string[]; why: string } | undefined;
    if (revokeEp && ep.trigger !== TriggerKind.CLOSE) {
      if (era.zap === 'unconditional' || eraUnknown) skipped = this.skippedUnconditional(d, ep);
      if (!skipped && (era.zap !== 'unconditional' || eraUnknown)) skipped = this.skippedByMapping(d, ep, era.zap === 'vma-list', triggerOk);
    }
    if (skipped) {
      const unknown = [...skipped.unknown];
      if (eraUnknown) unknown.push('era: no DeviceInfo for the device, whether the series is applied is unknown');
      this.finding(d, ep, 'SKIPPED_ZAP', skipped.severity, ts, unknown, skipped.why);
    }
    // --- UNPAIRED_REVOKE: every write section that leaves memory enabled runs vfio_pci_dma_buf_move(vdev, false)
    // before up_write (__vfio_pci_memory_enabled()); reported at the first release that leaves the device revoked
    // with memory enabled and the device open, not again until the DMABUFs move. The permanent revoke and the close
    // cleanup stay revoked by design.
    if (era.dmabufExport && !k.unpaired && ep.trigger !== TriggerKind.PERMANENT_REVOKE && ep.trigger !== TriggerKind.CLOSE) {
      const revoked = this.revokedValue(d);
      const permanent = era.permanentRevoke && (k.permanent ? d.permanent : false);
      const mv = this.memView(d);
      const open = k.open ? d.openCount > 0 : true;
      if (revoked && !permanent && (mv === ON || mv === UNKNOWN_ON) && open) {
        const unknown: string[] = [];
        if (era.permanentRevoke && !k.permanent) unknown.push(`permanent revoke: ${k.since}`);
        if (mv === UNKNOWN_ON) unknown.push(...this.memUnknown(d));
        if (!k.open) unknown.push(`open state: ${k.since}`);
        k.unpaired = true;
        this.finding(d, ep, 'UNPAIRED_REVOKE', 'WARNING', ts, unknown, 'released revoked while memory is enabled and the device open');
      }
    }
    // --- LOCK_HELD_OPEN
    if (ts - ep.acquireTs > OPEN_LOCK_LIMIT_NS) this.finding(d, ep, 'LOCK_HELD_OPEN', 'WARNING', ep.acquireTs + OPEN_LOCK_LIMIT_NS, [], 'memory_lock held for write beyond the limit');
    // --- SLOW_REVOKE
    if (ep.revokeEnd > 0 && ep.revokeEnd - ep.revokeStart > SLOW_REVOKE_LIMIT_NS) {
      this.finding(d, ep, 'SLOW_REVOKE', 'WARNING', ep.revokeEnd, [], 'revoke latency above the limit');
    }
  }

  /** 6.11 up to the series: every path behind a zapping trigger zaps, whatever is mapped. */
  private skippedUnconditional(d: Device, ep: Ep): { severity: string; unknown: string[]; why: string } | undefined {
    if (ep.trigger === undefined || !ZAPPING_TRIGGERS.has(ep.trigger) || ep.deviceZaps > 0) return undefined;
    let populated = false;
    for (const m of d.mappings.values()) if (m.seen && m.backing !== Backing.DMABUF && m.obsPopulated) populated = true;
    const unknown = ep.triggerFact ? [] : ['trigger: named by acquire on a host without TriggerEnd'];
    return { severity: populated ? 'CRITICAL' : 'WARNING', unknown, why: `${TriggerKind[ep.trigger]} episode without a DEVICE zap` };
  }

  /** Before 6.11 (only faulted VMAs are on vma_list) and in the series (conditional zap): a live device-fd mapping
   * no DEVICE zap of the episode reached. */
  private skippedByMapping(d: Device, ep: Ep, pre611: boolean, triggerOk: boolean): { severity: string; unknown: string[]; why: string } | undefined {
    const k = d.k;
    let uncovered = false, populated = false, onVmaList = false;
    for (const m of d.mappings.values()) {
      if (!m.seen || m.backing === Backing.DMABUF || (ep.covered & (1 << m.bar))) continue;
      if (pre611 && !m.obsPopulated) continue;
      uncovered = true;
      if (m.obsPopulated) populated = true;
      if (m.populatedFact) onVmaList = true;
    }
    const unknown = triggerOk ? [] : ['trigger: named by acquire on a host without TriggerEnd'];
    if (uncovered) {
      // Before 6.11 only a faulted VMA is on vdev->vma_list: a mapping taken as populated only because it was in the
      // collector's start snapshot may have no PTEs at all (zapped before the collector started).
      if (pre611 && !onVmaList) unknown.push('populated: assumed from the start snapshot, no fault seen');
      return { severity: populated ? 'CRITICAL' : 'WARNING', unknown, why: 'live device-fd mapping reached by no DEVICE zap' };
    }
    if (ep.deviceZaps > 0 || ep.deviceHasVmas === false) return undefined;
    if (ep.deviceHasVmas === true) return { severity: 'WARNING', unknown, why: 'device_has_vmas with no DEVICE zap' };
    if (!k.maps) return { severity: 'WARNING', unknown: [...unknown, `mappings: ${k.since}`], why: 'revoke episode with no zap, mapping state unknown' };
    return undefined;
  }

  /** Pre-6.11 zaps that no acquire of their task claimed within 1 s belong to no episode (and, made before the lock
   * by design, are no LOCK_NOT_HELD). */
  private resolvePreZaps(d: Device, now: number): void {
    const k = d.k;
    for (let i = 0; i < k.preZaps.length;) {
      if (now - k.preZaps[i]!.ts > TRIGGER_ATTACH_NS) removeAt(k.preZaps, i); else i++;
    }
  }

  /** End of the trace at host time `now`: an episode still open past the limit is LOCK_HELD_OPEN. */
  finish(now: number): void {
    for (const d of this.h.devices) {
      this.resolvePreZaps(d, now + 2 * TRIGGER_ATTACH_NS);
      const ep = d.k.ep;
      if (ep && ep.acquireTs > 0 && now - ep.acquireTs > OPEN_LOCK_LIMIT_NS) {
        this.finding(d, ep, 'LOCK_HELD_OPEN', 'WARNING', ep.acquireTs + OPEN_LOCK_LIMIT_NS, [], 'memory_lock still held for write at the end');
      }
    }
  }

  private finding(d: Device, ep: Ep | undefined, kind: string, severity: string, ts: number, unknown: string[], why: string): void {
    const f = this.h.addFinding(d, {
      kind, severity, acquireTsNs: ep?.acquireTs ?? 0, releaseTsNs: 0, tsNs: ts,
      inconclusive: unknown.length > 0 || (ep?.incomplete ?? false),
      why: `${why}${unknown.length > 0 ? `; unknown: ${unknown.join('; ')}` : ''}${ep?.incomplete ? '; the episode is incomplete' : ''}`,
    });
    if (ep) (ep.findings ??= []).push(f);
  }
}

/** A judge that judges nothing: for consumers that read the batches only (the pipeline's simulator source), so that
 * they do not pay for a truth they never read. */
export class SilentJudge extends Judge {
  override lost(): void {}
  override deviceInfo(): void {}
  override mapping(): void {}
  override fault(): void {}
  override trigger(): void {}
  override powerTransition(): void {}
  override triggerEnd(): void {}
  override acquire(): void {}
  override zap(): void {}
  override dmabufRevoke(): void {}
  override release(): void {}
  override finish(): void {}
}

/** Removes arr[i] (order not kept: these lists hold one entry per task at most). */
function removeAt<T>(arr: T[], i: number): void {
  const last = arr.pop()!;
  if (i < arr.length) arr[i] = last;
}

function sameRange(ep: Ep, start: number, length: number): boolean {
  if (ep.zap0Start === start && ep.zap0Length === length) return true;
  const ranges = ep.zapRanges;
  if (ranges) for (let i = 0; i < ranges.length; i += 2) if (ranges[i] === start && ranges[i + 1] === length) return true;
  return false;
}

/** BARs a zap of [start, start + length) reaches (length 0: to the end). */
export function coveredBars(start: number, length: number): number {
  const end = length === 0 ? Infinity : start + length;
  let mask = 0;
  for (let b = 0; b < 6; b++) if (start < (b + 1) * BAR_SPAN && end > b * BAR_SPAN) mask |= 1 << b;
  return mask;
}
