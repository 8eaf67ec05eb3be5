// One simulated host: its devices, the kernel protocol per era (DESIGN §1, §7), the workloads that drive
// it, the collector's batching with per-CPU interleaving, and ring-buffer loss. Pure and deterministic.
import {
  ALL_BARS_LENGTH, Backing, TriggerKind, VFIO_PCI_OFFSET_SHIFT, ZapTarget,
  type BodyKind, type Event, type EventBatch, type HostInfo, type Zap,
} from '../../services/core/model.js';
import {
  BAR_PROFILES, ERAS, IMPORTER_LATENCY, backingOf, driversFor, zapBarsOnRevoke,
  type Arch, type BarSpec, type DriverName, type Era, type EraName, type Flavor, type ImporterKind,
} from './eras.js';
import { Rng, weightTable, type WeightTable } from './rng.js';
import type { FleetStats, LossWindow, TruthFinding, TruthHost } from './truth.js';

const US = 1_000, MS = 1_000_000, S = 1_000_000_000;
/** Collector read window: within it, events are delivered grouped by CPU (per-CPU ring buffers). */
const PERCPU_WINDOW_NS = 2 * MS;

export interface HostConfig {
  index: number;
  seed: number;
  durationNs: number;
  batchSize: number;
  flushIntervalNs: number;
  devicesPerHost: [number, number];
  era: EraName;
  flavor: Flavor;
  readsVmas: boolean;
  /** See SimulateOptions.unpopulatedPre611Revokes. */
  unpopulatedPre611Revokes: boolean;
}

export interface Actor { pid: number; tid: number; comm: string; cpu: number }
interface Proc { pid: number; comm: string; main: Actor; workers: Actor[] }

export interface Mapping { id: number; bar: number; backing: Backing; length: number; populated: boolean; dmabufId: number }
interface Importer { dmabufId: number; kind: ImporterKind; importers: number }

export interface Device {
  addr: string;
  driver: DriverName;
  bars: readonly BarSpec[];
  zapBarsOnRevoke: boolean;
  dmabufBarMmap: boolean;
  /** DeviceInfo and snapshots are emitted at collector start. */
  known: boolean;
  group: number;
  proc: Proc;
  mappings: Map<number, Mapping>;
  importers: Importer[];
  memEnabled: boolean;
  revoked: boolean;
  /** The vdev inode mapping has a VMA the collector never saw (only kernel facts reveal it). */
  hiddenVmas: boolean;
  scenario?: string;
}

export interface Step { at: number; run: (t: number) => number }

interface Slot { devices: Device[]; proc: Proc; script: Step[] | undefined; stepIdx: number }

export interface EpisodeOptions {
  actor: Actor;
  trigger?: TriggerKind;
  groupId?: number;
  /** The trigger is seen inside the lock window (a probe on pci_try_reset_function under memory_lock)
   * rather than announced before down_write (config writes, ioctl entry). */
  triggerInside?: boolean;
  /** Run the revoke protocol (zap and/or DMABUF revoke). */
  revoke: boolean;
  /** CLOSE on DMABUF kernels: vfio_pci_dma_buf_cleanup() revokes the DMABUFs, nothing else. */
  dmabufOnly?: boolean;
  /** Time the operation itself holds the lock (reset, power transition, config write). */
  opNs: number;
  // Injected faults.
  skipUnrevoke?: boolean;
  forceUnrevoke?: boolean;
  doubleZap?: boolean;
  slowNotifyNs?: number;
}

export interface EpisodeRecord {
  dev: Device; acquireTs: number; releaseTs: number;
  /** End (ts + duration) of the last revoking step (Zap or DmaBufRevoke{revoked:true}); 0 if none. */
  revokeEnd: number;
  zaps: Event[]; unrevoke?: Event;
}

/** flush() scratch (one flush at a time): per ready event its per-CPU read-window sort key w, r, its
 * tsNs, and the sorted order as indexes into the ready list. */
let keyW = new Float64Array(256), keyR = new Float64Array(256), keyT = new Float64Array(256), order = new Int32Array(256);
const ready: (Event | undefined)[] = [];

type Activity = 'fault' | 'remap' | 'lockOnly' | 'memToggle' | 'reset' | 'flr' | 'd3' | 'rpm' | 'hotReset' | 'closeReopen' | 'permanent';
/** pickActivity() weights by [hot-reset set?][series kernel?], built once. */
const ACTIVITY_WEIGHTS: readonly (readonly WeightTable<Activity>[])[] = [false, true].map((set) => [false, true].map((series) => weightTable<Activity>({
  fault: 0.28, remap: 0.07, lockOnly: 0.14, memToggle: 0.13, reset: 0.09, flr: 0.05, d3: 0.07, rpm: 0.06,
  hotReset: set ? 0.07 : 0,
  closeReopen: 0.02,
  permanent: series ? 0.015 : 0,
})));

export class HostSim {
  readonly era: Era;
  readonly arch: Arch;
  readonly flavor: Flavor;
  readonly release: string;
  readonly hostname: string;
  readonly bootId: string;
  readonly info: HostInfo;
  readonly readsVmas: boolean;
  /** CLOCK_MONOTONIC at collector start (the host booted days ago). */
  readonly t0: number;
  readonly end: number;
  readonly devices: Device[] = [];
  readonly findings: TruthFinding[] = [];
  readonly lossWindows: LossWindow[] = [];
  /** Host time ranges taken by injected scenarios (kept apart so loss never touches another fault). */
  readonly reserved: { from: number; to: number }[] = [];
  done = false;

  private readonly rng: Rng;
  private readonly ncpu: number;
  private readonly slots: Slot[] = [];
  private readonly agent: Actor;
  private readonly kworker: Actor;
  /** The first pendingN are the events not yet read by the collector, in emission order, with their tsNs
   * and cpu (read here rather than from events of many shapes); pendingMin: the smallest of those tsNs.
   * A count rather than the arrays' length, which would drop their storage when set to 0. */
  private pending: (Event | undefined)[] = [];
  private pendingTs: number[] = [];
  private pendingCpu: number[] = [];
  private pendingN = 0;
  private pendingMin = Infinity;
  private nextPid: number;
  private nextMappingId: number;
  private nextDmabufId = 1;
  private nextGroupId: number;
  private buses: number[];
  private busesUsed = 0;
  private started = false;
  /** Per slot, when it next starts a step or activity (Infinity: never again); nextDue: the earliest
   * left after the last advance() (see there). */
  private slotNext = new Float64Array(0);
  private nextDue = -Infinity;
  private dropSet = new Set<Event>();
  private dropMode: LossWindow['mode'] = 'dropped';
  private dropScenario = '';

  // Batching (the collector's side).
  private nextSeq = 0;
  private cur: Event[] = [];
  private curOpenedTs = 0;
  private curMin = Infinity;
  private curMax = -Infinity;
  private pendingDropped = 0;
  private lostRun = 0;
  private maxTsEmitted = -Infinity;
  private lossOpen: { maxBefore: number; mode: LossWindow['mode']; lost: number; scenario: string } | undefined;

  constructor(readonly cfg: HostConfig, private readonly stats: FleetStats) {
    this.rng = new Rng(cfg.seed, 0x5157, cfg.index);
    this.era = ERAS[cfg.era];
    this.flavor = cfg.flavor;
    this.arch = cfg.flavor === 'x86' ? 'amd64' : 'arm64';
    this.release = this.rng.pick(this.era.releases[this.arch]);
    this.readsVmas = cfg.readsVmas;
    this.hostname = `sim-${cfg.flavor}-${String(cfg.index + 1).padStart(4, '0')}`;
    this.bootId = this.rng.uuid();
    this.info = {
      hostname: this.hostname, bootId: this.bootId, kernelRelease: this.release, collectorVersion: '0.1.0-sim',
      capabilities: [...this.era.capabilities],
    };
    this.t0 = this.rng.int(3_600, 40 * 86_400) * S + this.rng.int(0, S - 1);
    this.end = this.t0 + cfg.durationNs;
    this.ncpu = cfg.flavor === 'grace' ? 72 : cfg.flavor === 'kunpeng' ? this.rng.pick([96, 128]) : this.rng.pick([32, 64, 96, 128]);
    this.nextPid = this.rng.int(2_000, 40_000);
    this.nextMappingId = this.rng.int(1, 0xffff) * 0x10000;
    this.nextGroupId = (cfg.index + 1) * 100_000;
    this.buses = shuffled(this.rng, Array.from({ length: 0xf0 }, (_, i) => i + 0x10));
    this.agent = { pid: this.rng.int(500, 1_500), tid: 0, comm: 'revokescope', cpu: this.rng.int(0, this.ncpu - 1) };
    this.agent.tid = this.agent.pid;
    const kw = this.rng.int(100, 400);
    this.kworker = { pid: kw, tid: kw, comm: `kworker/u${this.ncpu * 2}:${this.rng.int(0, 9)}`, cpu: this.rng.int(0, this.ncpu - 1) };
    this.buildWorkloadDevices();
  }

  // ---------------------------------------------------------------- devices and processes

  private newProc(driver: DriverName): Proc {
    const pid = this.nextPid; this.nextPid += this.rng.int(20, 400);
    let comm: string; let worker: (i: number) => string; let nworkers: number;
    if (driver === 'mlx5_vfio_pci' && this.rng.chance(0.4)) {
      comm = 'dpdk-testpmd'; worker = (i) => `lcore-worker-${i + 1}`; nworkers = this.rng.int(1, 4);
    } else {
      comm = this.arch === 'amd64' ? 'qemu-system-x86' : 'qemu-system-aar';
      worker = (i) => `CPU ${i}/KVM`; nworkers = this.rng.int(2, 8);
    }
    const main: Actor = { pid, tid: pid, comm, cpu: this.rng.int(0, this.ncpu - 1) };
    const workers: Actor[] = [];
    for (let i = 0; i < nworkers; i++) workers.push({ pid, tid: pid + 2 + i, comm: worker(i), cpu: this.rng.int(0, this.ncpu - 1) });
    return { pid, comm, main, workers };
  }

  /** A free PCI bus: "0000:3b", then further PCI domains once a host has used every bus. */
  private newBus(): string {
    const n = this.busesUsed++;
    const bus = this.buses[n % this.buses.length]!;
    return `${Math.floor(n / this.buses.length).toString(16).padStart(4, '0')}:${bus.toString(16).padStart(2, '0')}`;
  }

  private addr(bus: string, fn: number): string { return `${bus}:00.${fn}`; }

  /** A device with its BARs mapped and populated (a running VM), as the collector finds it at start. */
  newDevice(driver: DriverName, proc: Proc, addr: string, group: number, init: { mapAll?: boolean; profile?: number } = {}): Device {
    const profiles = BAR_PROFILES[driver];
    const bars = profiles[init.profile ?? this.rng.int(0, profiles.length - 1)]!;
    const dev: Device = {
      addr, driver, bars, zapBarsOnRevoke: zapBarsOnRevoke(this.era, driver), dmabufBarMmap: this.era.dmabufBarMmap,
      known: true, group, proc, mappings: new Map(), importers: [], memEnabled: true, revoked: false, hiddenVmas: false,
      scenario: undefined, // set later on scenario devices: one object shape for every device
    };
    if (init.mapAll ?? true) for (const b of bars) this.addMapping(dev, b, true);
    if (this.era.dmabufExport) this.addImporters(dev);
    this.devices.push(dev);
    return dev;
  }

  private addImporters(dev: Device): void {
    const n = dev.driver === 'hisi_acc_vfio_pci' ? 0 : this.rng.weighted({ 0: 0.35, 1: 0.35, 2: 0.2, 3: 0.1 } as Record<string, number>);
    for (let i = 0; i < Number(n); i++) {
      const kind: ImporterKind = dev.driver === 'nvgrace-gpu' ? this.rng.pick(['iommufd', 'mlx5_ib'] as const)
        : this.rng.pick(['mlx5_ib', 'mlx5_ib', 'iommufd', 'amdgpu', 'xe'] as const);
      dev.importers.push({ dmabufId: this.nextDmabufId++, kind, importers: this.rng.int(1, 2) });
    }
  }

  /** A DMABUF exported from the device and imported by a peer (RDMA NIC, GPU, iommufd). */
  addImporter(dev: Device, kind: ImporterKind, importers = 1): void {
    dev.importers.push({ dmabufId: this.nextDmabufId++, kind, importers });
  }

  addMapping(dev: Device, bar: BarSpec, populated: boolean): Mapping {
    const backing = backingOf(this.era, bar);
    const m: Mapping = { id: this.nextMappingId, bar: bar.bar, backing, length: bar.length, populated,
      dmabufId: backing === Backing.DMABUF ? this.nextDmabufId++ : 0 };
    this.nextMappingId += this.rng.int(1, 64) * 0x1000;
    dev.mappings.set(m.id, m);
    return m;
  }

  private buildWorkloadDevices(): void {
    const [lo, hi] = this.cfg.devicesPerHost;
    let n = this.rng.int(lo, Math.max(lo, hi));
    const drivers = driversFor(this.era, this.flavor);
    // A multi-function set (e.g. a GPU and its audio function, a dual-port NIC) that is hot-reset together.
    if (n >= 2 && this.rng.chance(0.6)) {
      const proc = this.newProc('vfio-pci');
      const bus = this.newBus();
      const group = this.nextGroupId++;
      const a = this.newDevice('vfio-pci', proc, this.addr(bus, 0), group);
      const b = this.newDevice('vfio-pci', proc, this.addr(bus, 1), group);
      this.slots.push({ devices: [a, b], proc, script: undefined, stepIdx: 0 });
      n -= 2;
    }
    for (let i = 0; i < n; i++) {
      const driver = i < drivers.length ? drivers[i]! : this.rng.pick(drivers);
      const proc = this.newProc(driver);
      const dev = this.newDevice(driver, proc, this.addr(this.newBus(), 0), 0);
      this.slots.push({ devices: [dev], proc, script: undefined, stepIdx: 0 });
    }
  }

  /** A dedicated device for an injected scenario, driven only by its script. */
  addScenarioDevice(driver: DriverName, scenario: string, init: { mapAll?: boolean; profile?: number } = {}): { dev: Device; slot: { steps: Step[] } } {
    const proc = this.newProc(driver);
    const dev = this.newDevice(driver, proc, this.addr(this.newBus(), 0), 0, init);
    dev.scenario = scenario;
    const steps: Step[] = [];
    this.slots.push({ devices: [dev], proc, script: steps, stepIdx: 0 });
    return { dev, slot: { steps } };
  }

  reserve(from: number, to: number): boolean {
    if (this.reserved.some((r) => from < r.to && r.from < to)) return false;
    this.reserved.push({ from, to });
    return true;
  }

  truthHost(): TruthHost {
    return {
      hostname: this.hostname, bootId: this.bootId, kernelRelease: this.release, era: this.era.name, arch: this.arch,
      flavor: this.flavor, readsVmas: this.readsVmas,
      capabilities: this.era.capabilities.map((c) => capabilityName(c)), startTsNs: this.t0,
      devices: this.devices.map((d) => ({
        device: d.addr, driver: d.driver, group: d.group, known: d.known, zapBarsOnRevoke: d.zapBarsOnRevoke,
        dmabufBarMmap: d.dmabufBarMmap, ...(d.scenario ? { scenario: d.scenario } : {}),
      })),
    };
  }

  // ---------------------------------------------------------------- event emission

  private cpuOf(a: Actor): number {
    // Threads mostly stay on their CPU; the scheduler sometimes migrates them.
    if (this.rng.chance(0.06)) a.cpu = this.rng.int(0, this.ncpu - 1);
    return a.cpu;
  }

  /** Queues an event for the collector's read. One literal per body kind (the keys and their order of
   * `{ ..., ...{ [kind]: body } }`) rather than a spread into each new event. */
  emit<K extends BodyKind>(ts: number, a: Actor, dev: Device, kind: K, body: NonNullable<Event[K]>): Event {
    const cpu = this.cpuOf(a), pid = a.pid, tid = a.tid, comm = a.comm, device = dev.addr;
    const b = body as never;
    // One object shape for every event, whatever its body: the members not set are undefined (protobuf
    // encoders and JSON skip them), so the encoder and the rest of the pipeline see one shape, not ten.
    const ev: Event = { tsNs: ts, cpu, pid, tid, comm, device, deviceInfo: undefined, lockAcquire: undefined, lockRelease: undefined,
      zap: undefined, dmabufRevoke: undefined, moveNotify: undefined, barMmap: undefined, barMunmap: undefined, barFault: undefined,
      trigger: undefined };
    switch (kind as BodyKind) {
      case 'barFault': ev.barFault = b; break;
      case 'lockAcquire': ev.lockAcquire = b; break;
      case 'lockRelease': ev.lockRelease = b; break;
      case 'deviceInfo': ev.deviceInfo = b; break;
      case 'moveNotify': ev.moveNotify = b; break;
      case 'trigger': ev.trigger = b; break;
      case 'dmabufRevoke': ev.dmabufRevoke = b; break;
      case 'zap': ev.zap = b; break;
      case 'barMmap': ev.barMmap = b; break;
      case 'barMunmap': ev.barMunmap = b; break;
    }
    const i = this.pendingN++;
    this.pending[i] = ev; this.pendingTs[i] = ts; this.pendingCpu[i] = cpu;
    if (ts < this.pendingMin) this.pendingMin = ts;
    return ev;
  }

  /** Mark events as lost in the collector's ring buffer (they are never sent). */
  dropEvents(evs: Event[], mode: LossWindow['mode'], scenario: string): void {
    for (const e of evs) this.dropSet.add(e);
    this.dropMode = mode;
    this.dropScenario = scenario;
  }

  addFinding(f: Omit<TruthFinding, 'hostname' | 'bootId' | 'kernelRelease'>): void {
    this.findings.push({ ...f, hostname: this.hostname, bootId: this.bootId, kernelRelease: this.release });
  }

  private collectorStart(): void {
    // The agent resolves each vfio device and seeds mapping state from existing mappings (/proc/*/maps).
    let t = this.t0 + this.rng.int(50 * US, 400 * US);
    for (const dev of this.devices) {
      if (!dev.known) continue;
      this.emit(t, this.agent, dev, 'deviceInfo', { driver: dev.driver, zapBarsOnRevoke: dev.zapBarsOnRevoke, dmabufBarMmap: dev.dmabufBarMmap });
      t += this.rng.ns(8 * US, 0.5);
      for (const m of dev.mappings.values()) {
        this.emit(t, this.agent, dev, 'barMmap', { bar: m.bar, backing: m.backing, mappingId: m.id, length: m.length, snapshot: true });
        m.populated = true; // a snapshot counts as populated
        t += this.rng.ns(3 * US, 0.5);
      }
    }
  }

  // ---------------------------------------------------------------- kernel protocol building blocks

  /** Live mappings in the vdev inode's address space (everything not DMABUF-backed), as i_mmap shows it. */
  private inodeHasVmas(dev: Device): boolean {
    if (dev.hiddenVmas) return true;
    for (const m of dev.mappings.values()) if (m.backing !== Backing.DMABUF) return true;
    return false;
  }

  private lockWait(): number {
    // down_write() fast path; sometimes contended by readers (faults, config reads).
    return this.rng.chance(0.88) ? this.rng.ns(600, 0.8, 80, 20 * US) : this.rng.ns(40 * US, 1.3, 2 * US, 3 * MS);
  }

  /** unmap_mapping_range(vdev inode mapping, 0, VFIO_PCI_OFFSET_TO_INDEX(ROM)…) under memory_lock (>= 6.11). */
  deviceZap(dev: Device, a: Actor, t: number): { ev: Event; end: number } {
    let populated = false;
    for (const m of dev.mappings.values()) if (m.backing !== Backing.DMABUF && m.populated) populated = true;
    const dur = populated ? this.rng.ns(45 * US, 0.6, 6 * US, 1.5 * MS) : this.rng.ns(12 * US, 0.5, 3 * US, 400 * US);
    const zap: Zap = { start: 0, length: ALL_BARS_LENGTH, durationNs: dur, target: ZapTarget.DEVICE };
    if (this.readsVmas) zap.hadVmas = this.inodeHasVmas(dev);
    const ev = this.emit(t, a, dev, 'zap', zap);
    for (const m of dev.mappings.values()) if (m.backing !== Backing.DMABUF) m.populated = false;
    return { ev, end: t + dur };
  }

  /** Before 6.11: vfio_pci_zap_and_vma_lock() zap_vma_ptes() each faulted VMA, before down_write. */
  private preLockZaps(dev: Device, a: Actor, t: number, out: Event[]): number {
    for (const m of dev.mappings.values()) {
      if (!m.populated) continue;
      const dur = this.rng.ns(20 * US, 0.6, 3 * US, 1 * MS);
      const ev = this.emit(t, a, dev, 'zap', { start: m.bar * 2 ** VFIO_PCI_OFFSET_SHIFT, length: m.length, durationNs: dur, target: ZapTarget.DEVICE });
      out.push(ev);
      m.populated = false;
      t += dur + this.rng.ns(1_500, 0.5);
    }
    return t;
  }

  /** vfio_pci_dma_buf_move(vdev, revoked): each DMABUF whose state changes is marked, its own mapping
   * zapped (series: DMABUF-backed BAR mmaps) and its importers told (dma_buf_move_notify /
   * dma_buf_invalidate_mappings). Returns the end time. */
  dmabufMove(dev: Device, a: Actor, t: number, revoked: boolean, slowNotifyNs?: number, force = false): { ev: Event; end: number } {
    const start = t;
    let c = t + this.rng.ns(1_200, 0.5);
    const mmapBufs: Mapping[] = [];
    for (const m of dev.mappings.values()) if (m.backing === Backing.DMABUF) mmapBufs.push(m);
    const count = mmapBufs.length + dev.importers.length;
    if (dev.revoked !== revoked || force) {
      for (const m of mmapBufs) {
        if (revoked) {
          const zd = this.rng.ns(8 * US, 0.6, 1 * US, 300 * US);
          this.emit(c, a, dev, 'zap', { start: 0, length: m.length, durationNs: zd, target: ZapTarget.DMABUF });
          c += zd + this.rng.ns(400, 0.5);
          m.populated = false;
        }
        const md = this.rng.ns(700, 0.5);
        this.emit(c, a, dev, 'moveNotify', { dmabufId: m.dmabufId, importerCount: 0, durationNs: md });
        c += md + this.rng.ns(300, 0.5);
      }
      const imps = dev.importers;
      const durs: number[] = [];
      let sum = 0;
      for (const imp of imps) {
        const d = revoked
          ? this.rng.ns(IMPORTER_LATENCY[imp.kind].median, IMPORTER_LATENCY[imp.kind].sigma, 1 * US, 12 * MS)
          : this.rng.ns(3 * US, 0.7, 500, 200 * US);
        durs.push(d);
        sum += d;
      }
      // Correct fleets keep the whole revoke far below the 50 ms SLOW_REVOKE limit.
      if (sum > 20 * MS) for (let i = 0; i < durs.length; i++) durs[i] = Math.max(1, Math.round(durs[i]! * (20 * MS) / sum));
      if (slowNotifyNs !== undefined && durs.length > 0) durs[durs.length - 1] = slowNotifyNs;
      for (let i = 0; i < imps.length; i++) {
        const imp = imps[i]!;
        this.emit(c, a, dev, 'moveNotify', { dmabufId: imp.dmabufId, importerCount: imp.importers, durationNs: durs[i]! });
        c += durs[i]! + this.rng.ns(300, 0.5);
      }
    }
    const dur = c - start + this.rng.ns(400, 0.5);
    const body: Event['dmabufRevoke'] = { revoked, dmabufCount: count, durationNs: dur };
    if (revoked && this.readsVmas) body.deviceHasVmas = this.inodeHasVmas(dev);
    const ev = this.emit(start, a, dev, 'dmabufRevoke', body);
    dev.revoked = revoked;
    return { ev, end: start + dur };
  }

  private applyTrigger(dev: Device, kind: TriggerKind): void {
    const m = kind === TriggerKind.MEM_DISABLE || kind === TriggerKind.D3HOT || kind === TriggerKind.RUNTIME_PM_ENTRY ? false
      : kind === TriggerKind.MEM_ENABLE || kind === TriggerKind.D0 || kind === TriggerKind.RUNTIME_PM_EXIT ? true : undefined;
    if (m !== undefined) dev.memEnabled = m;
  }

  trigger(dev: Device, a: Actor, t: number, kind: TriggerKind, groupId = 0): number {
    this.emit(t, a, dev, 'trigger', { kind, groupId });
    this.applyTrigger(dev, kind);
    this.stats.triggers[TriggerKind[kind]!] = (this.stats.triggers[TriggerKind[kind]!] ?? 0) + 1;
    return t;
  }

  private countEpisode(dev: Device): void {
    this.stats.episodes++;
    this.stats.episodesByEra[this.era.name] = (this.stats.episodesByEra[this.era.name] ?? 0) + 1;
    this.stats.episodesByDriver[dev.driver] = (this.stats.episodesByDriver[dev.driver] ?? 0) + 1;
  }

  /** Whether the kernel unrevokes before up_write: __vfio_pci_memory_enabled() and DMABUFs were revoked. */
  private wantsUnrevoke(dev: Device, trigger: TriggerKind | undefined): boolean {
    return this.era.dmabufExport && dev.memEnabled && dev.revoked
      && trigger !== TriggerKind.PERMANENT_REVOKE && trigger !== TriggerKind.CLOSE;
  }

  /** One memory_lock write section: [trigger] → (pre-6.11 zaps) → down_write → revoke → operation →
   * unrevoke if memory is enabled → up_write. */
  episode(dev: Device, t: number, o: EpisodeOptions): EpisodeRecord {
    // Each option read once, here: callers pass option objects of many shapes.
    const { actor: a, trigger, groupId, triggerInside, revoke, dmabufOnly, opNs, skipUnrevoke, forceUnrevoke, doubleZap, slowNotifyNs } = o;
    if (trigger !== undefined && !triggerInside) {
      this.trigger(dev, a, t, trigger, groupId ?? 0);
      t += this.rng.ns(15 * US, 0.6, 2 * US, 200 * US);
    }
    const zaps: Event[] = [];
    if (revoke && this.era.zapsBeforeLock) {
      t = this.preLockZaps(dev, a, t, zaps);
      t += this.rng.ns(3 * US, 0.5);
    }
    const wait = this.lockWait();
    t += wait;
    const acquireTs = t;
    this.emit(t, a, dev, 'lockAcquire', { waitNs: wait });
    t += this.rng.ns(6 * US, 0.6, 1 * US, 100 * US);
    let revokeEnd = 0;
    for (const z of zaps) revokeEnd = Math.max(revokeEnd, z.tsNs! + z.zap!.durationNs!);
    if (revoke) {
      if (!this.era.zapsBeforeLock && (!this.era.dmabufBarMmap || dev.zapBarsOnRevoke)) {
        const z = this.deviceZap(dev, a, t); zaps.push(z.ev); t = revokeEnd = z.end;
        if (doubleZap) {
          t += this.rng.ns(2 * US, 0.5);
          const z2 = this.deviceZap(dev, a, t); zaps.push(z2.ev); t = revokeEnd = z2.end;
        }
      }
      if (this.era.dmabufExport) {
        t += this.rng.ns(2 * US, 0.5);
        t = revokeEnd = this.dmabufMove(dev, a, t, true, slowNotifyNs).end;
      }
    } else if (dmabufOnly && this.era.dmabufExport) {
      t += this.rng.ns(2 * US, 0.5);
      t = revokeEnd = this.dmabufMove(dev, a, t, true).end;
    }
    if (trigger !== undefined && triggerInside) {
      t += this.rng.ns(2 * US, 0.5);
      this.trigger(dev, a, t, trigger, groupId ?? 0);
    }
    t += opNs;
    let unrevoke: Event | undefined;
    if (forceUnrevoke || (!skipUnrevoke && this.wantsUnrevoke(dev, trigger))) {
      t += this.rng.ns(2 * US, 0.5);
      const u = this.dmabufMove(dev, a, t, false, undefined, forceUnrevoke ?? false);
      unrevoke = u.ev; t = u.end;
    }
    t += this.rng.ns(3 * US, 0.5, 500, 50 * US);
    this.emit(t, a, dev, 'lockRelease', {});
    this.countEpisode(dev);
    const rec: EpisodeRecord = { dev, acquireTs, releaseTs: t, revokeEnd, zaps };
    if (unrevoke) rec.unrevoke = unrevoke;
    return rec;
  }

  // ---------------------------------------------------------------- mmap / fault traffic

  barFault(dev: Device, a: Actor, t: number, m: Mapping): number {
    const ok = dev.memEnabled && !(m.backing === Backing.DMABUF && dev.revoked);
    this.emit(t, a, dev, 'barFault', { bar: m.bar, mappingId: m.id, ok });
    if (ok) m.populated = true;
    return t + this.rng.ns(25 * US, 0.7, 3 * US, 2 * MS);
  }

  mmap(dev: Device, a: Actor, t: number, bar: BarSpec): { m: Mapping; end: number } {
    const m = this.addMapping(dev, bar, false);
    this.emit(t, a, dev, 'barMmap', { bar: m.bar, backing: m.backing, mappingId: m.id, length: m.length, snapshot: false });
    return { m, end: t + this.rng.ns(20 * US, 0.6) };
  }

  munmap(dev: Device, a: Actor, t: number, m: Mapping): number {
    this.emit(t, a, dev, 'barMunmap', { bar: m.bar, mappingId: m.id });
    dev.mappings.delete(m.id);
    return t + this.rng.ns(15 * US, 0.6);
  }

  /** The guest touches every BAR it has mapped (faults install PTEs again). */
  touchAll(dev: Device, t: number): number {
    for (const m of dev.mappings.values()) {
      if (m.populated) continue;
      t = this.barFault(dev, this.rng.pick(dev.proc.workers), t, m);
      t += this.rng.ns(5 * US, 0.5);
    }
    return t;
  }

  private worker(dev: Device): Actor { return this.rng.pick(dev.proc.workers); }

  // ---------------------------------------------------------------- workloads

  private pickActivity(slot: Slot): Activity {
    return this.rng.weightedTable(ACTIVITY_WEIGHTS[slot.devices.length > 1 ? 1 : 0]![this.era.dmabufBarMmap ? 1 : 0]!);
  }

  /** Before 6.11 only faulted VMAs are on vdev->vma_list and get zapped; by default a running guest has
   * touched every BAR when a revoke starts (so the correlator sees a zap for each live mapping).
   * Elsewhere sometimes. */
  private prepareRevoke(dev: Device, t: number): number {
    const pre611 = this.era.zapsBeforeLock && !this.cfg.unpopulatedPre611Revokes;
    if (pre611 || this.rng.chance(0.3)) t = this.touchAll(dev, t);
    return t;
  }

  private runActivity(slot: Slot, t: number): number {
    const dev = this.rng.pick(slot.devices);
    const act = this.pickActivity(slot);
    const main = slot.proc.main;
    switch (act) {
      case 'fault': {
        const maps: Mapping[] = [];
        for (const m of dev.mappings.values()) maps.push(m);
        if (maps.length === 0) return this.lockOnly(dev, t);
        const n = this.rng.int(1, 4);
        const a = this.worker(dev);
        for (let i = 0; i < n; i++) t = this.barFault(dev, a, t, this.rng.pick(maps)) + this.rng.ns(10 * US, 1);
        return t;
      }
      case 'remap': {
        const mapped = new Set([...dev.mappings.values()].map((m) => m.bar));
        const unmapped = dev.bars.filter((b) => !mapped.has(b.bar));
        if (unmapped.length > 0 && this.rng.chance(0.6)) {
          const r = this.mmap(dev, main, t, this.rng.pick(unmapped));
          return this.barFault(dev, this.worker(dev), r.end, r.m);
        }
        const movable = [...dev.mappings.values()].filter((m) => !dev.bars.find((b) => b.bar === m.bar)?.persistent);
        if (movable.length === 0) return this.lockOnly(dev, t);
        const m = this.rng.pick(movable);
        t = this.munmap(dev, main, t, m);
        // Keep at least one mapping on pre-6.11 hosts (see prepareRevoke); otherwise sometimes leave it unmapped.
        if (this.era.zapsBeforeLock || dev.mappings.size === 0 || this.rng.chance(0.5)) {
          const spec = dev.bars.find((b) => b.bar === m.bar)!;
          const r = this.mmap(dev, main, t + this.rng.ns(50 * US, 1), spec);
          t = r.end;
          if (this.rng.chance(0.7)) t = this.barFault(dev, this.worker(dev), t, r.m);
        }
        return t;
      }
      case 'lockOnly': return this.lockOnly(dev, t);
      case 'memToggle': {
        // Guest clears PCI_COMMAND memory (BAR sizing, driver unbind), then sets it again.
        t = this.prepareRevoke(dev, t);
        const a = this.worker(dev);
        const off = this.episode(dev, t, { actor: a, trigger: TriggerKind.MEM_DISABLE, revoke: true, opNs: this.rng.ns(300 * US, 0.6, 20 * US, 3 * MS) });
        t = off.releaseTs + this.rng.ns(1 * MS, 1.2, 50 * US, 40 * MS);
        if (dev.mappings.size > 0 && this.rng.chance(0.2)) t = this.barFault(dev, a, t, this.rng.pick([...dev.mappings.values()])) + this.rng.ns(100 * US, 1);
        return this.episode(dev, t, { actor: a, trigger: TriggerKind.MEM_ENABLE, revoke: false, opNs: this.rng.ns(300 * US, 0.6, 20 * US, 3 * MS) }).releaseTs;
      }
      case 'reset': {
        // VFIO_DEVICE_RESET at VM boot or reboot: FLR (pcie_flr sleeps 100 ms) or a PM/bus reset.
        t = this.prepareRevoke(dev, t);
        const op = this.rng.chance(0.6) ? this.rng.ns(104 * MS, 0.05, 100 * MS, 140 * MS) : this.rng.ns(8 * MS, 0.4, 2 * MS, 40 * MS);
        return this.episode(dev, t, { actor: main, trigger: TriggerKind.RESET, revoke: true, opNs: op, triggerInside: this.rng.chance(0.3) }).releaseTs;
      }
      case 'flr': {
        // Guest sets PCI_EXP_DEVCTL_BCR_FLR: vfio_exp_config_write() → pci_try_reset_function().
        t = this.prepareRevoke(dev, t);
        return this.episode(dev, t, { actor: this.worker(dev), trigger: TriggerKind.FLR, revoke: true, opNs: this.rng.ns(104 * MS, 0.05, 100 * MS, 140 * MS), triggerInside: this.rng.chance(0.3) }).releaseTs;
      }
      case 'd3': {
        // PMCSR writes: vfio_pm_config_write() → vfio_pci_set_power_state() (≈11 ms each way on real hardware).
        t = this.prepareRevoke(dev, t);
        const a = this.worker(dev);
        const d3 = this.episode(dev, t, { actor: a, trigger: TriggerKind.D3HOT, revoke: true, opNs: this.rng.ns(11 * MS, 0.15, 2 * MS, 30 * MS) });
        t = d3.releaseTs + this.rng.ns(40 * MS, 1.2, 1 * MS, 800 * MS);
        return this.episode(dev, t, { actor: a, trigger: TriggerKind.D0, revoke: false, opNs: this.rng.ns(11 * MS, 0.15, 2 * MS, 30 * MS) }).releaseTs;
      }
      case 'rpm': {
        // VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY / EXIT: vfio_pci_runtime_pm_entry/exit.
        t = this.prepareRevoke(dev, t);
        const entry = this.episode(dev, t, { actor: main, trigger: TriggerKind.RUNTIME_PM_ENTRY, revoke: true, opNs: this.rng.ns(1 * MS, 0.6, 100 * US, 10 * MS) });
        t = entry.releaseTs + this.rng.ns(500 * MS, 0.8, 50 * MS, 3 * S);
        return this.episode(dev, t, { actor: main, trigger: TriggerKind.RUNTIME_PM_EXIT, revoke: false, opNs: this.rng.ns(2 * MS, 0.6, 100 * US, 20 * MS) }).releaseTs;
      }
      case 'hotReset': return this.hotReset(slot, t);
      case 'closeReopen': return this.closeReopen(dev, t, false);
      case 'permanent': return this.closeReopen(dev, t, true);
    }
  }

  private lockOnly(dev: Device, t: number): number {
    // A config write that takes memory_lock without changing memory decode (vfio_basic_config_write).
    return this.episode(dev, t, { actor: this.worker(dev), revoke: false, opNs: this.rng.ns(150 * US, 0.8, 10 * US, 3 * MS) }).releaseTs;
  }

  /** VFIO_DEVICE_PCI_HOT_RESET: vfio_pci_dev_set_hot_reset() takes every device's memory_lock with
   * down_write_trylock in turn (same task), revokes each, resets the bus, unrevokes and releases. */
  private hotReset(slot: Slot, t: number): number {
    const devs = slot.devices;
    const a = slot.proc.main;
    for (const d of devs) t = this.prepareRevoke(d, t);
    const groupId = this.nextGroupId++;
    for (const d of devs) { this.trigger(d, a, t, TriggerKind.HOT_RESET, groupId); t += this.rng.ns(4 * US, 0.5); }
    t += this.rng.ns(10 * US, 0.5);
    if (this.era.zapsBeforeLock) {
      for (const d of devs) t = this.preLockZaps(d, a, t, []);
    }
    const acquired: { d: Device; at: number }[] = [];
    for (const d of devs) {
      t += this.rng.ns(2 * US, 0.5);
      this.emit(t, a, d, 'lockAcquire', { waitNs: this.rng.ns(300, 0.5, 50, 2 * US) });
      acquired.push({ d, at: t });
      t += this.rng.ns(3 * US, 0.5);
      if (!this.era.zapsBeforeLock && (!this.era.dmabufBarMmap || d.zapBarsOnRevoke)) t = this.deviceZap(d, a, t).end;
      if (this.era.dmabufExport) t = this.dmabufMove(d, a, t + this.rng.ns(2 * US, 0.5), true).end;
    }
    // pci_reset_bus(): secondary bus reset, then wait for the devices to come back.
    t += this.rng.ns(300 * MS, 0.5, 110 * MS, 1.5 * S);
    for (const { d } of acquired) {
      if (this.wantsUnrevoke(d, TriggerKind.HOT_RESET)) t = this.dmabufMove(d, a, t + this.rng.ns(2 * US, 0.5), false).end;
      t += this.rng.ns(3 * US, 0.5);
      this.emit(t, a, d, 'lockRelease', {});
      this.countEpisode(d);
    }
    return t;
  }

  /** The user closes the device (VM shutdown): munmap, CLOSE (vfio_pci_core_close_device; DMABUF kernels
   * revoke every DMABUF for good in vfio_pci_dma_buf_cleanup), then reopens it and resets it at boot.
   * With `permanent` (series): a PERMANENT_REVOKE first, after which nothing may use the device until it is closed. */
  private closeReopen(dev: Device, t: number, permanent: boolean): number {
    const main = dev.proc.main;
    if (permanent) {
      t = this.episode(dev, t, { actor: main, trigger: TriggerKind.PERMANENT_REVOKE, revoke: true, opNs: this.rng.ns(40 * US, 0.6) }).releaseTs;
      t += this.rng.ns(5 * MS, 1, 200 * US, 200 * MS);
    }
    for (const m of [...dev.mappings.values()]) t = this.munmap(dev, main, t, m);
    t += this.rng.ns(2 * MS, 1, 100 * US, 100 * MS);
    t = this.episode(dev, t, { actor: main, trigger: TriggerKind.CLOSE, revoke: false, dmabufOnly: true, opNs: this.rng.ns(3 * MS, 0.8, 200 * US, 40 * MS) }).releaseTs;
    // The exported DMABUFs die with the file; a new VM starts later with fresh ones.
    dev.importers = [];
    t += this.rng.ns(300 * MS, 0.8, 20 * MS, 2 * S);
    dev.revoked = false;
    dev.memEnabled = true;
    if (this.era.dmabufExport) this.addImporters(dev);
    for (const spec of dev.bars) {
      const r = this.mmap(dev, main, t, spec);
      t = this.barFault(dev, this.worker(dev), r.end, r.m);
    }
    t += this.rng.ns(200 * US, 0.6);
    const op = this.rng.ns(104 * MS, 0.05, 100 * MS, 140 * MS);
    return this.episode(dev, t, { actor: main, trigger: TriggerKind.RESET, revoke: true, opNs: op }).releaseTs;
  }

  /** A kernel worker zapping the device's BARs without memory_lock (fault: LOCK_NOT_HELD). */
  strayZap(dev: Device, t: number): Event { return this.deviceZap(dev, this.kworker, t).ev; }

  // ---------------------------------------------------------------- time stepping and batching

  /** Generate everything that starts before `relEnd` (ns after collector start); append finished batches
   * to `out`. With `final`, flush everything. */
  advance(relEnd: number, final: boolean, out: EventBatch[]): void {
    if (this.done) return;
    if (!this.started) {
      this.started = true;
      this.collectorStart();
      this.slotNext = Float64Array.from(this.slots, (s) => {
        if (s.script) return s.script[0]?.at ?? Infinity;
        const next = this.t0 + this.rng.int(5 * MS, 600 * MS);
        return next < this.end ? next : Infinity;
      });
    }
    const absEnd = final ? Infinity : this.t0 + relEnd;
    // Run the slot due first (the first of equals) until none is due before absEnd; nextDue keeps the
    // earliest start found so that epochs with nothing due skip the scan.
    if (this.nextDue < absEnd) {
      const next = this.slotNext;
      for (;;) {
        let best = -1, min = Infinity;
        for (let i = 0; i < next.length; i++) if (next[i]! < min) { min = next[i]!; best = i; }
        if (best < 0 || min >= absEnd) { this.nextDue = min; break; }
        const slot = this.slots[best]!;
        if (slot.script) {
          const step = slot.script[slot.stepIdx++]!;
          const endT = step.run(Math.max(min, step.at));
          const nextStep = slot.script[slot.stepIdx];
          next[best] = nextStep ? Math.max(nextStep.at, endT + 5 * US) : Infinity;
        } else {
          const endT = this.runActivity(slot, min);
          const t = endT + 50 * US + Math.round(this.rng.exp(0.8 * S));
          next[best] = t < this.end ? t : Infinity; // workloads start nothing after the end
        }
      }
    }
    this.flush(absEnd, out);
    if (this.cur.length > 0 && (final || absEnd >= this.closeAt)) this.closeBatch(out);
    this.done = final;
  }

  /** advance() has a slot to run or events to flush only for an end (host clock) past this time... */
  get dueAt(): number { return Math.min(this.nextDue, this.pendingMin); }
  /** ...and closes the open batch once the end reaches this time. */
  get closeAt(): number { return this.cur.length > 0 ? this.curOpenedTs + this.cfg.flushIntervalNs : Infinity; }

  private flush(absEnd: number, out: EventBatch[]): void {
    if (this.pendingMin >= absEnd) return;
    // Take the ready events out, keeping the rest in emission order.
    const pending = this.pending, pts = this.pendingTs, pcpu = this.pendingCpu, count = this.pendingN;
    if (count > order.length) {
      const cap = Math.max(count, 2 * order.length);
      keyW = new Float64Array(cap); keyR = new Float64Array(cap); keyT = new Float64Array(cap); order = new Int32Array(cap);
    }
    // Per-CPU interleaving: within each read window the collector drains CPU after CPU, so events are in
    // ts order per CPU but not across CPUs (displacement < PERCPU_WINDOW_NS, far below the 2 s lateness).
    const t0 = this.t0;
    let n = 0, kept = 0, min = Infinity;
    for (let i = 0; i < count; i++) {
      const ev = pending[i]!, ts = pts[i]!;
      if (ts < absEnd) {
        const w = Math.floor((ts - t0) / PERCPU_WINDOW_NS);
        keyW[n] = w;
        keyR[n] = (Math.imul(pcpu[i]! + 1, 0x9e3779b1) ^ Math.imul(w, 0x85ebca6b)) >>> 0;
        keyT[n] = ts;
        ready[n++] = ev;
      } else {
        pending[kept] = ev; pts[kept] = ts; pcpu[kept] = pcpu[i]!; kept++;
        if (ts < min) min = ts;
      }
    }
    for (let i = kept; i < count; i++) pending[i] = undefined;
    this.pendingN = kept;
    this.pendingMin = min;
    // Order by (w, r, tsNs, emission order): a total order, so any sort gives the same result. Insertion
    // sort: ready events come nearly in order and few at a time.
    for (let i = 0; i < n; i++) {
      const w = keyW[i]!, r = keyR[i]!, t = keyT[i]!;
      let j = i;
      for (; j > 0; j--) {
        const o = order[j - 1]!;
        const dw = keyW[o]! - w;
        if (dw < 0 || (dw === 0 && (keyR[o]! < r || (keyR[o] === r && keyT[o]! <= t)))) break;
        order[j] = o;
      }
      order[j] = i;
    }
    for (let i = 0; i < n; i++) { const k = order[i]!; this.push(ready[k]!, keyT[k]!, out); }
    for (let i = 0; i < n; i++) ready[i] = undefined;
  }

  private push(ev: Event, ts: number, out: EventBatch[]): void {
    if (this.dropSet.size > 0 && this.dropSet.has(ev)) {
      this.dropSet.delete(ev);
      if (this.cur.length > 0) this.closeBatch(out);
      if (!this.lossOpen) this.lossOpen = { maxBefore: this.maxTsEmitted, mode: this.dropMode, lost: 0, scenario: this.dropScenario };
      this.lossOpen.lost++;
      this.stats.lostEvents++;
      // Ring-buffer overflow: the agent counts what it lost (dropped); a lost spool segment shows as a seq gap.
      if (this.lossOpen.mode === 'dropped') this.pendingDropped++; else this.nextSeq++;
      this.lostRun++;
      return;
    }
    if (this.cur.length === 0) this.curOpenedTs = ts;
    this.cur.push(ev);
    if (ts < this.curMin) this.curMin = ts;
    if (ts > this.curMax) this.curMax = ts;
    if (this.cur.length >= this.cfg.batchSize) this.closeBatch(out);
  }

  /** Out of line: rare (ring-buffer loss scenarios only). */
  private closeLossWindow(min: number): void {
    const lo = this.lossOpen!;
    this.lossWindows.push({ hostname: this.hostname, bootId: this.bootId, fromTsNs: lo.maxBefore - 2 * S, toTsNs: min + 2 * S, lost: lo.lost, mode: lo.mode, scenario: lo.scenario });
    this.lossOpen = undefined;
  }

  private closeBatch(out: EventBatch[]): void {
    const events = this.cur, min = this.curMin, max = this.curMax;
    this.cur = [];
    this.curMin = Infinity; this.curMax = -Infinity;
    out.push({ host: this.info, firstSeq: this.nextSeq, dropped: this.pendingDropped, events });
    if (this.lossOpen) this.closeLossWindow(min);
    this.nextSeq += events.length;
    this.pendingDropped = 0;
    if (max > this.maxTsEmitted) this.maxTsEmitted = max;
    this.stats.batches++;
    this.stats.events += events.length;
  }
}

function shuffled<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = rng.int(0, i); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
  return xs;
}

function capabilityName(c: number): string {
  const names = ['CAPABILITY_UNSPECIFIED', 'LOCK', 'ZAP', 'DMABUF_REVOKE', 'MOVE_NOTIFY', 'BAR_MMAP', 'BAR_FAULT', 'TRIGGER', 'DEVICE_INFO'];
  return names[c] ?? String(c);
}
