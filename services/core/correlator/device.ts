// Per-device state machine (docs/rules.md): what is known of the device, the open episode, triggers waiting for
// their episode, and the finding rules. Events arrive here in ts order (the host tracker reorders them). Pure: no
// I/O, no clocks.
import { EventFields as EV } from '../../../gen/fields.js';
import { emptyPrefix, extendId, idOfNumber, type IdPrefix } from '../ids.js';
import {
  Backing, FindingKind, Severity, TriggerKind, ZapTarget,
  type Event, type Finding, type FindingKind as FindingKindT, type Severity as SeverityT, type TriggerKind as TriggerKindT,
} from '../model.js';
import type { HostContext } from './context.js';
import { MAX_EPISODE_ZAPS, OpenEpisode, type DeviceZap } from './episode.js';
import { RULES, makeFinding, markInconclusive, type Rule } from './findings.js';
import { DeviceKnowledge, type Judged, type KnowledgeState } from './knowledge.js';
import { MAX_MAPPINGS, MappingState, isDeviceMapping, zapReachesBar, type Mapping } from './mapping.js';

interface PendingTrigger { ts: number; tid: number; kind: TriggerKindT; groupId: number; stale: number }
/** A pre-6.11 zap waiting for its task's acquire: it becomes one of that episode's DeviceZaps. */
interface PendingZap extends DeviceZap { tid: number }
/** Pre-6.11 zaps waiting for their task's down_write (vfio_pci_zap_and_down_write_memory_lock): a few VMAs each. */
const MAX_PENDING_ZAPS = 64;
const ZAPS_NOT_KEPT = `zaps: more than ${MAX_PENDING_ZAPS} zaps waited for down_write at once, some were not kept`;

/** BARs a driver serves through its own vm_ops when DeviceInfo does not say (custom_vm_ops_bars): nvgrace-gpu maps
 * its device memory (usemem BAR2, resmem BAR4) with nvgrace_gpu_vm_ops. */
const CUSTOM_VM_OPS_BARS: Record<string, number> = { 'nvgrace-gpu': (1 << 2) | (1 << 4) };

/** An episode whose task's cgroup path is unknown (or names nothing): no workload. */
const NO_WORKLOAD = { vm: '', podUid: '', podName: '', containerId: '' } as const;
const TRIGGER_GUESS = 'trigger: named across the lock boundary by a collector that does not report trigger returns (TRIGGER_END); a failed ioctl cannot be told apart';

/** A device tracker as plain data (correlator checkpoints). */
export interface DeviceState {
  device: string; driver: string; zapBarsOnRevoke: boolean | null; dmabufBarMmap: boolean; dmabufBarMmapKnown: boolean;
  customVmOpsBars: number | null; knowledge: KnowledgeState; lockKnown: boolean;
  mappings: ReturnType<MappingState['toState']>; offZap: { start: number; length: number } | null; unpairedReported: boolean;
  episode: Record<string, unknown> | null; closing: Record<string, unknown>[] | null;
  pendingTriggers: PendingTrigger[] | null; pendingZaps: PendingZap[] | null;
  /** Absent in checkpoints of older versions. */
  zapsDroppedTs?: number;
}

export class DeviceTracker {
  driver = '';
  /** vdev->zap_bars_on_revoke where the collector read it (null: not read). */
  zapBarsOnRevoke: boolean | null = null;
  /** DeviceInfo.dmabuf_bar_mmap: core BAR mmaps are DMABUF-backed (the series is applied); known once a DeviceInfo
   * was seen. Static for the boot. */
  dmabufBarMmap = false;
  dmabufBarMmapKnown = false;
  customVmOpsBars: number | null = null;
  readonly k = new DeviceKnowledge();
  mappings = new MappingState();
  /** Whether the lock state is known: then the lock is held by `episode.tid` when an episode is open, else free. */
  lockKnown = false;
  episode: OpenEpisode | null = null;
  /** Released episodes waiting for their trigger's TriggerEnd (hosts with TRIGGER_END). */
  closing: OpenEpisode[] | null = null;
  /** UNPAIRED_REVOKE was reported for the current revoke (cleared when the DMABUFs move again). */
  private unpairedReported = false;
  /** The last DEVICE zap's range while memory was off or the DMABUFs revoked, with no ok fault since. */
  private offZap: { start: number; length: number } | null = null;
  private pendingTriggers: PendingTrigger[] | null = null;
  private pendingZaps: PendingZap[] | null = null;
  /** ts of the last waiting zap not kept (MAX_PENDING_ZAPS): episodes acquired within the attach window after it may
   * be missing zaps. */
  private zapsDroppedTs = -Infinity;

  /** Episode ids hash (hostname, boot_id, device, acquire ts): the first three once per device. */
  private readonly idPrefix: IdPrefix;

  /** `index`: the tracker's number in its host, in order of creation (TrackerList). */
  constructor(readonly device: string, private readonly ctx: HostContext, readonly index: number) {
    this.idPrefix = extendId(emptyPrefix, ctx.hostname, ctx.bootId, device);
  }

  toState(): DeviceState {
    return {
      device: this.device, driver: this.driver, zapBarsOnRevoke: this.zapBarsOnRevoke, dmabufBarMmap: this.dmabufBarMmap,
      dmabufBarMmapKnown: this.dmabufBarMmapKnown, customVmOpsBars: this.customVmOpsBars, knowledge: this.k.toState(),
      lockKnown: this.lockKnown, mappings: this.mappings.toState(), offZap: this.offZap && { ...this.offZap },
      unpairedReported: this.unpairedReported,
      episode: this.episode?.toState() ?? null, closing: this.closing?.map((e) => e.toState()) ?? null,
      pendingTriggers: this.pendingTriggers, pendingZaps: this.pendingZaps, zapsDroppedTs: this.zapsDroppedTs,
    };
  }

  static fromState(s: DeviceState, ctx: HostContext, index: number): DeviceTracker {
    const d = new DeviceTracker(s.device, ctx, index);
    d.driver = s.driver; d.zapBarsOnRevoke = s.zapBarsOnRevoke; d.dmabufBarMmap = s.dmabufBarMmap;
    d.dmabufBarMmapKnown = s.dmabufBarMmapKnown; d.customVmOpsBars = s.customVmOpsBars;
    Object.assign(d.k, DeviceKnowledge.fromState(s.knowledge));
    d.lockKnown = s.lockKnown;
    d.mappings = MappingState.fromState(s.mappings);
    d.offZap = s.offZap;
    d.unpairedReported = s.unpairedReported;
    d.episode = s.episode ? OpenEpisode.fromState(s.episode) : null;
    d.closing = s.closing ? s.closing.map((e) => OpenEpisode.fromState(e)) : null;
    d.pendingTriggers = s.pendingTriggers; d.pendingZaps = s.pendingZaps; d.zapsDroppedTs = s.zapsDroppedTs ?? -Infinity;
    return d;
  }

  /** The series (DMABUF-backed BAR mmaps) on this device. */
  private get series(): boolean { return this.ctx.hasDmabufRevoke && this.dmabufBarMmap; }

  private get customBars(): number { return this.customVmOpsBars ?? CUSTOM_VM_OPS_BARS[this.driver] ?? 0; }

  /** The event being applied (findings made meanwhile rest on it); undefined between events. */
  private current: Event | undefined;

  /** Apply one event; `field`: its body's field number in Event (the reorder buffer keeps it). */
  apply(ev: Event, ts: number, field: number): void {
    this.current = ev;
    try { this.applyEvent(ev, ts, field); } finally { this.current = undefined; }
  }

  private applyEvent(ev: Event, ts: number, field: number): void {
    switch (field) {
      case EV.barFault: return this.onFault(ev, ts);
      case EV.lockAcquire: return this.onAcquire(ev, ts);
      case EV.lockRelease: return this.onRelease(ev, ts);
      case EV.moveNotify: {
        const e = this.episode, m = ev.moveNotify!;
        if (e) e.noteMove(m.dmabufId ?? 0, m.durationNs ?? 0, m.importerCount ?? 0);
        return;
      }
      case EV.trigger: return this.onTrigger(ev, ts);
      case EV.triggerEnd: return this.onTriggerEnd(ev);
      case EV.dmabufRevoke: return this.onDmabufRevoke(ev, ts);
      case EV.zap: return this.onZap(ev, ts);
      case EV.barMmap: {
        const m = ev.barMmap!;
        // Before DMABUF export every BAR mmap is a classic vfio-pci mmap of the device fd.
        const backing = !this.ctx.hasDmabufRevoke || !m.backing ? Backing.LEGACY : m.backing;
        // vfio_pci_dmabuf_export(): priv->revoked = !__vfio_pci_memory_enabled(vdev). A snapshot's DMABUF was made
        // at a time not seen: its state is unknown until the device's DMABUFs move or it faults.
        const mem = backing === Backing.DMABUF && !m.snapshot ? this.k.memoryEnabled() : null;
        this.mappings.add(m.mappingId ?? 0, { bar: m.bar ?? 0, backing, populated: !!m.snapshot, faulted: false,
          revoked: mem ? !mem.value : false, revokedKnown: mem ? mem.known : false });
        if (m.snapshot) this.mappings.known = true;
        this.k.setOpen(true); // vfio_pci_core_mmap() needs an open device fd
        if (!m.snapshot) this.k.deviceInUse();
        return;
      }
      case EV.barMunmap:
        this.mappings.remove(ev.barMunmap!.mappingId ?? 0);
        return;
      case EV.deviceInfo: return this.onDeviceInfo(ev);
      case EV.powerTransition: {
        // vfio_pci_set_power_state() moved the device: a kernel fact about low power.
        const to = ev.powerTransition!.to ?? 0;
        if (to <= 4) this.k.setLowPower(to >= 3, true);
        return;
      }
      default:
        return;
    }
  }

  private onDeviceInfo(ev: Event): void {
    const info = ev.deviceInfo!;
    this.driver = info.driver ?? '';
    this.zapBarsOnRevoke = info.zapBarsOnRevoke ?? null;
    this.dmabufBarMmap = !!info.dmabufBarMmap;
    this.dmabufBarMmapKnown = true;
    if (info.customVmOpsBars != null) this.customVmOpsBars = info.customVmOpsBars;
    const k = this.k;
    if (info.noCommandMemory != null) k.setNoCmd(info.noCommandMemory);
    // The collector reads the state without memory_lock: while a write section is open (its holder is changing
    // vconfig, the power state and the DMABUFs' revoked flags; its own events say how) or an open is rewriting
    // vconfig and the power state (vfio_pci_core_enable()), what it read is no fact.
    if (k.opening.length === 0 && !this.episode) {
      if (info.powerState != null && info.powerState <= 4) k.setLowPower(info.powerState >= 3, true); // 5: PCI_UNKNOWN
      if (info.memoryEnabled === true) k.memoryEnabledFact();
      else if (info.memoryEnabled === false) k.memoryDisabledFact();
      if (info.revoked != null) k.setRevoked(info.revoked);
      if (info.revoked === false) k.setPermanent(false, true); // permanently revoked implies revoked
    }
    if (info.openCount != null) k.setOpen(info.openCount > 0);
    this.mappings.known = true;
    if (k.memoryEnabledValue() && !k.revoked) this.offZap = null;
  }

  /** Loss on the host at `lossTs`: every changing piece is unknown again (docs/rules.md §2). */
  forget(lossTs: number): void {
    this.k.forget(lossTs);
    this.mappings.forget();
    this.lockKnown = false;
    this.offZap = null;
    this.unpairedReported = false;
    this.pendingTriggers = null; // their TriggerEnd may be what was lost
    this.pendingZaps = null;
    this.zapsDroppedTs = -Infinity;
  }

  // ---------------------------------------------------------------- faults

  // vfio_pci_mmap_huge_fault() (vfio_pci_mmap_fault() before 6.12): under memory_lock held for read, PTEs are
  // installed only while __vfio_pci_memory_enabled() (and, for a DMABUF mapping, the DMABUF is not revoked).
  private onFault(ev: Event, ts: number): void {
    const f = ev.barFault!;
    const id = f.mappingId ?? 0;
    this.k.deviceInUse();
    let m = this.mappings.get(id);
    if (!f.ok) {
      // A fault refused on a live device-fd mapping: memory was disabled. On a DMABUF mapping it could be either.
      if (m && isDeviceMapping(m)) this.k.memoryDisabledFact();
      return;
    }
    this.k.setOpen(true);
    if (!m && !this.series) {
      // A fault proves a mapping the collector did not see being made; without DMABUF-backed BAR mmaps it can
      // only be a device-fd (legacy) mapping.
      m = { bar: f.bar ?? 0, backing: Backing.LEGACY, populated: false, faulted: false, revoked: false, revokedKnown: false };
      this.mappings.add(id, m);
    }
    const hazard = this.checkFaultWhileRevoked(ev, ts, m);
    if (m) { m.populated = true; m.faulted = true; }
    this.offZap = null;
    const zaps = this.episode?.deviceZaps;
    if (zaps) for (const z of zaps) z.faultSince = true;
    if (hazard) return; // the kernel broke its own rule: keep what we knew, the finding says so
    this.k.memoryEnabledFact();
    // Its own DMABUF is not revoked; the device's other DMABUFs may be (one made after a revoke is not).
    if (m?.backing === Backing.DMABUF) { m.revoked = false; m.revokedKnown = true; }
  }

  /** FAULT_WHILE_REVOKED: an ok fault installed PTEs where MMIO must be unreachable. Mirrors the check in
   * vfio_pci_mmap_huge_fault(). Certain when the mapping's backing is known and memory is known disabled (LEGACY /
   * CUSTOM_VM_OPS: memory bit cleared by a MEM_DISABLE write section, or low power by D3hot / a PowerTransition, or
   * DeviceInfo) or, for a DMABUF mapping, its own DMABUF known revoked (a DmaBufRevoke{revoked:true} seen since it
   * was made, or made while memory was known disabled). */
  private checkFaultWhileRevoked(ev: Event, ts: number, m: Mapping | undefined): boolean {
    const k = this.k;
    const memOn = k.memoryEnabledValue();
    // An unknown DMABUF state takes the default (not revoked): no finding.
    if (m ? (m.backing === Backing.DMABUF ? !(m.revokedKnown && m.revoked) : memOn) : memOn && !k.revoked) return false; // the common case
    const mem = k.memoryEnabled();
    const rev = k.revokedJudged();
    let premise: Judged;
    let facts: Record<string, unknown>;
    const unknown: string[] = [];
    if (!m) {
      // Series, a mapping the collector did not see: its backing is unknown. Memory disabled and DMABUFs revoked
      // together rule out both backings; one of them alone leaves it open.
      premise = !mem.value && rev.value ? { value: true, known: mem.known && rev.known, unknown: [...mem.unknown, ...rev.unknown] }
        : { value: true, known: false, unknown: [...(mem.value ? rev.unknown : mem.unknown), 'mapping backing: the mapping was not seen being made'] };
      facts = { mappingId: ev.barFault!.mappingId ?? 0, bar: ev.barFault!.bar ?? 0, backing: 'unknown', memoryEnabled: mem.value, revoked: rev.value };
    } else if (m.backing === Backing.DMABUF) {
      premise = { value: true, known: true, unknown: [] };
      facts = { mappingId: ev.barFault!.mappingId ?? 0, bar: m.bar, backing: 'DMABUF', revoked: true };
    } else {
      premise = { ...mem, value: true };
      facts = { mappingId: ev.barFault!.mappingId ?? 0, bar: m.bar, backing: Backing[m.backing], memoryEnabled: false,
        memoryBit: this.k.memBit, lowPower: this.k.lowPower, noCommandMemory: this.k.noCmdKnown ? this.k.noCmd : null };
    }
    unknown.push(...premise.unknown);
    if (!premise.known && unknown.length === 0) unknown.push('device state: not established by a kernel fact');
    this.emitFinding(this.finding(FindingKind.FAULT_WHILE_REVOKED, Severity.CRITICAL, ts, '', RULES.faultWhileRevoked,
      { ...facts, tid: ev.tid ?? 0, comm: ev.comm ?? '' }, unknown), ts, ts);
    return true;
  }

  // ---------------------------------------------------------------- triggers

  // Config writes (vfio_basic_config_write), ioctls (vfio_pci_ioctl_reset) and PM paths announce themselves before
  // down_write(&vdev->memory_lock); a trigger names its own task's episode only (docs/rules.md §3).
  private onTrigger(ev: Event, ts: number): void {
    const t = ev.trigger!;
    const kind = t.kind ?? TriggerKind.TRIGGER_UNSPECIFIED;
    const tid = ev.tid ?? 0;
    // vfio_pci_core_open_device(): names no episode; vfio_pci_core_enable() sets the memory state afresh
    if (kind === TriggerKind.OPEN) { this.k.opened(ts, tid); return; }
    this.k.deviceInUse();
    if (kind === TriggerKind.CLOSE) {
      // vfio_pci_core_close_device(): the last reference to the device file is gone, and with it every mapping of it.
      this.k.closed(ts);
      this.mappings.closeDeviceFd();
    }
    const e = this.episode;
    if (e && e.tid === tid) {
      e.addTrigger(kind, t.groupId ?? 0, true, ts);
      this.stateChange(kind, true);
      return;
    }
    let pending = this.pendingTriggers;
    let stale = 0;
    if (pending) {
      // A newer trigger of the same task replaces its waiting one.
      let i = 0;
      while (i < pending.length && pending[i]!.tid !== tid) i++;
      if (i < pending.length) { stale = pending[i]!.stale + 1; pending.splice(i, 1); }
    } else pending = this.pendingTriggers = [];
    pending.push({ ts, tid, kind, groupId: t.groupId ?? 0, stale });
    if (pending.length > 16) pending.shift();
  }

  // The trigger's function returned: before its task took the lock it never will (a failed or early-returning
  // ioctl); after its episode, the return value belongs to that episode.
  private onTriggerEnd(ev: Event): void {
    const end = ev.triggerEnd!;
    const tid = ev.tid ?? 0, kind = end.kind ?? TriggerKind.TRIGGER_UNSPECIFIED, ret = end.ret ?? 0;
    if (kind === TriggerKind.OPEN) { this.k.openReturned(tid); return; }
    const pending = this.pendingTriggers;
    if (pending) {
      let i = 0;
      while (i < pending.length && !(pending[i]!.tid === tid && pending[i]!.kind === kind)) i++;
      if (i < pending.length) {
        pending.splice(i, 1);
        if (pending.length === 0) this.pendingTriggers = null;
        return;
      }
    }
    const e = this.episode;
    if (e && e.tid === tid && e.trigger === kind) { e.triggerRet = ret; return; }
    const closing = this.closing;
    if (!closing) return;
    const i = closing.findIndex((c) => c.tid === tid && c.trigger === kind);
    if (i < 0) return;
    const c = closing[i]!;
    closing.splice(i, 1);
    if (closing.length === 0) this.closing = null;
    c.triggerRet = ret;
    this.emitEpisode(c);
  }

  /** A trigger's effect on device state, when its episode acquires (docs/rules.md §3). `fact`: the trigger is known
   * to belong to this episode. */
  private stateChange(kind: TriggerKindT, fact: boolean): void {
    const k = this.k;
    switch (kind) {
      case TriggerKind.MEM_DISABLE: k.setMemBit(false, fact); break;
      case TriggerKind.MEM_ENABLE: k.setMemBit(true, fact); break;
      case TriggerKind.D3HOT: case TriggerKind.RUNTIME_PM_ENTRY: k.setLowPower(true, fact); break;
      // VFIO_DEVICE_RESET calls vfio_pci_set_power_state(D0) before pci_try_reset_function(); resets need D0.
      case TriggerKind.D0: case TriggerKind.RUNTIME_PM_EXIT: case TriggerKind.RESET: case TriggerKind.FLR:
      case TriggerKind.HOT_RESET:
        k.setLowPower(false, fact); break;
      default: return;
    }
    // A second memory-off zap is redundant only while memory stayed off (or the DMABUFs revoked).
    if (this.offZap && k.memoryEnabledValue() && !k.revoked) this.offZap = null;
  }

  // ---------------------------------------------------------------- the lock

  private onAcquire(ev: Event, ts: number): void {
    if (this.episode) this.release(ts, false); // its release was lost (or began unobserved): close it incomplete
    const firstSeen = !this.lockKnown;
    const tid = ev.tid ?? 0;
    const maps = this.mappings;
    const e = new OpenEpisode(idOfNumber(this.idPrefix, ts), ts, ev.lockAcquire!.waitNs ?? 0, tid, ev.pid ?? 0,
      ev.comm ?? '', maps.deviceCount, maps.dmabufCount);
    e.cgroupId = Number(ev.cgroupId ?? 0);
    e.acquireStackId = Number(ev.stackId ?? 0);
    this.episode = e;
    this.lockKnown = true;
    // vfio_pci_dev_set_hot_reset(): the same task holds another device's lock in a hot reset.
    const hot = this.ctx.hotResetHeldBy(tid, this.device);
    if (hot) e.addTrigger(TriggerKind.HOT_RESET, hot.groupId, hot.triggerFact, ts);
    const pending = this.pendingTriggers;
    if (pending) {
      const window = this.ctx.opts.triggerAttachNs;
      const waitBegan = ts - e.waitNs;
      let kept = 0; // the list is filtered in place
      for (let i = 0; i < pending.length; i++) {
        const p = pending[i]!;
        // Other tasks' triggers wait for their own acquires, however long the lock is held (at most 16 wait).
        if (p.tid !== tid) { pending[kept++] = p; continue; }
        if (p.ts > ts || waitBegan - p.ts > window) continue; // too old for this acquire: it named nothing
        e.addTrigger(p.kind, p.groupId, this.ctx.hasTriggerEnd, p.ts);
        e.staleTriggers += p.stale;
      }
      pending.length = kept;
      this.pendingTriggers = kept > 0 ? pending : null;
    }
    // State changes take effect at acquire (the kernel makes them inside the write section). The first write section
    // seen with no trigger may have been announced unseen: what it changed is unknown.
    if (e.trigger !== TriggerKind.TRIGGER_UNSPECIFIED) this.stateChange(e.trigger, e.triggerFact);
    else if (firstSeen) this.k.forgetMemory(ts);
    // A zap that waited for down_write was not kept (more than MAX_PENDING_ZAPS waited): it may have been this task's.
    if (ts - this.zapsDroppedTs <= this.ctx.opts.triggerAttachNs) e.zapsIncomplete = true;
    const zaps = this.pendingZaps;
    if (zaps) {
      // Pre-6.11 vfio_pci_zap_and_down_write_memory_lock(): zap_vma_ptes per VMA, then down_write.
      const window = this.ctx.opts.triggerAttachNs;
      let kept = 0; // filtered in place
      for (let i = 0; i < zaps.length; i++) {
        const z = zaps[i]!;
        if (ts - z.ts > window) continue;
        if (z.tid === tid) this.recordDeviceZap(e, z, undefined); else zaps[kept++] = z;
      }
      zaps.length = kept;
      this.pendingZaps = kept > 0 ? zaps : null;
    }
  }

  private onRelease(ev: Event, ts: number): void {
    if (this.episode) { this.release(ts, true); return; }
    if (this.lockKnown) return; // up_write of a lock we know is free: nothing to close
    // The collector started (or lost events) inside a write section: that episode began unobserved.
    this.episode = this.unobservedEpisode(ev, ts);
    this.release(ts, true);
  }

  /** An episode whose acquire was not observed (docs/rules.md §3 "Began before observation"). */
  private unobservedEpisode(ev: Event, ts: number): OpenEpisode {
    const maps = this.mappings;
    const e = new OpenEpisode(idOfNumber(extendId(this.idPrefix, 'unobserved'), ts), 0, 0, ev.tid ?? 0, ev.pid ?? 0,
      ev.comm ?? '', maps.deviceCount, maps.dmabufCount);
    e.complete = false;
    return e;
  }

  /** Task `tid` may act as the lock holder: it holds the lock, or the lock state is unknown (then an episode that
   * began unobserved is opened for it). Otherwise the caller reports LOCK_NOT_HELD. */
  private holder(ev: Event, ts: number): OpenEpisode | null | 'not-held' {
    const tid = ev.tid ?? 0;
    const e = this.episode;
    if (e && e.tid === tid) return e;
    if (this.lockKnown) return 'not-held';
    if (e) return null; // another task's episode, lock state unknown: nothing can be said
    return (this.episode = this.unobservedEpisode(ev, ts));
  }

  // ---------------------------------------------------------------- zaps and revokes

  private onZap(ev: Event, ts: number): void {
    const z = ev.zap!;
    const start = z.start ?? 0, length = z.length ?? 0, durationNs = z.durationNs ?? 0;
    if (z.target === ZapTarget.DMABUF) {
      // A DMABUF file's own mapping, zapped inside that DMABUF's revoke: part of the revoke, not a BAR zap.
      const e = this.episode;
      if (e && e.tid === (ev.tid ?? 0)) e.noteRevokeStep(ts, durationNs);
      return;
    }
    this.mappings.zapDevice(start, length); // the kernel tore the PTEs down, whoever called it
    const tid = ev.tid ?? 0;
    if (this.ctx.zapsBeforeLock && !(this.episode && this.episode.tid === tid)) {
      // zaps wait for their task's acquire at most the attach window, and at most MAX_PENDING_ZAPS of them
      const pending = (this.pendingZaps ??= []);
      while (pending.length > 0 && ts - pending[0]!.ts > this.ctx.opts.triggerAttachNs) pending.shift(); // too old to attach
      if (pending.length >= MAX_PENDING_ZAPS) { pending.shift(); this.zapsDroppedTs = ts; } // not kept: see onAcquire
      pending.push({ ts, tid, start, length, durationNs, faultSince: false });
      return;
    }
    const e = this.holder(ev, ts);
    if (e === 'not-held') {
      this.lockNotHeld(ev, ts, { event: 'zap', start, length, durationNs });
      return;
    }
    if (e) this.recordDeviceZap(e, { ts, start, length, durationNs, faultSince: false }, z.hadVmas ?? undefined);
  }

  /** A DEVICE zap in its episode, and REDUNDANT_ZAP (INFO): unmap_mapping_range() of the vdev inode with nothing to
   * tear down. Certain on these facts: had_vmas = false, or a known mapping list without a device-fd mapping, on a
   * series device without custom-vm_ops BARs; the same range zapped earlier in the episode with no ok fault since; or
   * (6.11+) the same range zapped while memory stayed known disabled or the DMABUFs known revoked, no fault since
   * (vfio_basic_config_write() zaps again on every memory-off write). */
  private recordDeviceZap(e: OpenEpisode, z: DeviceZap, hadVmas: boolean | undefined): void {
    const ts = z.ts;
    let reasons: string[] | null = null; // built only for a finding (every zap comes here)
    let facts: Record<string, unknown> | null = null;
    if (hadVmas === false) e.zapHadNoVmas = true;
    // Series: the zap is needed only for mappings outside DMABUFs (vdev->zap_bars_on_revoke).
    if (this.series) {
      const none = hadVmas === false || (hadVmas === undefined && this.mappings.known && !this.mappings.hasDeviceMapping());
      if (none) {
        // Drivers with custom-vm_ops BARs zap by design whether or not they are mapped (the series' crude tracking).
        if (this.customBars !== 0) e.intendedEmptyZaps++;
        else (reasons ??= []).push(hadVmas === false ? 'had_vmas=false: the vdev inode mapping had no VMAs'
          : 'no live non-DMABUF BAR mapping; BAR mmaps are DMABUF-backed');
      }
    }
    let repeat: DeviceZap | undefined;
    const kept = e.deviceZaps;
    if (kept) for (const p of kept) if (p.start === z.start && p.length === z.length && !p.faultSince) { repeat = p; break; }
    if (repeat) (reasons ??= []).push(`same range zapped at ts ${repeat.ts} in this episode with no fault since`);
    else if (this.ctx.zapsUnderLock && this.offZap && this.offZap.start === z.start && this.offZap.length === z.length
      && !(this.series && this.customBars !== 0 && !this.mappings.hasDeviceMapping())) {
      (reasons ??= []).push('same range zapped while memory stayed disabled (or the DMABUFs revoked), with no ok fault since');
      // which of the two held (a reset puts the device in D0 while its DMABUFs stay revoked)
      facts = { memoryEnabled: this.k.memoryEnabledValue(), revoked: this.k.revoked };
    }
    if (reasons) {
      const rule = repeat ? RULES.redundantRepeat : reasons[0]!.startsWith('same range zapped while') ? RULES.redundantMemoryOff : RULES.redundantNoMapping;
      e.hold(this.finding(FindingKind.REDUNDANT_ZAP, Severity.INFO, ts, e.id, rule,
        { wastedNs: z.durationNs, start: z.start, length: z.length, reasons, zapBarsOnRevoke: this.zapBarsOnRevoke, ...facts }, []));
    }
    if (kept === null) e.deviceZaps = [z];
    else if (kept.length < MAX_EPISODE_ZAPS) kept.push(z);
    for (let bar = 0; bar <= 5; bar++) if (zapReachesBar(z.start, z.length, bar)) e.zapBars |= 1 << bar;
    e.zapNs += z.durationNs;
    e.zapCount++;
    e.noteRevokeStep(ts, z.durationNs);
    const off = !this.k.memoryEnabledValue() && this.k.memoryEnabledKnown();
    this.offZap = off || (this.k.revokedKnown && this.k.revoked) ? { start: z.start, length: z.length } : null;
  }

  // vfio_pci_dma_buf_move(vdev, revoked): lockdep_assert_held_write(&vdev->memory_lock), then each DMABUF whose state
  // changes is marked and its importers told (dma_buf_move_notify / dma_buf_invalidate_mappings).
  // UNREVOKE_WITHOUT_REVOKE: an unrevoke that moved DMABUFs (dmabuf_count > 0) while the device was not revoked;
  // certain when "not revoked" is a fact (an unrevoke or DeviceInfo.revoked = false since the last revoke and loss).
  private onDmabufRevoke(ev: Event, ts: number): void {
    const r = ev.dmabufRevoke!;
    const count = r.dmabufCount ?? 0;
    if (count > 0 || !r.revoked) this.unpairedReported = false;
    const e = this.holder(ev, ts);
    if (e === 'not-held') this.lockNotHeld(ev, ts, { event: 'dmabuf_revoke', revoked: !!r.revoked, dmabufCount: count });
    const ep = e === 'not-held' ? null : e;
    if (r.revoked) {
      this.k.setRevoked(true);
      this.mappings.moveDmabufs(true);
      if (ep) {
        ep.dmabufRevokeNs += r.durationNs ?? 0;
        ep.dmabufCount += count;
        ep.noteRevokeStep(ts, r.durationNs ?? 0);
        ep.noteDeviceHasVmas(r.deviceHasVmas);
      }
      return;
    }
    // The kernel unrevokes only when __vfio_pci_memory_enabled(); a call that changed nothing is a no-op.
    const rev = this.k.revokedJudged();
    if (count > 0 && !rev.value) {
      const f = this.finding(FindingKind.UNREVOKE_WITHOUT_REVOKE, Severity.WARNING, ts, ep ? ep.id : '', RULES.unrevokeWithoutRevoke,
        { dmabufCount: count, revoked: false, tid: ev.tid ?? 0, comm: ev.comm ?? '' }, rev.unknown);
      if (ep) ep.hold(f); else this.emitFinding(f, ts, ts);
    }
    this.k.setRevoked(false);
    this.mappings.moveDmabufs(false);
    if (count > 0) this.k.setPermanent(false, true);
    this.k.memoryEnabledFact();
    this.offZap = null;
  }

  /** LOCK_NOT_HELD: what lockdep_assert_held_write(&vdev->memory_lock) checks in vfio_pci_zap_bars() and
   * vfio_pci_dma_buf_move(). Certain because the lock state is known: a LockRelease seen (free) or another task's
   * LockAcquire seen (held by it), with no loss since. */
  private lockNotHeld(ev: Event, ts: number, facts: Record<string, unknown>): void {
    const e = this.episode;
    this.emitFinding(this.finding(FindingKind.LOCK_NOT_HELD, Severity.CRITICAL, ts, '', RULES.lockNotHeld,
      { ...facts, tid: ev.tid ?? 0, comm: ev.comm ?? '', holderTid: e ? e.tid : null, holderEpisodeId: e ? e.id : null }, []), ts, ts);
  }

  // ---------------------------------------------------------------- release and the release-time rules

  /** LOCK_HELD_OPEN: memory_lock held for write longer than the limit (down_write with no up_write) by `now`, the
   * host's time (events or heartbeats). Certain when the acquire was observed and no events were lost since. */
  checkOpen(now: number): void {
    const e = this.episode;
    if (!e || e.openFlagged || e.unobserved) return;
    const limit = this.ctx.opts.openLockLimitNs;
    if (now - e.acquireTs <= limit) return;
    e.openFlagged = true;
    const ts = e.acquireTs + limit;
    this.emitFinding(this.finding(FindingKind.LOCK_HELD_OPEN, Severity.WARNING, ts, e.id, RULES.lockHeldOpen,
      { acquireTsNs: e.acquireTs, limitNs: limit, tid: e.tid, comm: e.comm, trigger: TriggerKind[e.trigger] }, []), e.acquireTs, now);
  }

  /** up_write(&vdev->memory_lock): close the episode, apply the release-time rules. */
  release(ts: number, seenRelease: boolean): void {
    const e = this.episode!;
    this.episode = null;
    this.lockKnown = this.lockKnown || seenRelease;
    e.releaseTs = ts;
    const from = Math.min(e.unobserved ? ts : e.acquireTs, e.firstTriggerTs);
    if (!seenRelease || e.unobserved || this.ctx.lossTouches(from, ts)) e.complete = false;
    if (e.isRevoke && !e.closes && !e.unobserved) this.checkSkippedZap(e, ts);
    if (!e.unobserved) this.checkUnpaired(e, ts);
    const revokeNs = e.revokeNs;
    if (revokeNs > this.ctx.opts.slowRevokeLimitNs) {
      e.hold(this.finding(FindingKind.SLOW_REVOKE, Severity.WARNING, e.lastRevokeEnd, e.id, RULES.slowRevoke,
        { revokeNs, limitNs: this.ctx.opts.slowRevokeLimitNs, zapNs: e.zapNs, dmabufRevokeNs: e.dmabufRevokeNs, moveNs: e.moveNs,
          importerCount: e.importerCount, slowestImporter: e.slowest }, []));
    }
    if (e.permanent) this.k.setPermanent(true, e.triggerFact);
    if (e.closes) { // vfio_pci_dma_buf_cleanup(): the device keeps no DMABUFs
      this.k.setRevoked(false);
      this.k.setPermanent(false, true);
    }
    // Hosts that report trigger returns: the episode waits (at most the attach window) for its TriggerEnd.
    if (this.ctx.hasTriggerEnd && e.trigger !== TriggerKind.TRIGGER_UNSPECIFIED && seenRelease) {
      (this.closing ??= []).push(e);
      return;
    }
    this.emitEpisode(e);
  }

  /** Emit released episodes whose TriggerEnd did not come within the attach window (before `watermark`). */
  flushClosing(watermark: number): void {
    const c = this.closing;
    if (!c) return;
    const window = this.ctx.opts.triggerAttachNs;
    while (c.length > 0 && c[0]!.releaseTs + window < watermark) this.emitEpisode(c.shift()!);
    if (c.length === 0) this.closing = null;
  }

  /** Everything still waiting (end of input). */
  flushAllClosing(): void {
    const c = this.closing;
    this.closing = null;
    if (c) for (const e of c) this.emitEpisode(e);
  }

  private emitEpisode(e: OpenEpisode): void {
    const release = e.releaseTs;
    const w = this.ctx.workload(e.cgroupId) ?? NO_WORKLOAD;
    this.ctx.emitEpisode({
      episodeId: e.id, hostname: this.ctx.hostname, bootId: this.ctx.bootId, device: this.device, driver: this.driver,
      kernelRelease: this.ctx.kernelRelease, trigger: e.trigger, groupId: e.groupId, acquireTsNs: e.acquireTs,
      releaseTsNs: release, revoke: e.isRevoke, lockWaitNs: e.waitNs, holdNs: e.unobserved ? 0 : release - e.acquireTs,
      revokeNs: e.revokeNs, zapNs: e.zapNs, dmabufRevokeNs: e.dmabufRevokeNs, moveNs: e.moveNs, zapCount: e.zapCount,
      dmabufCount: e.dmabufCount, importerCount: e.importerCount, legacyMappings: e.legacyMappings, dmabufMappings: e.dmabufMappings,
      complete: e.complete, pid: e.pid, comm: e.comm, triggerRet: e.triggerRet, staleTriggers: e.staleTriggers,
      intendedEmptyZaps: e.intendedEmptyZaps, cgroupId: e.cgroupId, vm: w.vm, podUid: w.podUid, podName: w.podName, containerId: w.containerId,
      acquireStackId: e.acquireStackId,
    });
    for (const f of e.held ?? []) {
      if (!e.complete) markInconclusive(f, e.unobserved ? 'episode: its start was not observed' : 'episode: touched by lost events');
      this.ctx.emitFinding(f);
    }
    e.held = null;
  }

  // SKIPPED_ZAP: a revoke that left a device-fd mapping reachable. Certain on these facts: 6.11 up to the series, a
  // revoking trigger known to belong to the episode (seen inside it, or named on a host that reports trigger
  // returns) and no DEVICE zap (vfio_pci_zap_and_down_write_memory_lock() / vfio_pci_zap_bars() zap on every such
  // path); DmaBufRevoke.device_has_vmas = true and no DEVICE zap (the vdev inode had VMAs); pre-6.11 and the series,
  // a known mapping list (DeviceInfo or snapshot, no loss since) with a live device-fd mapping no zap reached
  // (vfio_pci_zap_and_vma_lock() / the series' vfio_pci_zap_revoke_bars()).
  private checkSkippedZap(e: OpenEpisode, ts: number): void {
    const zaps = e.zapCount; // DEVICE zaps
    const trig = TriggerKind[e.trigger];
    const unknown: string[] = e.zapsIncomplete ? [ZAPS_NOT_KEPT] : [];
    if (e.deviceHasVmas === true && zaps === 0) {
      // A revoke saw VMAs in the vdev inode mapping and nothing zapped it: in every era and on every path (the close
      // cleanup cannot run while the device file is mapped) a device-fd mapping stayed reachable.
      const populated = this.mappings.hasPopulatedDeviceMapping();
      e.hold(this.finding(FindingKind.SKIPPED_ZAP, populated ? Severity.CRITICAL : Severity.WARNING, ts, e.id, RULES.skippedUnseen,
        { trigger: trig, deviceHasVmas: true, deviceZaps: 0, populatedMapping: populated,
          mappingState: this.mappings.known ? 'known' : 'unknown' }, unknown));
      return;
    }
    if (this.ctx.zapsUnderLock && this.ctx.hasDmabufRevoke && !this.dmabufBarMmapKnown) {
      unknown.push('dmabuf_bar_mmap: no DeviceInfo for the device, whether the series is applied is unknown');
    }
    if (this.ctx.zapsUnderLock && !this.series && e.triggerRevokes) {
      // 6.11 up to the series: every revoking path zaps through vfio_pci_zap_and_down_write_memory_lock() /
      // vfio_pci_zap_bars(), whatever is mapped.
      if (zaps > 0) return;
      if (!e.triggerRevokesFact) unknown.push(TRIGGER_GUESS);
      const populated = this.mappings.hasPopulatedDeviceMapping();
      e.hold(this.finding(FindingKind.SKIPPED_ZAP, populated ? Severity.CRITICAL : Severity.WARNING, ts, e.id, RULES.skippedUnconditional,
        { trigger: trig, deviceZaps: 0, populatedMapping: populated, mappingState: this.mappings.known ? 'known' : 'unknown',
          zapBarsOnRevoke: this.zapBarsOnRevoke }, unknown));
      return;
    }
    // Pre-6.11 and the series (and an unknown era, or a revoke whose path no trigger named): the rule rests on the
    // mappings.
    if (e.deviceHasVmas === false) return; // kernel fact: the vdev inode mapping had no VMAs
    if (!this.ctx.zapsBeforeLock && !this.ctx.zapsUnderLock) unknown.push('kernel release: unknown era');
    else if (this.ctx.zapsUnderLock && !this.series && zaps === 0) {
      // A DMABUF revoke without a zap is right for the close cleanup (no mapping of the device file can be left).
      unknown.push('trigger: none named this revoke, its kernel path is unknown');
    }
    if (!e.revokedSomething && !e.triggerRevokesFact) unknown.push(TRIGGER_GUESS);
    const rule = this.ctx.zapsBeforeLock ? RULES.skippedPre611 : RULES.skippedMapping;
    if (this.mappings.known) {
      // Before 6.11 vfio_pci_zap_and_vma_lock() zaps only the VMAs on vdev->vma_list, which the fault handler adds at
      // first fault: a never-faulted mapping has no PTEs and needs no zap.
      if (!this.mappings.hasUncovered(e.zapBars, this.ctx.zapsBeforeLock)) return; // the usual case, nothing built
      const uncovered = this.mappings.deviceMappings()
        .filter(([, m]) => ((e.zapBars >> m.bar) & 1) === 0)
        .filter(([, m]) => m.populated || !this.ctx.zapsBeforeLock);
      if (uncovered.length > 0) {
        // Before 6.11 only a faulted VMA is on vdev->vma_list: a mapping populated only by the start snapshot's word
        // may have had its PTEs zapped before the collector started.
        if (this.ctx.zapsBeforeLock && !uncovered.some(([, m]) => m.faulted)) unknown.push('populated: assumed from the start snapshot, no fault seen');
        const severity = uncovered.some(([, m]) => m.populated) ? Severity.CRITICAL : Severity.WARNING;
        e.hold(this.finding(FindingKind.SKIPPED_ZAP, severity, ts, e.id, rule,
          { trigger: trig, uncovered: uncovered.map(([id, m]) => ({ mappingId: id, bar: m.bar, backing: Backing[m.backing], populated: m.populated })),
            deviceZaps: zaps, zapBarsOnRevoke: this.zapBarsOnRevoke }, unknown));
      }
      return;
    }
    if (zaps > 0) return;
    unknown.push(this.mappings.overflowed ? `mappings: more than ${MAX_MAPPINGS} live mappings of the device, the list was dropped`
      : 'mappings: no DeviceInfo or snapshot for the device since the collector started or lost events');
    e.hold(this.finding(FindingKind.SKIPPED_ZAP, Severity.WARNING, ts, e.id, rule,
      { trigger: trig, mappingState: 'unknown', deviceHasVmas: null, deviceZaps: 0 }, unknown));
  }

  // UNPAIRED_REVOKE: every write section that leaves memory enabled unrevokes before up_write
  // (vfio_pci_dma_buf_move(vdev, false) when __vfio_pci_memory_enabled()); a PERMANENT_REVOKE or a closing device
  // stays revoked. Reported once: at the first release that leaves the device revoked with memory enabled, not again
  // until the DMABUFs move. Certain when revoked (a DmaBufRevoke{revoked:true} seen), memory enabled (DeviceInfo, an
  // ok fault, an unrevoke, or a state change of a known trigger) and open (DeviceInfo.open_count, OPEN, an mmap or a
  // fault) are all kernel facts since the last loss.
  private checkUnpaired(e: OpenEpisode, ts: number): void {
    if (e.permanent || e.closes || this.unpairedReported) return;
    const k = this.k;
    if (!k.revoked || (this.series && k.permanent) || !k.memoryEnabledValue() || !k.open) return; // the common case, no allocation
    const rev = k.revokedJudged();
    if (!rev.value) return;
    // The permanent revoke exists only with the series.
    const perm = this.series ? this.k.permanentJudged() : { value: false, unknown: [] };
    if (perm.value) return;
    const mem = this.k.memoryEnabled();
    if (!mem.value) return;
    const open = this.k.openJudged();
    if (!open.value) return;
    const unknown = [...rev.unknown, ...perm.unknown, ...mem.unknown, ...open.unknown];
    this.unpairedReported = true;
    e.hold(this.finding(FindingKind.UNPAIRED_REVOKE, Severity.WARNING, ts, e.id, RULES.unpaired,
      { trigger: TriggerKind[e.trigger], revoked: true, memoryEnabled: true, open: true }, unknown));
  }

  // ---------------------------------------------------------------- outputs

  private finding(kind: FindingKindT, severity: SeverityT, ts: number, episodeId: string, rule: Rule,
    facts: Record<string, unknown>, unknown: readonly string[]): Finding {
    // a finding made while applying an event rests on it (the zap, fault or revoke): its kernel stack, when it has one
    const stackId = Number(this.current?.stackId ?? 0);
    return makeFinding(this.ctx, this.device, this.driver, kind, severity, ts, episodeId, rule, stackId ? { ...facts, stackId } : facts, unknown);
  }

  /** A finding outside a released episode: inconclusive when loss touched its time span. */
  private emitFinding(f: Finding, from: number, to: number): void {
    if (this.ctx.lossTouches(from - 1, to)) markInconclusive(f, 'moment: touched by lost events');
    this.ctx.emitFinding(f);
  }
}
