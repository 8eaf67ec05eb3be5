// One memory_lock write section of a device: LockAcquire → LockRelease (docs/rules.md §3).
import { zapReachesBar } from './mapping.js';
import { TriggerKind, triggerRequiresRevoke, type Finding, type TriggerKind as TriggerKindT } from '../model.js';

export interface DeviceZap {
  ts: number;
  start: number;
  length: number;
  durationNs: number;
  /** An ok BarFault hit the device after this zap (so a later zap of the range is not a repeat). */
  faultSince: boolean;
}

/** DEVICE zaps kept per episode for REDUNDANT_ZAP's repeat check: each zap compares with the kept ones, so an episode
 * of a host that zaps without end costs bounded work per zap (later repeats go unreported: an INFO finding). */
export const MAX_EPISODE_ZAPS = 64;

/** Slowest importer callback seen in the episode (dma_buf_move_notify / dma_buf_invalidate_mappings). */
export interface SlowestMove { dmabufId: number; durationNs: number; importerCount: number }

export class OpenEpisode {
  trigger: TriggerKindT = TriggerKind.TRIGGER_UNSPECIFIED;
  groupId = 0;
  /** The trigger naming the episode is a kernel fact (seen inside the window, or named across the lock boundary on a
   * host that reports trigger returns). */
  triggerFact = false;
  /** A revocation-requiring trigger is attached; and whether that attachment is a fact. */
  triggerRevokes = false;
  triggerRevokesFact = false;
  /** ts of the earliest trigger attached (the episode's completeness window starts there). */
  firstTriggerTs = Infinity;
  /** PERMANENT_REVOKE: the DMABUFs are meant to stay revoked. */
  permanent = false;
  closes = false;
  /** Saw a DEVICE zap or DmaBufRevoke{revoked:true}. */
  revokedSomething = false;
  /** Start of the revoke: acquire, or earlier when pre-6.11 zaps ran before down_write. */
  revokeStart: number;
  lastRevokeEnd = -1;
  zapNs = 0;
  zapCount = 0;
  dmabufRevokeNs = 0;
  moveNs = 0;
  dmabufCount = 0;
  importerCount = 0;
  slowest: SlowestMove | null = null;
  /** The episode's DEVICE zaps, the first MAX_EPISODE_ZAPS of them (for repeats; zapCount counts them all); null until
   * the first. */
  deviceZaps: DeviceZap[] | null = null;
  /** BARs 0..5 that some DEVICE zap of the episode reached (zapReachesBar), as bits: every zap counts. */
  zapBars = 0;
  /** Zaps that waited for this episode's down_write may have been dropped (too many waited): coverage is not a fact. */
  zapsIncomplete = false;
  /** DmaBufRevoke.device_has_vmas: true if any revoke saw vdev inode VMAs, false if all said none. */
  deviceHasVmas: boolean | undefined = undefined;
  /** A DEVICE zap with had_vmas = false (the vdev inode mapping had no VMA at entry). */
  zapHadNoVmas = false;
  staleTriggers = 0;
  intendedEmptyZaps = 0;
  triggerRet = 0;
  /** Findings raised inside the episode, emitted with it once completeness is known. */
  held: Finding[] | null = null;
  openFlagged = false;
  /** Set at release; the episode then waits for its TriggerEnd (hosts with TRIGGER_END) before it is emitted. */
  releaseTs = -1;
  complete = true;
  /** The acquiring task's cgroup (LockAcquire.cgroup_id) and the acquire's kernel stack; 0 = not read. */
  cgroupId = 0;
  acquireStackId = 0;

  constructor(
    readonly id: string,
    /** 0: the episode began before observation (collector start or loss inside the write section). */
    readonly acquireTs: number,
    readonly waitNs: number,
    readonly tid: number,
    readonly pid: number,
    readonly comm: string,
    readonly legacyMappings: number,
    readonly dmabufMappings: number,
  ) {
    this.revokeStart = acquireTs;
  }

  get unobserved(): boolean { return this.acquireTs === 0; }

  toState(): Record<string, unknown> {
    return { ...(this as unknown as Record<string, unknown>), deviceZaps: this.deviceZaps?.map((z) => ({ ...z })) ?? null,
      held: this.held?.map((f) => ({ ...f })) ?? null, slowest: this.slowest ? { ...this.slowest } : null };
  }

  static fromState(s: Record<string, unknown>): OpenEpisode {
    const e = new OpenEpisode(s.id as string, s.acquireTs as number, s.waitNs as number, s.tid as number, s.pid as number,
      s.comm as string, s.legacyMappings as number, s.dmabufMappings as number);
    Object.assign(e, s);
    if (s.zapBars === undefined) { // a checkpoint from before zapBars: the zaps it kept say which BARs were reached
      for (const z of e.deviceZaps ?? []) for (let bar = 0; bar <= 5; bar++) if (zapReachesBar(z.start, z.length, bar)) e.zapBars |= 1 << bar;
    }
    return e;
  }

  hold(f: Finding): void {
    (this.held ??= []).push(f);
  }

  addTrigger(kind: TriggerKindT, groupId: number, fact: boolean, ts: number): void {
    const revokes = triggerRequiresRevoke(kind);
    // The episode is named after its first revoking trigger, else its first trigger.
    if (this.trigger === TriggerKind.TRIGGER_UNSPECIFIED || (revokes && !this.triggerRevokes)) {
      this.trigger = kind;
      this.groupId = groupId;
      this.triggerFact = fact;
    }
    if (revokes) {
      this.triggerRevokes = true;
      if (fact) this.triggerRevokesFact = true;
    }
    if (ts < this.firstTriggerTs) this.firstTriggerTs = ts;
    if (kind === TriggerKind.PERMANENT_REVOKE) this.permanent = true;
    if (kind === TriggerKind.CLOSE) this.closes = true;
  }

  noteRevokeStep(ts: number, durationNs: number): void {
    this.revokedSomething = true;
    const end = ts + durationNs;
    if (end > this.lastRevokeEnd) this.lastRevokeEnd = end;
    if (ts < this.revokeStart) this.revokeStart = ts;
  }

  noteDeviceHasVmas(v: boolean | null | undefined): void {
    if (v === true) this.deviceHasVmas = true;
    else if (v === false && this.deviceHasVmas === undefined) this.deviceHasVmas = false;
  }

  noteMove(dmabufId: number, durationNs: number, importerCount: number): void {
    this.moveNs += durationNs;
    this.importerCount += importerCount;
    if (!this.slowest || durationNs > this.slowest.durationNs) this.slowest = { dmabufId, durationNs, importerCount };
  }

  get isRevoke(): boolean {
    return this.revokedSomething || this.triggerRevokes;
  }

  /** revoke_ns: end of the last revoking step − start of the revoke; 0 when nothing was revoked or the start of
   * the episode was not observed. */
  get revokeNs(): number {
    return this.revokedSomething && !this.unobserved ? Math.max(0, this.lastRevokeEnd - this.revokeStart) : 0;
  }
}
