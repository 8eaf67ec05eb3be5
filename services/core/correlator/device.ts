// Per-device state machine (DESIGN §4): mapping state, memory/revoke state, the open episode and the finding
// rules. Events arrive here in ts order (the host tracker reorders them). Pure: no I/O, no clocks.
import { emptyPrefix, extendId, idOfNumber, type IdPrefix } from '../ids.js';
import {
  Backing, FindingKind, Severity, TriggerKind, ZapTarget, bodyOf, memoryEnabledAfter,
  type Event, type Finding, type FindingKind as FindingKindT, type Severity as SeverityT, type TriggerKind as TriggerKindT,
} from '../model.js';
import type { HostContext } from './context.js';
import { OpenEpisode, type DeviceZap } from './episode.js';
import { makeFinding } from './findings.js';
import { MappingState, zapReachesBar } from './mapping.js';

interface PendingTrigger { ts: number; tid: number; kind: TriggerKindT; groupId: number }
interface PendingZap { ts: number; tid: number; start: number; length: number; durationNs: number }

/** A device tracker as plain data (correlator checkpoints). */
export interface DeviceState {
  device: string; driver: string; zapBarsOnRevoke: boolean; dmabufBarMmap: boolean;
  mappings: ReturnType<MappingState['toState']>; memoryEnabled: boolean; revoked: boolean;
  episode: Record<string, unknown> | null; pendingTriggers: PendingTrigger[] | null; pendingZaps: PendingZap[] | null;
}

export class DeviceTracker {
  driver = '';
  zapBarsOnRevoke = false;
  /** DeviceInfo.dmabuf_bar_mmap: core BAR mmaps are DMABUF-backed (the series is applied). */
  dmabufBarMmap = false;
  mappings = new MappingState();
  /** __vfio_pci_memory_enabled(): PCI_COMMAND_MEMORY set and the device in D0. */
  memoryEnabled = true;
  /** The device's DMABUFs are revoked (last vfio_pci_dma_buf_move had revoked=true). */
  revoked = false;
  episode: OpenEpisode | null = null;
  private pendingTriggers: PendingTrigger[] | null = null;
  private pendingZaps: PendingZap[] | null = null;

  /** Episode ids hash (hostname, boot_id, device, acquire ts): the first three once per device. */
  private readonly idPrefix: IdPrefix;

  constructor(readonly device: string, private readonly ctx: HostContext) {
    this.idPrefix = extendId(emptyPrefix, ctx.hostname, ctx.bootId, device);
  }

  toState(): DeviceState {
    return {
      device: this.device, driver: this.driver, zapBarsOnRevoke: this.zapBarsOnRevoke, dmabufBarMmap: this.dmabufBarMmap,
      mappings: this.mappings.toState(), memoryEnabled: this.memoryEnabled, revoked: this.revoked,
      episode: this.episode?.toState() ?? null, pendingTriggers: this.pendingTriggers, pendingZaps: this.pendingZaps,
    };
  }

  static fromState(s: DeviceState, ctx: HostContext): DeviceTracker {
    const d = new DeviceTracker(s.device, ctx);
    d.driver = s.driver; d.zapBarsOnRevoke = s.zapBarsOnRevoke; d.dmabufBarMmap = s.dmabufBarMmap;
    d.mappings = MappingState.fromState(s.mappings);
    d.memoryEnabled = s.memoryEnabled; d.revoked = s.revoked;
    d.episode = s.episode ? OpenEpisode.fromState(s.episode) : null;
    d.pendingTriggers = s.pendingTriggers; d.pendingZaps = s.pendingZaps;
    return d;
  }

  apply(ev: Event, ts: number): void {
    switch (bodyOf(ev)) {
      case 'deviceInfo': {
        const info = ev.deviceInfo!;
        this.driver = info.driver ?? '';
        this.zapBarsOnRevoke = !!info.zapBarsOnRevoke;
        this.dmabufBarMmap = !!info.dmabufBarMmap;
        this.mappings.known = true;
        return;
      }
      case 'barMmap': {
        const m = ev.barMmap!;
        // Before DMABUF export every BAR mmap is a classic vfio-pci mmap of the device fd.
        const backing = !this.ctx.hasDmabufRevoke || !m.backing ? Backing.LEGACY : m.backing;
        this.mappings.add(m.mappingId ?? 0, { bar: m.bar ?? 0, backing, populated: !!m.snapshot });
        if (m.snapshot) this.mappings.known = true;
        return;
      }
      case 'barMunmap':
        this.mappings.remove(ev.barMunmap!.mappingId ?? 0);
        return;
      case 'barFault':
        return this.onFault(ev);
      case 'trigger':
        return this.onTrigger(ev, ts);
      case 'lockAcquire':
        return this.onAcquire(ev, ts);
      case 'lockRelease':
        if (this.episode) this.release(ts, true);
        return;
      case 'zap':
        return this.onZap(ev, ts);
      case 'dmabufRevoke':
        return this.onDmabufRevoke(ev, ts);
      case 'moveNotify': {
        // dma_buf_move_notify()/dma_buf_invalidate_mappings() from vfio_pci_dma_buf_move(): importer cost.
        const e = this.episode;
        if (e) { e.moveNs += ev.moveNotify!.durationNs ?? 0; e.importerCount += ev.moveNotify!.importerCount ?? 0; }
        return;
      }
      default:
        return;
    }
  }

  // vfio_pci_mmap_huge_fault(): installs PTEs under memory_lock held for read.
  private onFault(ev: Event): void {
    const f = ev.barFault!;
    if (!f.ok) return;
    const id = f.mappingId ?? 0;
    const m = this.mappings.get(id);
    if (m) m.populated = true;
    else if (!this.dmabufBarMmap) {
      // A fault proves a mapping the collector did not see being made; without DMABUF-backed BAR mmaps
      // it can only be a device-fd (legacy) mapping.
      this.mappings.add(id, { bar: f.bar ?? 0, backing: Backing.LEGACY, populated: true });
    }
    if (this.episode) for (const z of this.episode.deviceZaps) z.faultSince = true;
  }

  // Config writes (vfio_basic_config_write), ioctls (vfio_pci_ioctl_reset) and PM paths announce themselves
  // before down_write(&vdev->memory_lock); those attach to the same task's next episode.
  private onTrigger(ev: Event, ts: number): void {
    const t = ev.trigger!;
    const kind = t.kind ?? TriggerKind.TRIGGER_UNSPECIFIED;
    const mem = memoryEnabledAfter(kind);
    if (mem !== undefined) this.memoryEnabled = mem;
    if (this.episode) {
      this.episode.addTrigger(kind, t.groupId ?? 0);
      return;
    }
    const pending = (this.pendingTriggers ??= []);
    pending.push({ ts, tid: ev.tid ?? 0, kind, groupId: t.groupId ?? 0 });
    if (pending.length > 16) pending.shift();
  }

  private onAcquire(ev: Event, ts: number): void {
    if (this.episode) this.release(ts, false); // a release was lost: close the old episode as incomplete
    const tid = ev.tid ?? 0;
    const counts = this.mappings.count();
    const e = new OpenEpisode(idOfNumber(this.idPrefix, ts), ts,
      ev.lockAcquire!.waitNs ?? 0, tid, counts.device, counts.dmabuf);
    this.episode = e;
    if (this.pendingTriggers) {
      this.pendingTriggers = this.claim(this.pendingTriggers, tid, ts, (p) => e.addTrigger(p.kind, p.groupId));
    }
    if (this.pendingZaps) {
      // Pre-6.11 vfio_pci_zap_and_down_write_memory_lock(): zap_vma_ptes per VMA, then down_write.
      this.pendingZaps = this.claim(this.pendingZaps, tid, ts, (z) => this.recordDeviceZap(e, z.ts, z, undefined));
    }
  }

  /** Hand this task's pending items (within the attach window) to `take`; keep other tasks' fresh ones. */
  private claim<T extends { ts: number; tid: number }>(items: T[], tid: number, ts: number, take: (item: T) => void): T[] | null {
    const window = this.ctx.opts.triggerAttachNs;
    const keep: T[] = [];
    for (const p of items) {
      if (ts - p.ts > window) continue;
      if (p.tid === tid) take(p); else keep.push(p);
    }
    return keep.length > 0 ? keep : null;
  }

  private onZap(ev: Event, ts: number): void {
    const z = ev.zap!;
    const start = z.start ?? 0, length = z.length ?? 0, durationNs = z.durationNs ?? 0;
    const e = this.episode;
    if (z.target === ZapTarget.DMABUF) {
      // A DMABUF file's own mapping, zapped inside that DMABUF's revoke: part of the revoke, not a BAR zap.
      if (e) e.noteRevokeStep(ts, durationNs);
      return;
    }
    this.mappings.zapDevice(start, length);
    if (e) {
      this.recordDeviceZap(e, ts, { start, length, durationNs }, z.hadVmas ?? undefined);
      return;
    }
    if (this.ctx.zapsBeforeLock) {
      (this.pendingZaps ??= []).push({ ts, tid: ev.tid ?? 0, start, length, durationNs });
      return;
    }
    // vfio_pci_zap_bars() does lockdep_assert_held_write(&vdev->memory_lock).
    this.emitNow(FindingKind.LOCK_NOT_HELD, Severity.CRITICAL, ts,
      { event: 'zap', start, length, durationNs, tid: ev.tid ?? 0, comm: ev.comm ?? '' });
  }

  private recordDeviceZap(e: OpenEpisode, ts: number, z: { start: number; length: number; durationNs: number },
    hadVmas: boolean | undefined): void {
    const reasons: string[] = [];
    // Series: the zap is only needed for mappings outside DMABUFs (vdev->zap_bars_on_revoke).
    if (this.ctx.hasDmabufRevoke && this.dmabufBarMmap) {
      if (hadVmas === false) reasons.push('had_vmas=false: the vdev inode mapping had no VMAs');
      else if (hadVmas === undefined && this.mappings.known && !this.mappings.hasDeviceMapping())
        reasons.push('no live non-DMABUF BAR mapping; BAR mmaps are DMABUF-backed');
    }
    const repeat = e.deviceZaps.find((p) => p.start === z.start && p.length === z.length && !p.faultSince);
    if (repeat) reasons.push(`same range zapped at ts ${repeat.ts} in this episode with no fault since`);
    if (reasons.length > 0) {
      e.hold(makeFinding(this.ctx, this.device, this.driver, FindingKind.REDUNDANT_ZAP, Severity.INFO, ts, e.id,
        { wastedNs: z.durationNs, start: z.start, length: z.length, reasons, zapBarsOnRevoke: this.zapBarsOnRevoke }, false));
    }
    const dz: DeviceZap = { ts, start: z.start, length: z.length, durationNs: z.durationNs, faultSince: false };
    e.deviceZaps.push(dz);
    e.zapNs += z.durationNs;
    e.zapCount++;
    e.noteRevokeStep(ts, z.durationNs);
  }

  // vfio_pci_dma_buf_move(vdev, revoked): lockdep_assert_held_write(&vdev->memory_lock), then per DMABUF
  // mark revoked and dma_buf_move_notify().
  private onDmabufRevoke(ev: Event, ts: number): void {
    const r = ev.dmabufRevoke!;
    const e = this.episode;
    if (!e) {
      this.emitNow(FindingKind.LOCK_NOT_HELD, Severity.CRITICAL, ts,
        { event: 'dmabuf_revoke', revoked: !!r.revoked, tid: ev.tid ?? 0, comm: ev.comm ?? '' });
    }
    if (r.revoked) {
      this.revoked = true;
      this.mappings.revokeDmabufs();
      if (e) {
        e.dmabufRevokeNs += r.durationNs ?? 0;
        e.dmabufCount += r.dmabufCount ?? 0;
        e.noteRevokeStep(ts, r.durationNs ?? 0);
        e.noteDeviceHasVmas(r.deviceHasVmas);
      }
      return;
    }
    if (!this.revoked) {
      const f = makeFinding(this.ctx, this.device, this.driver, FindingKind.UNREVOKE_WITHOUT_REVOKE, Severity.WARNING, ts,
        e ? e.id : '', { dmabufCount: r.dmabufCount ?? 0, stateKnown: this.mappings.known }, !this.mappings.known);
      if (e) e.hold(f); else this.emitFinding(f, ts, ts);
    }
    this.revoked = false;
  }

  /** LOCK_HELD_OPEN: memory_lock held for write longer than the limit, no release seen by `now`. */
  checkOpen(now: number): void {
    const e = this.episode;
    if (!e || e.openFlagged) return;
    const limit = this.ctx.opts.openLockLimitNs;
    if (now - e.acquireTs <= limit) return;
    e.openFlagged = true;
    const ts = e.acquireTs + limit;
    this.emitFinding(makeFinding(this.ctx, this.device, this.driver, FindingKind.LOCK_HELD_OPEN, Severity.WARNING, ts, e.id,
      { acquireTsNs: e.acquireTs, limitNs: limit, tid: e.tid, trigger: TriggerKind[e.trigger] }, false), e.acquireTs, ts);
  }

  /** up_write(&vdev->memory_lock): close the episode, apply the release-time rules, emit. */
  release(ts: number, seenRelease: boolean): void {
    const e = this.episode!;
    this.episode = null;
    const complete = seenRelease && !this.ctx.lossTouches(e.acquireTs, ts);
    const findings = e.held ?? [];
    if (e.isRevoke) this.checkSkippedZap(e, ts, findings);
    // The kernel unrevokes before up_write whenever __vfio_pci_memory_enabled() (vfio_pci_dma_buf_move(vdev,
    // false)); a PERMANENT_REVOKE (or a closing device) is meant to stay revoked.
    if (this.revoked && this.memoryEnabled && !e.staysRevoked) {
      findings.push(makeFinding(this.ctx, this.device, this.driver, FindingKind.UNPAIRED_REVOKE, Severity.WARNING, ts, e.id,
        { trigger: TriggerKind[e.trigger], memoryEnabled: true }, false));
    }
    const revokeNs = e.revokeNs;
    if (revokeNs > this.ctx.opts.slowRevokeLimitNs) {
      findings.push(makeFinding(this.ctx, this.device, this.driver, FindingKind.SLOW_REVOKE, Severity.WARNING, e.lastRevokeEnd, e.id,
        { revokeNs, limitNs: this.ctx.opts.slowRevokeLimitNs, zapNs: e.zapNs, dmabufRevokeNs: e.dmabufRevokeNs, moveNs: e.moveNs,
          importerCount: e.importerCount }, false));
    }
    if (e.closes) this.revoked = false; // vfio_pci_dma_buf_cleanup(): the DMABUFs are gone with the device fd
    this.ctx.emitEpisode({
      episodeId: e.id, hostname: this.ctx.hostname, bootId: this.ctx.bootId, device: this.device, driver: this.driver,
      kernelRelease: this.ctx.kernelRelease, trigger: e.trigger, groupId: e.groupId, acquireTsNs: e.acquireTs,
      releaseTsNs: ts, revoke: e.isRevoke, lockWaitNs: e.waitNs, holdNs: ts - e.acquireTs, revokeNs, zapNs: e.zapNs,
      dmabufRevokeNs: e.dmabufRevokeNs, moveNs: e.moveNs, zapCount: e.zapCount, dmabufCount: e.dmabufCount,
      importerCount: e.importerCount, legacyMappings: e.legacyMappings, dmabufMappings: e.dmabufMappings, complete,
      pid: 0, comm: '', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0,
    });
    for (const f of findings) {
      if (!complete) f.inconclusive = true;
      this.ctx.emitFinding(f);
    }
  }

  // SKIPPED_ZAP: a revoke that left a non-DMABUF mapping reachable. Mirrors the series'
  // vfio_pci_zap_revoke_bars(): unmap_mapping_range() only if vdev->zap_bars_on_revoke.
  private checkSkippedZap(e: OpenEpisode, ts: number, out: Finding[]): void {
    if (e.deviceHasVmas === false) return; // kernel fact: the vdev inode mapping had no VMAs
    const zaps = e.deviceZaps;
    let severity: SeverityT = Severity.WARNING;
    let inconclusive = false;
    let evidence: Record<string, unknown>;
    if (this.mappings.known) {
      // Before 6.11 vfio_pci_zap_and_vma_lock() zaps only the VMAs on vdev->vma_list, which
      // vfio_pci_mmap_fault() adds at first fault: a never-faulted mapping has no PTEs and needs no zap.
      const uncovered = this.mappings.deviceMappings()
        .filter(([, m]) => !zaps.some((z) => zapReachesBar(z.start, z.length, m.bar)))
        .filter(([, m]) => m.populated || !this.ctx.zapsBeforeLock);
      if (uncovered.length > 0) {
        if (uncovered.some(([, m]) => m.populated)) severity = Severity.CRITICAL;
        evidence = { uncovered: uncovered.map(([id, m]) => ({ mappingId: id, bar: m.bar, backing: Backing[m.backing], populated: m.populated })),
          deviceZaps: zaps.length, zapBarsOnRevoke: this.zapBarsOnRevoke };
      } else if (e.deviceHasVmas === true && zaps.length === 0) {
        evidence = { deviceHasVmas: true, deviceZaps: 0, note: 'a non-DMABUF mapping the collector did not see' };
      } else return;
    } else {
      if (zaps.length > 0) return;
      inconclusive = e.deviceHasVmas !== true; // unknown mapping state, unless the kernel told us
      evidence = { mappingState: 'unknown', deviceHasVmas: e.deviceHasVmas ?? null, deviceZaps: 0 };
    }
    out.push(makeFinding(this.ctx, this.device, this.driver, FindingKind.SKIPPED_ZAP, severity, ts, e.id,
      { ...evidence, trigger: TriggerKind[e.trigger] }, inconclusive));
  }

  private emitNow(kind: FindingKindT, severity: SeverityT, ts: number, evidence: Record<string, unknown>): void {
    this.emitFinding(makeFinding(this.ctx, this.device, this.driver, kind, severity, ts, '', evidence, false), ts, ts);
  }

  /** A finding outside a released episode: inconclusive when loss touched its time span. */
  private emitFinding(f: Finding, from: number, to: number): void {
    if (this.ctx.lossTouches(from - 1, to)) f.inconclusive = true;
    this.ctx.emitFinding(f);
  }
}
