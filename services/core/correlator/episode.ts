// One memory_lock write section of a device: LockAcquire → LockRelease (DESIGN §4 "Episode").
import { TriggerKind, triggerRequiresRevoke, type Finding, type TriggerKind as TriggerKindT } from '../model.js';

export interface DeviceZap {
  ts: number;
  start: number;
  length: number;
  durationNs: number;
  /** An ok BarFault hit the device after this zap (so a later zap of the range is not a repeat). */
  faultSince: boolean;
}

export class OpenEpisode {
  trigger: TriggerKindT = TriggerKind.TRIGGER_UNSPECIFIED;
  groupId = 0;
  /** Any trigger that requires revocation (RESET, FLR, MEM_DISABLE, …). */
  triggerRevokes = false;
  /** PERMANENT_REVOKE or CLOSE: the device is meant to stay revoked (no UNPAIRED_REVOKE). */
  staysRevoked = false;
  closes = false;
  /** Saw a Zap or DmaBufRevoke{revoked:true}. */
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
  deviceZaps: DeviceZap[] = [];
  /** DmaBufRevoke.device_has_vmas: true if any revoke saw vdev inode VMAs, false if all said none. */
  deviceHasVmas: boolean | undefined = undefined;
  /** Findings raised inside the episode, emitted at release once completeness is known. */
  held: Finding[] | null = null;
  openFlagged = false;

  constructor(
    readonly id: string,
    readonly acquireTs: number,
    readonly waitNs: number,
    readonly tid: number,
    readonly legacyMappings: number,
    readonly dmabufMappings: number,
  ) {
    this.revokeStart = acquireTs;
  }

  toState(): Record<string, unknown> {
    return { ...(this as unknown as Record<string, unknown>), deviceZaps: this.deviceZaps.map((z) => ({ ...z })), held: this.held?.map((f) => ({ ...f })) ?? null };
  }

  static fromState(s: Record<string, unknown>): OpenEpisode {
    const e = new OpenEpisode(s.id as string, s.acquireTs as number, s.waitNs as number, s.tid as number,
      s.legacyMappings as number, s.dmabufMappings as number);
    return Object.assign(e, s);
  }

  hold(f: Finding): void {
    (this.held ??= []).push(f);
  }

  addTrigger(kind: TriggerKindT, groupId: number): void {
    const revokes = triggerRequiresRevoke(kind);
    // The episode is named after its first revoking trigger, else its first trigger.
    if (this.trigger === TriggerKind.TRIGGER_UNSPECIFIED || (revokes && !this.triggerRevokes)) {
      this.trigger = kind;
      this.groupId = groupId;
    }
    if (revokes) this.triggerRevokes = true;
    if (kind === TriggerKind.PERMANENT_REVOKE || kind === TriggerKind.CLOSE) this.staysRevoked = true;
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

  get isRevoke(): boolean {
    return this.revokedSomething || this.triggerRevokes;
  }

  /** revoke_ns: end of the last revoking step − start of the revoke; 0 when nothing was revoked. */
  get revokeNs(): number {
    return this.revokedSomething ? Math.max(0, this.lastRevokeEnd - this.revokeStart) : 0;
  }
}
