// One simulated host: its devices and their kernel state, the kernel paths per era (kernel.ts), the workloads that
// drive them, what the collector reports (its batching and loss: collector.ts) and the judge that turns the
// kernel's truth into the findings a correct correlator reports. Pure and deterministic.
import {
  Backing, Capability, TriggerKind, VFIO_PCI_OFFSET_SHIFT, ZapTarget,
  type BodyKind, type Event, type EventBatch, type HostInfo, type Zap,
} from '../../services/core/model.js';
import {
  BAR_PROFILES, COLLECTORS, ERAS, IMPORTER_LATENCY, backingOf, customVmOpsBars, driversFor, isVirtualFunction, zapBarsOnRevoke,
  type Arch, type BarSpec, type Collector, type CollectorKind, type DriverName, type Era, type EraName, type Flavor, type ImporterKind,
} from './eras.js';
import { Judge, SilentJudge, newKnowledge, type JudgeHost, type Knowledge } from './judge.js';
import { PATHS, memoryEnabled, type PathName } from './kernel.js';
import { SimCollector } from './collector.js';
import { Rng, weightTable, type WeightTable } from './rng.js';
import type { FaultName, FleetStats, LossWindow, TruthDevice, TruthEpisode, TruthFinding, TruthHost } from './truth.js';

const US = 1_000, MS = 1_000_000, S = 1_000_000_000;
/** unmap_mapping_range(vdev inode, 0, VFIO_PCI_OFFSET_TO_INDEX(ROM) << 40): BAR0..BAR5. */
const ALL_BARS = 6 * 2 ** VFIO_PCI_OFFSET_SHIFT;
/** Generation step: every host advances by this much simulated time per round (index.ts), and the collector reads
 * its buffers as often. */
export const EPOCH_NS = 100 * MS;
/** Workload activities last at most this long (rpm entry + pause + exit); loss scenarios keep them this far away. */
const MAX_ACTIVITY_NS = 6 * S;
const EINVAL = -22;

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
  collector: CollectorKind;
  /** Judge the ground truth (SimulateOptions.truth). */
  truth: boolean;
  /** See SimulateOptions.unpopulatedPre611Revokes. */
  unpopulatedPre611Revokes: boolean;
}

export interface Actor { pid: number; tid: number; comm: string; cpu: number }
export interface Proc { pid: number; comm: string; main: Actor; workers: Actor[] }

export interface Mapping {
  id: number; bar: number; backing: Backing; length: number;
  /** The kernel's truth: PTEs installed. */
  populated: boolean;
  /** DMABUF-backed mmaps (series): the DMABUF and whether it is revoked. */
  dmabufId: number; dmabufRevoked: boolean;
  /** Whether a correlator knows that DMABUF's revoked state (judge.ts). */
  dmabufKnown: boolean;
  /** The collector reported it (snapshot or BarMmap) since the mapping list was last known: judge.ts. */
  seen: boolean;
  /** What a correlator takes as populated: a snapshot, or an ok fault, until a zap or revoke reached it. */
  obsPopulated: boolean;
  /** ...and whether that rests on a kernel fact (an ok fault seen) rather than on the snapshot's assumption. */
  populatedFact: boolean;
}
interface Importer { dmabufId: number; kind: ImporterKind; importers: number; revoked: boolean }

export interface Device {
  addr: string;
  driver: DriverName;
  bars: readonly BarSpec[];
  group: number;
  proc: Proc;
  scenario: string | undefined;
  fault: FaultName | undefined;
  // static
  zapBarsOnRevoke: boolean;
  dmabufBarMmap: boolean;
  /** pdev->no_command_memory (a VF). */
  noCmd: boolean;
  customVmOpsBars: number;
  /** What the collector sends at its start: a DeviceInfo with state fields, one without, or nothing. */
  described: 'full' | 'basic' | 'none';
  /** vdev->reset_works: VFIO_DEVICE_RESET returns -EINVAL without it. */
  resetWorks: boolean;
  // kernel state
  memBit: boolean;
  /** PCI D-state (0 = D0, 3 = D3hot; runtime PM low power counts as D3hot). */
  power: number;
  openCount: number;
  /** The device's DMABUFs are revoked (the last vfio_pci_dma_buf_move's direction). */
  revoked: boolean;
  permanent: boolean;
  mappings: Map<number, Mapping>;
  importers: Importer[];
  /** The vdev inode mapping has a VMA the collector never saw (only kernel facts reveal it). */
  hiddenVmas: boolean;
  /** The tid holding memory_lock for write (0: free). */
  lockHolder: number;
  /** What the collector has let a correlator know (judge.ts). */
  k: Knowledge;
}

export interface Step { at: number; run: (t: number) => number }

interface Slot { devices: Device[]; proc: Proc; script: Step[] | undefined; stepIdx: number }

/** What path() may do beyond the plain kernel path (scenarios; the workload passes none). */
export interface PathExtras {
  groupId?: number;
  /** The trigger is seen inside the lock window (a probe under memory_lock) rather than announced at entry. */
  triggerInside?: boolean;
  /** The trigger was announced already (the task blocked in down_write since). */
  announced?: boolean;
  /** The function returns before taking the lock (ioctl -EINVAL, an FLR bit on a device without FLR). */
  earlyReturn?: boolean;
  /** What the trigger function returns (default: the path's okRet; early returns -EINVAL). */
  ret?: number;
  waitNs?: number;
  /** down_write returns no earlier than this (another task holds the lock until then): the wait grows. */
  notBefore?: number;
  /** Runs inside the window after the revoke (other tasks acting meanwhile); returns when it ends. */
  inside?: (t: number) => number;
  /** Never released within the run (a hung reset). */
  hang?: boolean;
  // Injected kernel or driver bugs.
  /** A revoking path that does not zap. */
  omitZap?: boolean;
  /** No vfio_pci_dma_buf_move(vdev, false) before up_write. */
  omitUnrevoke?: boolean;
  /** The unrevoke check reads the power state from before vfio_pci_set_power_state(D0). */
  staleUnrevokeCheck?: boolean;
  /** vfio_pci_dma_buf_move(vdev, false) that does not skip DMABUFs already unrevoked. */
  forceUnrevoke?: boolean;
  doubleZap?: boolean;
  slowNotifyNs?: number;
}

export interface PathOptions extends PathExtras {
  actor: Actor;
  /** Time the operation itself holds the lock (reset, power transition, config write). */
  opNs: number;
}

type Extras = { [K in keyof Required<PathExtras>]: PathExtras[K] };
/** Every extra in one object shape, so that path() reads them from one hidden class (the workload's calls pass none). */
function extras(x: PathExtras): Extras {
  return { groupId: x.groupId, triggerInside: x.triggerInside, announced: x.announced, earlyReturn: x.earlyReturn, ret: x.ret,
    waitNs: x.waitNs, notBefore: x.notBefore, inside: x.inside, hang: x.hang, omitZap: x.omitZap, omitUnrevoke: x.omitUnrevoke,
    staleUnrevokeCheck: x.staleUnrevokeCheck, forceUnrevoke: x.forceUnrevoke, doubleZap: x.doubleZap, slowNotifyNs: x.slowNotifyNs };
}
const NO_EXTRAS: Extras = extras({});
const TRIGGER_INSIDE: Extras = extras({ triggerInside: true });

export interface EpisodeRecord {
  dev: Device; acquireTs: number; releaseTs: number;
  /** End (ts + duration) of the last revoking step (Zap or DmaBufRevoke{revoked:true}); 0 if none. */
  revokeEnd: number;
  zaps: Event[]; unrevoke?: Event;
}

/** dmabufMove() scratch. */
const moveChanged: (Importer | undefined)[] = [], moveDurs: number[] = [];

type Activity = 'fault' | 'remap' | 'lockOnly' | 'memToggle' | 'reset' | 'flr' | 'd3' | 'rpm' | 'hotReset' | 'closeReopen' | 'permanent';
/** pickActivity() weights by [hot-reset set?][series kernel?], built once. */
const ACTIVITY_WEIGHTS: readonly (readonly WeightTable<Activity>[])[] = [false, true].map((set) => [false, true].map((series) => weightTable<Activity>({
  fault: 0.28, remap: 0.07, lockOnly: 0.14, memToggle: 0.13, reset: 0.09, flr: 0.05, d3: 0.07, rpm: 0.06,
  hotReset: set ? 0.07 : 0,
  closeReopen: 0.02,
  permanent: series ? 0.015 : 0,
})));

export interface DeviceInit {
  mapAll?: boolean; profile?: number; described?: Device['described']; vf?: boolean; openCount?: number;
  memBit?: boolean; power?: number; importers?: boolean;
}

export class HostSim implements JudgeHost {
  readonly era: Era;
  readonly arch: Arch;
  readonly flavor: Flavor;
  readonly release: string;
  readonly hostname: string;
  readonly bootId: string;
  readonly info: HostInfo;
  readonly readsVmas: boolean;
  readonly collector: Collector;
  readonly triggerEndFacts: boolean;
  readonly releaseAtLeast619: boolean;
  /** CLOCK_MONOTONIC at collector start (the host booted days ago). */
  readonly t0: number;
  readonly end: number;
  readonly devices: Device[] = [];
  readonly findings: TruthFinding[] = [];
  readonly episodes: TruthEpisode[] = [];
  /** Host time ranges taken by injected scenarios (kept apart so loss never touches another fault). */
  readonly reserved: { from: number; to: number }[] = [];
  done = false;

  private readonly rng: Rng;
  private readonly judge: Judge;
  private readonly ncpu: number;
  private readonly slots: Slot[] = [];
  private readonly agent: Actor;
  readonly kworker: Actor;
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
  /** Set by emit(): the collector does not deliver the event just emitted (before its start, or lost). */
  private unseen = false;
  private losing: { dev: Device | undefined; kinds: ReadonlySet<BodyKind> | undefined; reported: boolean } | undefined;
  /** Workload activities start nothing in these host-time windows (around injected loss), nor after quietFrom. */
  private readonly quiet: { from: number; to: number }[] = [];
  private quietFrom = Infinity;

  /** What the collector reads and how it batches it (collector.ts). */
  private readonly out: SimCollector;

  constructor(readonly cfg: HostConfig, private readonly stats: FleetStats) {
    this.rng = new Rng(cfg.seed, 0x5157, cfg.index);
    this.era = ERAS[cfg.era];
    this.flavor = cfg.flavor;
    this.collector = COLLECTORS[cfg.collector];
    this.triggerEndFacts = this.collector.triggerEnd;
    this.arch = cfg.flavor === 'x86' ? 'amd64' : 'arm64';
    this.release = this.rng.pick(this.era.releases[this.arch]);
    const v = /^(\d+)\.(\d+)/.exec(this.release);
    this.releaseAtLeast619 = v !== null && (Number(v[1]) > 6 || (Number(v[1]) === 6 && Number(v[2]) >= 19));
    this.readsVmas = cfg.readsVmas;
    this.hostname = `sim-${cfg.flavor}-${String(cfg.index + 1).padStart(4, '0')}`;
    this.bootId = this.rng.uuid();
    const caps = [...this.era.capabilities];
    if (this.collector.triggerEnd) caps.push(Capability.TRIGGER_END);
    this.info = {
      hostname: this.hostname, bootId: this.bootId, kernelRelease: this.release, collectorVersion: this.collector.version,
      capabilities: caps,
    };
    this.t0 = this.rng.int(3_600, 40 * 86_400) * S + this.rng.int(0, S - 1);
    this.end = this.t0 + cfg.durationNs;
    this.out = new SimCollector(this.info, this.t0, cfg.batchSize, cfg.flushIntervalNs, stats);
    this.ncpu = cfg.flavor === 'grace' ? 72 : cfg.flavor === 'kunpeng' ? this.rng.pick([96, 128]) : this.rng.pick([32, 64, 96, 128]);
    this.nextPid = this.rng.int(2_000, 40_000);
    this.nextMappingId = this.rng.int(1, 0xffff) * 0x10000;
    this.nextGroupId = (cfg.index + 1) * 100_000;
    this.buses = shuffled(this.rng, Array.from({ length: 0xf0 }, (_, i) => i + 0x10));
    this.agent = { pid: this.rng.int(500, 1_500), tid: 0, comm: 'revokescope', cpu: this.rng.int(0, this.ncpu - 1) };
    this.agent.tid = this.agent.pid;
    const kw = this.rng.int(100, 400);
    this.kworker = { pid: kw, tid: kw, comm: `kworker/u${this.ncpu * 2}:${this.rng.int(0, 9)}`, cpu: this.rng.int(0, this.ncpu - 1) };
    this.judge = cfg.truth ? new Judge(this) : new SilentJudge(this);
    this.buildWorkloadDevices();
  }

  // ---------------------------------------------------------------- devices and processes

  newProc(driver: DriverName): Proc {
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
  newDevice(driver: DriverName, proc: Proc, addr: string, group: number, init: DeviceInit = {}): Device {
    const profiles = BAR_PROFILES[driver];
    const bars = profiles[init.profile ?? this.rng.int(0, profiles.length - 1)]!;
    const dev: Device = {
      addr, driver, bars, group, proc, scenario: undefined, fault: undefined,
      zapBarsOnRevoke: zapBarsOnRevoke(this.era, driver), dmabufBarMmap: this.era.dmabufBarMmap,
      noCmd: init.vf ?? isVirtualFunction(driver), customVmOpsBars: customVmOpsBars(driver),
      described: init.described ?? (this.collector.stateFields ? 'full' : 'basic'), resetWorks: true,
      memBit: init.memBit ?? true, power: init.power ?? 0, openCount: init.openCount ?? 1, revoked: false, permanent: false,
      mappings: new Map(), importers: [], hiddenVmas: false, lockHolder: 0, k: newKnowledge(),
    };
    if (init.mapAll ?? true) for (const b of bars) this.addMapping(dev, b, true);
    if (this.era.dmabufExport && (init.importers ?? true)) this.addImporters(dev);
    this.devices.push(dev);
    return dev;
  }

  private addImporters(dev: Device): void {
    const n = dev.driver === 'hisi_acc_vfio_pci' ? 0 : this.rng.weighted({ 0: 0.35, 1: 0.35, 2: 0.2, 3: 0.1 } as Record<string, number>);
    for (let i = 0; i < Number(n); i++) {
      const kind: ImporterKind = dev.driver === 'nvgrace-gpu' ? this.rng.pick(['iommufd', 'mlx5_ib'] as const)
        : this.rng.pick(['mlx5_ib', 'mlx5_ib', 'iommufd', 'amdgpu', 'xe'] as const);
      this.addImporter(dev, kind, this.rng.int(1, 2));
    }
  }

  /** A DMABUF exported from the device and imported by a peer (RDMA NIC, GPU, iommufd). */
  addImporter(dev: Device, kind: ImporterKind, importers = 1): void {
    // vfio_pci_dmabuf_export(): priv->revoked = !__vfio_pci_memory_enabled(vdev), whatever older DMABUFs are in.
    dev.importers.push({ dmabufId: this.nextDmabufId++, kind, importers, revoked: !memoryEnabled(dev) });
  }

  addMapping(dev: Device, bar: BarSpec, populated: boolean): Mapping {
    const backing = backingOf(this.era, bar);
    const m: Mapping = { id: this.nextMappingId, bar: bar.bar, backing, length: bar.length, populated,
      dmabufId: backing === Backing.DMABUF ? this.nextDmabufId++ : 0, dmabufRevoked: backing === Backing.DMABUF && !memoryEnabled(dev),
      dmabufKnown: false, seen: false, obsPopulated: false, populatedFact: false };
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
  addScenarioDevice(driver: DriverName, scenario: string, fault: FaultName, init: DeviceInit = {}): { dev: Device; slot: { steps: Step[] } } {
    const proc = this.newProc(driver);
    const dev = this.newDevice(driver, proc, this.addr(this.newBus(), 0), 0, init);
    dev.scenario = scenario; dev.fault = fault;
    const steps: Step[] = [];
    this.slots.push({ devices: [dev], proc, script: steps, stepIdx: 0 });
    return { dev, slot: { steps } };
  }

  /** A device of the same hot-reset set as `of` (another function of its bus) that nobody opened. */
  addUnopenedSibling(of: Device, memBit: boolean): Device {
    const bus = of.addr.slice(0, of.addr.lastIndexOf(':'));
    const dev = this.newDevice('vfio-pci', of.proc, this.addr(bus, 1), of.group, { mapAll: false, openCount: 0, memBit, importers: false });
    dev.scenario = of.scenario; dev.fault = of.fault;
    return dev;
  }

  newGroupId(): number { return this.nextGroupId++; }

  reserve(from: number, to: number): boolean {
    if (this.reserved.some((r) => from < r.to && r.from < to)) return false;
    this.reserved.push({ from, to });
    return true;
  }

  /** Loss scenarios: workload activities keep away from [from, to] (none may span into it). */
  quietAround(from: number, to: number): void { this.quiet.push({ from: from - MAX_ACTIVITY_NS, to }); }
  /** Hung-device scenarios: the workload stops for good (the host goes quiet; heartbeats go on). */
  quietAfter(t: number): void { this.quietFrom = Math.min(this.quietFrom, t - MAX_ACTIVITY_NS); }

  truthHost(): TruthHost {
    return {
      hostname: this.hostname, bootId: this.bootId, kernelRelease: this.release, era: this.era.name, arch: this.arch,
      flavor: this.flavor, collector: this.collector.kind, readsVmas: this.readsVmas,
      capabilities: (this.info.capabilities ?? []).map((c) => capabilityName(c)), startTsNs: this.t0,
      devices: this.devices.map((d): TruthDevice => ({
        device: d.addr, driver: d.driver, group: d.group, described: d.described, vf: d.noCmd, zapBarsOnRevoke: d.zapBarsOnRevoke,
        dmabufBarMmap: d.dmabufBarMmap, ...(d.scenario ? { scenario: d.scenario } : {}),
      })),
    };
  }

  // ---------------------------------------------------------------- truth (JudgeHost)

  addFinding(dev: Device, f: Omit<TruthFinding, 'hostname' | 'bootId' | 'kernelRelease' | 'device' | 'driver' | 'fault' | 'scenario'>): TruthFinding {
    const t: TruthFinding = { ...f, hostname: this.hostname, bootId: this.bootId, kernelRelease: this.release, device: dev.addr,
      driver: dev.driver, fault: dev.fault ?? 'workload', scenario: dev.scenario ?? '' };
    this.findings.push(t);
    return t;
  }

  addEpisode(dev: Device, e: Omit<TruthEpisode, 'hostname' | 'bootId' | 'device' | 'scenario'>): TruthEpisode {
    const t: TruthEpisode = { hostname: this.hostname, bootId: this.bootId, device: dev.addr, scenario: dev.scenario ?? '', ...e };
    this.episodes.push(t);
    return t;
  }

  // ---------------------------------------------------------------- event emission

  private cpuOf(a: Actor): number {
    // Threads mostly stay on their CPU; the scheduler sometimes migrates them.
    if (this.rng.chance(0.06)) a.cpu = this.rng.int(0, this.ncpu - 1);
    return a.cpu;
  }

  /** Queues an event for the collector's read; sets `unseen` when the collector will not deliver it (it happened
   * before the collector started, or the ring buffer loses it). */
  emit<K extends BodyKind>(ts: number, a: Actor, dev: Device, kind: K, body: NonNullable<Event[K]>): Event {
    const cpu = this.cpuOf(a), pid = a.pid, tid = a.tid, comm = a.comm, device = dev.addr;
    const b = body as never;
    // One object shape for every event, whatever its body: the members not set are undefined (protobuf
    // encoders and JSON skip them), so the encoder and the rest of the pipeline see one shape, not thirteen.
    const ev: Event = { tsNs: ts, cpu, pid, tid, comm, device, deviceInfo: undefined, lockAcquire: undefined, lockRelease: undefined,
      zap: undefined, dmabufRevoke: undefined, moveNotify: undefined, barMmap: undefined, barMunmap: undefined, barFault: undefined,
      trigger: undefined, triggerEnd: undefined, powerTransition: undefined, resetFunction: undefined };
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
      case 'triggerEnd': ev.triggerEnd = b; break;
      case 'powerTransition': ev.powerTransition = b; break;
      case 'resetFunction': ev.resetFunction = b; break;
    }
    this.unseen = false;
    if (ts < this.t0) { this.unseen = true; return ev; } // before the collector started: never read
    this.out.enqueue(ev, ts, cpu, this.losing !== undefined && this.maybeLose(ts, dev, kind));
    return ev;
  }

  /** Out of line: only while a loss scenario runs. */
  private maybeLose(ts: number, dev: Device, kind: BodyKind): boolean {
    const l = this.losing!;
    if ((l.dev !== undefined && l.dev !== dev) || (l.kinds !== undefined && !l.kinds.has(kind))) return false;
    this.unseen = true;
    if (!l.reported) { l.reported = true; this.judge.lost(ts); }
    return true;
  }

  /** From now until stopLosing(), the ring buffer loses the events of `dev` (all devices if undefined) of these kinds
   * (all if undefined): reported as `dropped` or as a seq gap. */
  loseFrom(dev: Device | undefined, kinds: readonly BodyKind[] | undefined, mode: LossWindow['mode'], scenario: string): void {
    this.losing = { dev, kinds: kinds ? new Set(kinds) : undefined, reported: false };
    this.out.lossMode(mode, scenario);
  }

  stopLosing(): void { this.losing = undefined; }

  private collectorStart(): void {
    // The agent resolves each vfio device and seeds its state and mappings (/proc/*/maps, the vdev's fields via BTF).
    let t = this.t0 + this.rng.int(50 * US, 400 * US);
    for (const dev of this.devices) {
      if (dev.described === 'none') continue;
      const full = dev.described === 'full';
      const info: NonNullable<Event['deviceInfo']> = { driver: dev.driver, dmabufBarMmap: dev.dmabufBarMmap };
      if (this.era.zapFlagField) info.zapBarsOnRevoke = dev.zapBarsOnRevoke;
      if (full) {
        info.memoryEnabled = memoryEnabled(dev);
        info.powerState = dev.power;
        if (this.era.dmabufExport) info.revoked = dev.revoked;
        info.openCount = dev.openCount;
        info.noCommandMemory = dev.noCmd;
        info.customVmOpsBars = dev.customVmOpsBars;
      }
      this.emit(t, this.agent, dev, 'deviceInfo', info);
      this.judge.deviceInfo(dev, full);
      t += this.rng.gap(8 * US);
      for (const m of dev.mappings.values()) {
        this.emit(t, this.agent, dev, 'barMmap', { bar: m.bar, backing: m.backing, mappingId: m.id, length: m.length, snapshot: true });
        this.judge.mapping(dev, m, true);
        t += this.rng.gap(3 * US);
      }
    }
  }

  // ---------------------------------------------------------------- kernel building blocks

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

  /** down_write(&vdev->memory_lock) returned after waiting waitNs. */
  acquire(dev: Device, a: Actor, t: number, waitNs: number): void {
    this.emit(t, a, dev, 'lockAcquire', { waitNs });
    dev.lockHolder = a.tid;
    if (!this.unseen) this.judge.acquire(dev, a.tid, a.pid, a.comm, t, waitNs);
  }

  /** up_write(&vdev->memory_lock); a close leaves the device without mappings or DMABUFs. */
  releaseLock(dev: Device, a: Actor, t: number, close = false): void {
    this.emit(t, a, dev, 'lockRelease', {});
    dev.lockHolder = 0;
    if (close) {
      dev.importers = [];
      dev.revoked = false; dev.permanent = false;
      dev.openCount = Math.max(0, dev.openCount - 1);
    }
    if (!this.unseen) this.judge.release(dev, a.tid, t, close);
    this.countEpisode(dev);
  }

  /** unmap_mapping_range(vdev inode mapping, 0, 6 << 40) (>= 6.11): every device-fd mapping loses its PTEs. */
  deviceZap(dev: Device, a: Actor, t: number): { ev: Event; end: number } {
    let populated = false;
    for (const m of dev.mappings.values()) if (m.backing !== Backing.DMABUF && m.populated) populated = true;
    const dur = populated ? this.rng.ns(45 * US, 0.6, 6 * US, 1.5 * MS) : this.rng.ns(12 * US, 0.5, 3 * US, 400 * US);
    const zap: Zap = { start: 0, length: ALL_BARS, durationNs: dur, target: ZapTarget.DEVICE };
    if (this.readsVmas) zap.hadVmas = this.inodeHasVmas(dev);
    const ev = this.emit(t, a, dev, 'zap', zap);
    for (const m of dev.mappings.values()) if (m.backing !== Backing.DMABUF) m.populated = false;
    if (!this.unseen) this.judge.zap(dev, a.tid, t, dur, 0, ALL_BARS, zap.hadVmas ?? undefined);
    return { ev, end: t + dur };
  }

  /** Before 6.11: vfio_pci_zap_and_vma_lock() zap_vma_ptes() each faulted VMA (on vdev->vma_list), before down_write. */
  private preLockZaps(dev: Device, a: Actor, t: number, out: Event[]): number {
    for (const m of dev.mappings.values()) {
      if (!m.populated) continue;
      const dur = this.rng.ns(20 * US, 0.6, 3 * US, 1 * MS);
      const start = m.bar * 2 ** VFIO_PCI_OFFSET_SHIFT;
      const ev = this.emit(t, a, dev, 'zap', { start, length: m.length, durationNs: dur, target: ZapTarget.DEVICE });
      m.populated = false;
      if (!this.unseen) this.judge.zap(dev, a.tid, t, dur, start, m.length, undefined);
      out.push(ev);
      t += dur + this.rng.gap(1_500);
    }
    return t;
  }

  /** vfio_pci_dma_buf_move(vdev, revoked): each DMABUF whose state changes is marked, its own mapping zapped (series:
   * DMABUF-backed BAR mmaps) and its importers told (dma_buf_move_notify / dma_buf_invalidate_mappings); DMABUFs
   * already in that state, or permanently revoked, are skipped. dmabuf_count = the DMABUFs changed. */
  dmabufMove(dev: Device, a: Actor, t: number, revoked: boolean, slowNotifyNs?: number, force = false): { ev: Event; end: number } {
    const start = t;
    const was = dev.revoked;
    const skipAll = dev.permanent && !revoked;
    let c = t + this.rng.gap(1_200);
    let count = 0;
    if (!skipAll) {
      for (const m of dev.mappings.values()) {
        if (m.backing !== Backing.DMABUF || (m.dmabufRevoked === revoked && !force)) continue;
        count++;
        if (revoked) {
          const zd = this.rng.ns(8 * US, 0.6, 1 * US, 300 * US);
          this.emit(c, a, dev, 'zap', { start: 0, length: m.length, durationNs: zd, target: ZapTarget.DMABUF });
          c += zd + this.rng.gap(400);
          m.populated = false;
        }
        m.dmabufRevoked = revoked;
        const md = this.rng.gap(700);
        this.emit(c, a, dev, 'moveNotify', { dmabufId: m.dmabufId, importerCount: 0, durationNs: md });
        c += md + this.rng.gap(300);
      }
      // Importers whose DMABUF changes, and their callbacks' durations (scratch arrays: one move at a time; n counts
      // what they hold, their length is never cut).
      const changed = moveChanged, durs = moveDurs;
      let n = 0, sum = 0;
      for (const imp of dev.importers) {
        if (imp.revoked === revoked && !force) continue;
        const d = revoked
          ? this.rng.ns(IMPORTER_LATENCY[imp.kind].median, IMPORTER_LATENCY[imp.kind].sigma, 1 * US, 12 * MS)
          : this.rng.ns(3 * US, 0.7, 500, 200 * US);
        changed[n] = imp; durs[n] = d; n++;
        sum += d;
      }
      // Correct fleets keep the whole revoke far below the 50 ms SLOW_REVOKE limit.
      if (sum > 20 * MS) for (let i = 0; i < n; i++) durs[i] = Math.max(1, Math.round(durs[i]! * (20 * MS) / sum));
      if (slowNotifyNs !== undefined && n > 0) durs[n - 1] = slowNotifyNs;
      for (let i = 0; i < n; i++) {
        const imp = changed[i]!;
        changed[i] = undefined;
        imp.revoked = revoked;
        count++;
        this.emit(c, a, dev, 'moveNotify', { dmabufId: imp.dmabufId, importerCount: imp.importers, durationNs: durs[i]! });
        c += durs[i]! + this.rng.gap(300);
      }
    }
    const dur = c - start + this.rng.gap(400);
    const body: Event['dmabufRevoke'] = { revoked, dmabufCount: count, durationNs: dur };
    if (revoked && this.readsVmas) body.deviceHasVmas = this.inodeHasVmas(dev);
    const ev = this.emit(start, a, dev, 'dmabufRevoke', body);
    if (!skipAll) dev.revoked = revoked;
    if (!this.unseen) this.judge.dmabufRevoke(dev, a.tid, start, revoked, count, dur, body.deviceHasVmas ?? undefined, was);
    return { ev, end: start + dur };
  }

  trigger(dev: Device, a: Actor, t: number, kind: TriggerKind, groupId = 0): number {
    this.emit(t, a, dev, 'trigger', { kind, groupId });
    if (!this.unseen) this.judge.trigger(dev, a.tid, kind, groupId, t);
    this.stats.triggers[TriggerKind[kind]!] = (this.stats.triggers[TriggerKind[kind]!] ?? 0) + 1;
    return t;
  }

  /** The trigger's function returned (collectors that report it). */
  triggerEnd(dev: Device, a: Actor, t: number, kind: TriggerKind, ret: number): void {
    if (!this.collector.triggerEnd) return;
    this.emit(t, a, dev, 'triggerEnd', { kind, ret });
    if (!this.unseen) this.judge.triggerEnd(dev, a.tid, kind, ret);
  }

  private countEpisode(dev: Device): void {
    this.stats.episodes++;
    this.stats.episodesByEra[this.era.name] = (this.stats.episodesByEra[this.era.name] ?? 0) + 1;
    this.stats.episodesByDriver[dev.driver] = (this.stats.episodesByDriver[dev.driver] ?? 0) + 1;
  }

  /** One write section of memory_lock along a kernel path (kernel.ts): [trigger] → (pre-6.11 zaps) → down_write →
   * state change → revoke → the operation (with its markers) → unrevoke if memory is enabled → up_write →
   * [TriggerEnd]. */
  path(dev: Device, t: number, name: PathName, a: Actor, opNs: number, x?: PathExtras): EpisodeRecord {
    const o = x === undefined ? NO_EXTRAS : x === TRIGGER_INSIDE ? x as Extras : extras(x);
    const spec = PATHS[name], era = this.era;
    const kind = spec.trigger;
    if (kind !== undefined && !o.triggerInside && !o.announced) {
      this.trigger(dev, a, t, kind, o.groupId ?? 0);
      t += this.rng.ns(15 * US, 0.6, 2 * US, 200 * US);
    }
    if (o.earlyReturn) {
      t += this.rng.gap(4 * US);
      if (kind !== undefined) this.triggerEnd(dev, a, t, kind, o.ret ?? EINVAL);
      return { dev, acquireTs: 0, releaseTs: t, revokeEnd: 0, zaps: [] };
    }
    const zaps: Event[] = [];
    if (spec.revokes && era.zap === 'vma-list' && !o.omitZap) {
      t = this.preLockZaps(dev, a, t, zaps);
      t += this.rng.gap(3 * US);
    }
    let wait = o.waitNs ?? this.lockWait();
    t += wait;
    if (o.notBefore !== undefined && t < o.notBefore) { wait += o.notBefore - t; t = o.notBefore; }
    const acquireTs = t;
    // The kernel changes the state inside the write section; nothing can observe it before up_write but the
    // unrevoke check, so it is applied at acquire (docs/rules.md §3).
    const powerBefore = dev.power;
    if (spec.memBit !== undefined) dev.memBit = spec.memBit;
    if (spec.power !== undefined) dev.power = spec.power;
    this.acquire(dev, a, t, wait);
    t += this.rng.ns(6 * US, 0.6, 1 * US, 100 * US);
    let revokeEnd = 0;
    for (const z of zaps) revokeEnd = Math.max(revokeEnd, z.tsNs! + z.zap!.durationNs!);
    if (spec.revokes) {
      if (!o.omitZap && (era.zap === 'unconditional' || (era.zap === 'conditional' && dev.zapBarsOnRevoke))) {
        const z = this.deviceZap(dev, a, t); zaps.push(z.ev); t = revokeEnd = z.end;
        if (o.doubleZap) {
          t += this.rng.gap(2 * US);
          const z2 = this.deviceZap(dev, a, t); zaps.push(z2.ev); t = revokeEnd = z2.end;
        }
      }
      if (era.dmabufExport) {
        t += this.rng.gap(2 * US);
        t = revokeEnd = this.dmabufMove(dev, a, t, true, o.slowNotifyNs).end;
      }
      if (spec.permanent) dev.permanent = true;
    } else if (spec.cleanup && era.dmabufExport) {
      t += this.rng.gap(2 * US);
      t = revokeEnd = this.dmabufMove(dev, a, t, true).end;
    }
    if (kind !== undefined && o.triggerInside) {
      t += this.rng.gap(2 * US);
      this.trigger(dev, a, t, kind, o.groupId ?? 0);
    }
    if (o.inside) t = o.inside(t + this.rng.gap(2 * US));
    const ret = o.ret ?? spec.okRet;
    t += this.rng.gap(2 * US);
    let opLeft = opNs;
    if (this.collector.markers && spec.setsPower && powerBefore !== dev.power) {
      const pd = Math.min(opLeft, this.rng.ns(10 * MS, 0.2, 2 * MS, 20 * MS));
      this.emit(t, a, dev, 'powerTransition', { from: powerBefore, to: dev.power, durationNs: pd });
      if (!this.unseen) this.judge.powerTransition(dev);
      t += pd; opLeft -= pd;
    }
    if (this.collector.markers && spec.reset === 'function') {
      this.emit(t, a, dev, 'resetFunction', { ret: Math.min(0, ret), durationNs: Math.max(1, opLeft) });
    }
    if (o.hang) return { dev, acquireTs, releaseTs: Infinity, revokeEnd, zaps };
    t += opLeft;
    let unrevoke: Event | undefined;
    const enabled = o.staleUnrevokeCheck ? memoryEnabled({ memBit: dev.memBit, power: powerBefore, noCmd: dev.noCmd }) : memoryEnabled(dev);
    if (era.dmabufExport && spec.unrevoke && !o.omitUnrevoke && (enabled || o.forceUnrevoke)) {
      t += this.rng.gap(2 * US);
      const u = this.dmabufMove(dev, a, t, false, undefined, o.forceUnrevoke ?? false);
      unrevoke = u.ev; t = u.end;
    }
    t += this.rng.ns(3 * US, 0.5, 500, 50 * US);
    this.releaseLock(dev, a, t, name === 'close');
    const releaseTs = t;
    if (kind !== undefined) this.triggerEnd(dev, a, t + this.rng.gap(3 * US), kind, ret);
    const rec: EpisodeRecord = { dev, acquireTs, releaseTs, revokeEnd, zaps };
    if (unrevoke) rec.unrevoke = unrevoke;
    return rec;
  }

  /** VFIO_DEVICE_PCI_HOT_RESET: vfio_pci_dev_set_hot_reset() takes every device's memory_lock with
   * down_write_trylock in turn (same task), zaps and revokes each, resets the bus, unrevokes where memory is
   * enabled and releases. `announceAll`: the collector announces the trigger on every device of the set, else on
   * the device whose fd the ioctl came through. */
  hotReset(devs: readonly Device[], a: Actor, t: number, announceAll: boolean): { end: number; acquires: number[] } {
    const groupId = this.nextGroupId++;
    const announced = announceAll ? devs : devs.slice(0, 1);
    for (const d of announced) { this.trigger(d, a, t, TriggerKind.HOT_RESET, groupId); t += this.rng.gap(4 * US); }
    t += this.rng.gap(10 * US);
    if (this.era.zap === 'vma-list') for (const d of devs) t = this.preLockZaps(d, a, t, []);
    const acquires: number[] = [];
    for (const d of devs) {
      t += this.rng.gap(2 * US);
      d.power = 0;
      this.acquire(d, a, t, this.rng.ns(300, 0.5, 50, 2 * US));
      acquires.push(t);
      t += this.rng.gap(3 * US);
      if (this.era.zap === 'unconditional' || (this.era.zap === 'conditional' && d.zapBarsOnRevoke)) t = this.deviceZap(d, a, t).end;
      if (this.era.dmabufExport) t = this.dmabufMove(d, a, t + this.rng.gap(2 * US), true).end;
    }
    // pci_reset_bus(): secondary bus reset, then wait for the devices to come back.
    const bus = this.rng.ns(300 * MS, 0.5, 110 * MS, 1.5 * S);
    t += this.rng.gap(2 * US);
    if (this.collector.markers) this.emit(t, a, devs[0]!, 'resetFunction', { ret: 0, durationNs: bus });
    t += bus;
    for (const d of devs) {
      if (this.era.dmabufExport && memoryEnabled(d)) t = this.dmabufMove(d, a, t + this.rng.gap(2 * US), false).end;
      t += this.rng.gap(3 * US);
      this.releaseLock(d, a, t);
    }
    for (const d of announced) this.triggerEnd(d, a, t + this.rng.gap(3 * US), TriggerKind.HOT_RESET, 0);
    return { end: t + 10 * US, acquires };
  }

  // ---------------------------------------------------------------- mmap / fault traffic

  /** A BAR fault: vfio_pci_mmap_huge_fault() installs PTEs only with memory enabled (under the read lock); a
   * DMABUF-backed mapping's fault only while its DMABUF is not revoked. `buggy`: a driver fault handler that skips
   * the check (an injected bug). */
  barFault(dev: Device, a: Actor, t: number, m: Mapping, buggy = false): number {
    const ok = buggy || (memoryEnabled(dev) && !(m.backing === Backing.DMABUF && m.dmabufRevoked));
    this.emit(t, a, dev, 'barFault', { bar: m.bar, mappingId: m.id, ok });
    if (ok) m.populated = true;
    if (!this.unseen) this.judge.fault(dev, m, ok, t, buggy && !memoryEnabled(dev));
    return t + this.rng.ns(25 * US, 0.7, 3 * US, 2 * MS);
  }

  mmap(dev: Device, a: Actor, t: number, bar: BarSpec): { m: Mapping; end: number } {
    const m = this.addMapping(dev, bar, false);
    this.emit(t, a, dev, 'barMmap', { bar: m.bar, backing: m.backing, mappingId: m.id, length: m.length, snapshot: false });
    if (!this.unseen) this.judge.mapping(dev, m, false);
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
      t += this.rng.gap(5 * US);
    }
    return t;
  }

  worker(dev: Device): Actor { return this.rng.pick(dev.proc.workers); }

  // ---------------------------------------------------------------- workloads

  private pickActivity(slot: Slot): Activity {
    return this.rng.weightedTable(ACTIVITY_WEIGHTS[slot.devices.length > 1 ? 1 : 0]![this.era.dmabufBarMmap ? 1 : 0]!);
  }

  /** Before 6.11 only faulted VMAs are on vdev->vma_list and get zapped; by default a running guest has
   * touched every BAR when a revoke starts (so the correlator sees a zap for each live mapping).
   * Elsewhere sometimes. */
  prepareRevoke(dev: Device, t: number): number {
    const pre611 = this.era.zap === 'vma-list' && !this.cfg.unpopulatedPre611Revokes;
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
        if (this.era.zap === 'vma-list' || dev.mappings.size === 0 || this.rng.chance(0.5)) {
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
        const off = this.path(dev, t, 'mem_disable', a, this.rng.ns(300 * US, 0.6, 20 * US, 3 * MS));
        t = off.releaseTs + this.rng.ns(1 * MS, 1.2, 50 * US, 40 * MS);
        // A guest touching a BAR meanwhile gets SIGBUS (a VF's memory stays enabled: its fault succeeds). Older
        // collectors cannot tell a VF: keep that uncertainty to its scenario (vf_older_collector).
        if (dev.mappings.size > 0 && this.rng.chance(0.2) && !(dev.noCmd && dev.described !== 'full')) {
          t = this.barFault(dev, a, t, this.rng.pick([...dev.mappings.values()])) + this.rng.ns(100 * US, 1);
        }
        return this.path(dev, t, 'mem_enable', a, this.rng.ns(300 * US, 0.6, 20 * US, 3 * MS)).releaseTs;
      }
      case 'reset': {
        // VFIO_DEVICE_RESET at VM boot or reboot: FLR (pcie_flr sleeps 100 ms) or a PM/bus reset.
        t = this.prepareRevoke(dev, t);
        const op = this.rng.chance(0.6) ? this.rng.ns(104 * MS, 0.05, 100 * MS, 140 * MS) : this.rng.ns(8 * MS, 0.4, 2 * MS, 40 * MS);
        return this.path(dev, t, 'ioctl_reset', main, op, this.rng.chance(0.3) ? TRIGGER_INSIDE : undefined).releaseTs;
      }
      case 'flr': {
        // Guest sets PCI_EXP_DEVCTL_BCR_FLR (or the AF FLR bit): the config write calls pci_try_reset_function().
        t = this.prepareRevoke(dev, t);
        return this.path(dev, t, this.rng.chance(0.8) ? 'exp_flr' : 'af_flr', this.worker(dev),
          this.rng.ns(104 * MS, 0.05, 100 * MS, 140 * MS), this.rng.chance(0.3) ? TRIGGER_INSIDE : undefined).releaseTs;
      }
      case 'd3': {
        // PMCSR writes: vfio_pm_config_write() → vfio_pci_set_power_state() (≈11 ms each way on real hardware).
        t = this.prepareRevoke(dev, t);
        const a = this.worker(dev);
        const d3 = this.path(dev, t, 'pm_d3hot', a, this.rng.ns(11 * MS, 0.15, 2 * MS, 30 * MS));
        t = d3.releaseTs + this.rng.ns(40 * MS, 1.2, 1 * MS, 800 * MS);
        return this.path(dev, t, 'pm_d0', a, this.rng.ns(11 * MS, 0.15, 2 * MS, 30 * MS)).releaseTs;
      }
      case 'rpm': {
        // VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY / EXIT: vfio_pci_runtime_pm_entry/exit.
        t = this.prepareRevoke(dev, t);
        const entry = this.path(dev, t, 'rpm_entry', main, this.rng.ns(1 * MS, 0.6, 100 * US, 10 * MS));
        t = entry.releaseTs + this.rng.ns(500 * MS, 0.8, 50 * MS, 3 * S);
        return this.path(dev, t, 'rpm_exit', main, this.rng.ns(2 * MS, 0.6, 100 * US, 20 * MS)).releaseTs;
      }
      case 'hotReset': {
        for (const d of slot.devices) t = this.prepareRevoke(d, t);
        return this.hotReset(slot.devices, main, t, true).end;
      }
      case 'closeReopen': return this.closeReopen(dev, t, false);
      case 'permanent': return this.closeReopen(dev, t, true);
    }
  }

  /** A write section that changes no memory decode: a PCI_COMMAND write that keeps the memory bit set (announced
   * as MEM_ENABLE; on DMABUF kernels it still calls vfio_pci_dma_buf_move(vdev, false), a no-op), or the
   * MSI-X path's vfio_pci_memory_lock_and_enable(), which no probe announces. */
  lockOnly(dev: Device, t: number): number {
    const name: PathName = this.rng.chance(0.6) ? 'mem_enable' : 'lock_and_enable';
    return this.path(dev, t, name, this.worker(dev), this.rng.ns(150 * US, 0.8, 10 * US, 3 * MS)).releaseTs;
  }

  /** The user closes the device (VM shutdown): munmap, CLOSE (vfio_pci_core_close_device; DMABUF kernels free every
   * DMABUF in vfio_pci_dma_buf_cleanup), then reopens it (OPEN) and resets it at boot. With `permanent` (series): a
   * PERMANENT_REVOKE first, after which nothing may use the device until it is closed. */
  private closeReopen(dev: Device, t: number, permanent: boolean): number {
    const main = dev.proc.main;
    if (permanent) {
      t = this.path(dev, t, 'permanent_revoke', main, this.rng.ns(40 * US, 0.6)).releaseTs;
      t += this.rng.ns(5 * MS, 1, 200 * US, 200 * MS);
    }
    for (const m of [...dev.mappings.values()]) t = this.munmap(dev, main, t, m);
    t += this.rng.ns(2 * MS, 1, 100 * US, 100 * MS);
    t = this.path(dev, t, 'close', main, this.rng.ns(3 * MS, 0.8, 200 * US, 40 * MS)).releaseTs;
    t += this.rng.ns(300 * MS, 0.8, 20 * MS, 2 * S);
    t = this.open(dev, main, t);
    if (this.era.dmabufExport) this.addImporters(dev);
    for (const spec of dev.bars) {
      const r = this.mmap(dev, main, t, spec);
      t = this.barFault(dev, this.worker(dev), r.end, r.m);
    }
    t += this.rng.ns(200 * US, 0.6);
    const op = this.rng.ns(104 * MS, 0.05, 100 * MS, 140 * MS);
    return this.path(dev, t, 'ioctl_reset', main, op).releaseTs;
  }

  /** vfio_pci_core_open_device(): current collectors announce it (OPEN, no episode). */
  open(dev: Device, a: Actor, t: number): number {
    dev.openCount++;
    // vfio_pci_core_enable(): vfio_pci_set_power_state(D0), pci_enable_device() (memory decoding on), then
    // vfio_config_init() copies the command register into vdev->vconfig
    dev.power = 0;
    dev.memBit = true;
    if (this.collector.stateFields) {
      this.trigger(dev, a, t, TriggerKind.OPEN);
      t += this.rng.gap(40 * US);
      this.triggerEnd(dev, a, t, TriggerKind.OPEN, 0);
    }
    return t + this.rng.gap(20 * US);
  }

  /** A kernel worker zapping the device's BARs without memory_lock (fault: LOCK_NOT_HELD). */
  strayZap(dev: Device, a: Actor, t: number): Event { return this.deviceZap(dev, a, t).ev; }

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
          if (min >= this.quietFrom) { next[best] = Infinity; continue; }
          if (this.quiet.length > 0) {
            const w = this.quiet.find((q) => min >= q.from && min < q.to);
            if (w) { next[best] = w.to < this.end ? w.to : Infinity; continue; }
          }
          const endT = this.runActivity(slot, min);
          const t = endT + 50 * US + Math.round(this.rng.exp(0.8 * S));
          next[best] = t < this.end ? t : Infinity; // workloads start nothing after the end
        }
      }
    }
    if (final) {
      // The collector keeps reading after the run's end until the activities that started before it are delivered,
      // cutting batches as it does in between.
      this.judge.finish(this.out.finish(this.t0 + relEnd, this.end, EPOCH_NS, out));
    } else this.out.cut(absEnd, out);
    this.done = final;
  }

  /** advance() has a slot to run, events to flush or a heartbeat to send only for an end (host clock) past this time... */
  get dueAt(): number { return Math.min(this.nextDue, this.out.dueAt); }
  /** ...and the collector closes its open batch once the end reaches this time. */
  get closeAt(): number { return this.out.closeAt; }
  get lossWindows(): LossWindow[] { return this.out.lossWindows; }
}

function shuffled<T>(rng: Rng, xs: T[]): T[] {
  for (let i = xs.length - 1; i > 0; i--) { const j = rng.int(0, i); [xs[i], xs[j]] = [xs[j]!, xs[i]!]; }
  return xs;
}

function capabilityName(c: number): string { return Capability[c] ?? String(c); }
