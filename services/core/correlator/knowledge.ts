// What the correlator knows of one device's state (docs/rules.md §2): every piece has a value and whether a kernel
// fact established it. Pieces not known take the old defaults (memory bit set, D0, not a VF, DMABUFs unrevoked, not
// permanently revoked, device open): a finding that holds only under them is inconclusive, never certain, and a
// finding the defaults rule out is not made. Loss on the host makes every piece that can change unknown again, with
// its default value. Pure.

/** Why a piece is unknown: no fact since the collector started, since the host lost events at `ts`, or since the
 * first write section seen (acquired at `ts`) named no trigger, so its path, and what it changed, is unknown. */
export type UnknownSince = { kind: 'start' } | { kind: 'loss'; ts: number } | { kind: 'untriggered'; ts: number }
  | { kind: 'opened'; ts: number } | { kind: 'closed'; ts: number };

/** Plain data, for correlator checkpoints. */
export interface KnowledgeState {
  memBit: boolean; memBitKnown: boolean; lowPower: boolean; lowPowerKnown: boolean; noCmd: boolean; noCmdKnown: boolean;
  memFact: boolean | null; revoked: boolean; revokedKnown: boolean; permanent: boolean; permanentKnown: boolean;
  open: boolean; openKnown: boolean; since: UnknownSince;
  /** Why memory is unknown when an open, not loss or start, made it so (null: `since` says). */
  memSince: UnknownSince | null;
  /** Tasks whose open of the device has not returned (TriggerEnd OPEN): DeviceInfo memory fields read meanwhile are
   * no facts (vfio_pci_core_enable() is rewriting them). */
  opening: number[];
}

/** A value with whether kernel facts prove it, and, when they do not, which pieces were unknown. */
export interface Judged { value: boolean; known: boolean; unknown: string[] }

export class DeviceKnowledge {
  /** The virtual PCI_COMMAND_MEMORY bit (vdev->vconfig), which __vfio_pci_memory_enabled() reads. */
  memBit = true;
  memBitKnown = false;
  /** pdev->current_state >= PCI_D3hot (or runtime PM engaged: faults are refused the same way). */
  lowPower = false;
  lowPowerKnown = false;
  /** pdev->no_command_memory (VFs): the memory bit is ignored. Static: survives loss. */
  noCmd = false;
  noCmdKnown = false;
  /** A direct fact about __vfio_pci_memory_enabled() that the pieces cannot express (e.g. a failed fault, cause
   * unknown); null when the pieces decide. Cleared when a piece changes. */
  memFact: boolean | null = null;
  /** The device's DMABUFs are revoked (vfio_pci_dma_buf_move(vdev, true) was the last move). */
  revoked = false;
  revokedKnown = false;
  /** A PERMANENT_REVOKE is in force: the DMABUFs stay revoked by request. */
  permanent = false;
  permanentKnown = false;
  /** The device is open (vfio_pci_core_open_device ran and close_device did not since). */
  open = true;
  openKnown = false;
  since: UnknownSince = { kind: 'start' };
  memSince: UnknownSince | null = null;
  opening: number[] = [];

  toState(): KnowledgeState {
    return { ...this, since: { ...this.since }, memSince: this.memSince && { ...this.memSince }, opening: [...this.opening] };
  }

  static fromState(s: KnowledgeState): DeviceKnowledge { return Object.assign(new DeviceKnowledge(), s); }

  /** Loss on the host: every piece that can change is unknown again and takes its default (a value from before the
   * loss is no fact, and using it would make findings the defaults rule out). */
  forget(lossTs: number): void {
    this.memBit = true; this.memBitKnown = false; this.lowPower = false; this.lowPowerKnown = false; this.memFact = null;
    this.revoked = false; this.revokedKnown = false; this.permanent = false; this.permanentKnown = false;
    this.open = true; this.openKnown = false;
    this.since = { kind: 'loss', ts: lossTs };
    this.memSince = null;
    this.opening = []; // their TriggerEnd may be what was lost
  }

  /** The first write section seen since the collector started (or lost events) named no trigger: it may have been
   * announced unseen, and any memory_lock path may change the power state or the memory bit (D3hot, runtime PM, a
   * COMMAND write). What facts said of memory before it no longer stands. */
  forgetMemory(acquireTs: number): void {
    this.memBit = true; this.memBitKnown = false; this.lowPower = false; this.lowPowerKnown = false; this.memFact = null;
    this.since = { kind: 'untriggered', ts: acquireTs };
    this.memSince = null;
  }

  /** vfio_pci_core_open_device() → vfio_pci_core_enable() (the first open only): vfio_pci_set_power_state(D0),
   * pci_enable_device(), a reset, then vfio_config_init() copies the command register into vdev->vconfig afresh.
   * What the memory bit and the power state were before no longer stands, and a DeviceInfo read before the open
   * returns may read the old vconfig: `tid`'s open is in progress until it returns (openReturned, deviceInUse). */
  opened(ts: number, tid: number): void {
    this.memBit = true; this.memBitKnown = false; this.lowPower = false; this.lowPowerKnown = false; this.memFact = null;
    this.memSince = { kind: 'opened', ts };
    if (!this.opening.includes(tid)) this.opening.push(tid);
    this.open = true; this.openKnown = true;
  }

  /** The open by `tid` returned (its TriggerEnd). */
  openReturned(tid: number): void {
    const i = this.opening.indexOf(tid);
    if (i >= 0) this.opening.splice(i, 1);
  }

  /** Something only a holder of the device fd can do (mmap, fault, ioctl, config write): the open returned, also
   * where the collector reports no trigger returns. */
  deviceInUse(): void {
    if (this.opening.length > 0) this.opening = [];
  }

  /** vfio_pci_core_close_device(): nothing can fault until the next open, which sets the memory state afresh (a
   * collector that does not announce opens leaves this the last word on it). */
  closed(ts: number): void {
    this.memBit = true; this.memBitKnown = false; this.lowPower = false; this.lowPowerKnown = false; this.memFact = null;
    this.memSince = { kind: 'closed', ts };
    this.open = false; this.openKnown = true;
  }

  private why(piece: string, s: UnknownSince = this.since): string {
    switch (s.kind) {
      case 'start': return `${piece}: no kernel fact since the collector started`;
      case 'loss': return `${piece}: no kernel fact since the host lost events at ts ${s.ts}`;
      case 'opened': return `${piece}: set afresh by the open at ts ${s.ts} (vfio_pci_core_enable()), no kernel fact since`;
      case 'closed': return `${piece}: the device was closed at ts ${s.ts}; its next open sets it afresh, no kernel fact since`;
      default: return `${piece}: the first write section seen, acquired at ts ${s.ts}, had no trigger: its path is unknown`;
    }
  }

  // ---- facts about memory ----

  /** Memory proven enabled (an ok fault, an unrevoke, DeviceInfo.memory_enabled = true). */
  memoryEnabledFact(): void {
    this.memFact = null;
    this.lowPower = false; this.lowPowerKnown = true;
    // Enabled means (bit or VF). Unless it is a known VF, the bit is set: if the device turns out not to be a VF
    // that is exactly right, and if it is one the bit does not matter.
    if (!(this.noCmdKnown && this.noCmd)) { this.memBit = true; this.memBitKnown = true; }
  }

  /** Memory proven disabled (a failed fault on a device-fd mapping, DeviceInfo.memory_enabled = false). */
  memoryDisabledFact(): void {
    if (this.lowPowerKnown && this.lowPower) return;
    if (this.lowPowerKnown && this.noCmdKnown) {
      if (!this.noCmd) { this.memBit = false; this.memBitKnown = true; this.memFact = null; return; }
      this.lowPower = true; // a VF in D0 is always enabled: it must be in low power
      this.memFact = null;
      return;
    }
    this.memFact = false;
  }

  /** Set the memory bit; `known`: by a kernel fact. A guess never erases a fact that already says the same. */
  setMemBit(v: boolean, known: boolean): void {
    this.memBitKnown = known || (this.memBitKnown && this.memBit === v);
    this.memBit = v;
    this.memFact = null;
  }
  setLowPower(v: boolean, known: boolean): void {
    this.lowPowerKnown = known || (this.lowPowerKnown && this.lowPower === v);
    this.lowPower = v;
    this.memFact = null;
  }
  setNoCmd(v: boolean): void { this.noCmd = v; this.noCmdKnown = true; }

  /** memoryEnabled().value without building the judgement (the fault path asks on every fault). */
  memoryEnabledValue(): boolean {
    return this.memFact ?? (!this.lowPower && (this.noCmd || this.memBit));
  }

  /** memoryEnabled().known without building the judgement (every zap asks). */
  memoryEnabledKnown(): boolean {
    if (this.memFact !== null || (this.lowPowerKnown && this.lowPower)) return true;
    const cmdKnown = (this.noCmdKnown && this.noCmd) || (this.memBitKnown && this.memBit) || (this.memBitKnown && this.noCmdKnown);
    return cmdKnown && (!(this.noCmd || this.memBit) || this.lowPowerKnown);
  }

  /** __vfio_pci_memory_enabled(): current_state < D3hot && (no_command_memory || PCI_COMMAND_MEMORY). */
  memoryEnabled(): Judged {
    if (this.memFact !== null) return { value: this.memFact, known: true, unknown: [] };
    if (this.lowPowerKnown && this.lowPower) return { value: false, known: true, unknown: [] };
    const cmd = this.noCmd || this.memBit;
    const cmdKnown = (this.noCmdKnown && this.noCmd) || (this.memBitKnown && this.memBit)
      || (this.memBitKnown && this.noCmdKnown);
    if (cmdKnown && !cmd) return { value: false, known: true, unknown: [] };
    const unknown: string[] = [];
    const since = this.memSince ?? this.since;
    if (!this.lowPowerKnown) unknown.push(this.why('power state', since));
    if (!cmdKnown) {
      if (!this.memBitKnown) unknown.push(this.why('PCI_COMMAND memory bit', since));
      if (!this.noCmdKnown) unknown.push('no_command_memory (a VF?): not read by the collector');
    }
    return { value: !this.lowPower && cmd, known: unknown.length === 0, unknown };
  }

  // ---- other pieces ----

  revokedJudged(): Judged {
    return { value: this.revoked, known: this.revokedKnown, unknown: this.revokedKnown ? [] : [this.why('DMABUF revoke state')] };
  }

  openJudged(): Judged {
    return { value: this.open, known: this.openKnown, unknown: this.openKnown ? [] : [this.why('open state')] };
  }

  permanentJudged(): Judged {
    return { value: this.permanent, known: this.permanentKnown,
      unknown: this.permanentKnown ? [] : [this.why('permanent revoke')] };
  }

  setRevoked(v: boolean): void { this.revoked = v; this.revokedKnown = true; }
  setOpen(v: boolean): void { this.open = v; this.openKnown = true; }
  setPermanent(v: boolean, known: boolean): void { this.permanent = v; this.permanentKnown = known; }
}
