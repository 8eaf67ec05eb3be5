// ProbeHits -> semantic Events (docs/design.md §3, docs/rules.md). Per-thread state pairs entries with returns (durations, lock
// wait, trigger results) and attributes device-less hits (a zap only knows its address_space) to the device whose
// memory_lock the same thread holds, or that it just triggered. Pure apart from the callbacks in the options.
import { TriggerKind, ZapTarget, Backing, VFIO_PCI_OFFSET_SHIFT, type DeviceInfo, type Event } from '../../services/core/model.js';
import type { ProbeHit } from '../probes/hit.js';
import type { revokescope } from '../../gen/proto.js';
import { VFIO_DEVICE_RESET, VFIO_DEVICE_PCI_HOT_RESET, DMA_BUF_MAGIC, IMPORTER_WALK } from '../probes/profiles.js';

const PAGE_SHIFT = 12;
const BAR_PGOFF_SHIFT = VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT;
const PCI_COMMAND_MEMORY = 0x2n;
const VM_FAULT_ERROR = 0x0873n;       // OOM | SIGBUS | SIGSEGV | HWPOISON | HWPOISON_LARGE | FALLBACK
const VM_FAULT_FALLBACK = 0x0800n;
const TRIGGER_CONTEXT_NS = 1e9;       // a trigger names the device of this thread's next lock (docs/rules.md: 1 s)
const PCI_D3HOT = 3;
const PCI_EXP_DEVCTL = 8n, PCI_EXP_DEVCTL_BCR_FLR = 0x8000n;   // vfio_exp_config_write(): "Initiate FLR"
const PCI_AF_CTRL = 5n, PCI_AF_CTRL_FLR = 0x01n;               // vfio_af_config_write()

export interface DecoderOptions {
  /** offsetof(vfio_pci_core_device, memory_lock): sem - offset = vdev. */
  memoryLockOffset?: number;
  /** Other struct offsets (plan.offsets): vfio_pci_core_device.dmabufs, dma_buf.attachments. */
  offsets?: Record<string, number>;
  /** Addresses of kernel symbols the hits' pointers are compared with (plan.symbolAddresses). */
  symbols?: Record<string, bigint>;
  /** Called for every device name seen; returns false for names that are not vfio devices (hit dropped). */
  knownDevice?: (dev: string) => boolean;
  /** When only one vfio device exists, device-less hits go to it (kernels without BTF). */
  soleDevice?: () => string | undefined;
  /** "module:symbol" of a kernel address (an importer's ops), undefined when unknown. */
  symbolize?: (address: bigint) => string | undefined;
  /** What backs the mappings each mmap probe sees (ProbeSpec.backing by probe id). */
  backingOf?: Record<string, Backing>;
  /** DeviceInfo.driver of a device (sysfs driver link). */
  driverOf?: (dev: string) => string;
  /** DeviceInfo.dmabuf_bar_mmap of this kernel (the profile's era). */
  dmabufBarMmap?: boolean;
  /** Drop a device's lock-window events (release, zap, revoke, notify, markers) until its first LockAcquire:
   * for a backend whose probes go live one by one after it said it was attached (bpftrace), a window whose
   * acquire fell before the lock probe was live is not an observation. */
  untilFirstAcquire?: boolean;
}

interface Pending { ts: number; dev: string; args: Record<string, bigint | string>; stack?: number }
interface PendingTrigger { dev: string; kind: TriggerKind }
interface HotReset { groupId: number; origin: string; devices: Set<string> }
interface ThreadState {
  lock?: Pending; tryLock?: Pending; zap?: Pending; fault?: Pending; move?: Pending & { notifies: number }; notify?: Pending;
  power?: Pending; reset?: Pending;
  lastTrigger?: { dev: string; ts: number };
  /** Trigger functions entered and not yet returned, by entry probe id. */
  triggers?: Map<string, PendingTrigger>;
  hotReset?: HotReset;
}

export interface DecoderStats { hits: number; events: number; unattributed: number; unpaired: number; snapshots: number; beforeFirstAcquire: number }

export const mappingId = (pid: number, start: bigint): number => {
  // FNV-1a over "pid:start", 48 bits: the same VMA gets the same id from a probe and from /proc/<pid>/maps.
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(`${pid}:${start.toString(16)}`)) { h ^= BigInt(c); h = (h * 0x100000001b3n) & 0xffffffffffffffffn; }
  return Number(h & 0xffffffffffffn);
};

/** A kernel stack's id: FNV-1a over its frames, 48 bits, never 0. The same stack gets the same id whenever it is
 * seen (deduplicated per boot without a table shared between agent runs; frames name functions, not addresses). */
export const stackIdOf = (frames: readonly string[]): number => {
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(frames.join('\n'))) { h ^= BigInt(c); h = (h * 0x100000001b3n) & 0xffffffffffffffffn; }
  return Number(h & 0xffffffffffffn) || 1;
};

/** A hot reset's group id: the same for every device of the set, non-zero, from the ioctl's task and time. */
const hotResetGroup = (tid: number, ts: number): number => mappingId(tid, BigInt(ts)) || 1;

const isDev = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(s);
const num = (v: bigint | string | undefined): bigint => (typeof v === 'bigint' ? v : 0n);
const has = (args: Record<string, bigint | string>, k: string): boolean => typeof args[k] === 'bigint';
/** A C int return value fetched as a register (x64): the low 32 bits, signed. */
const sint = (v: bigint | string | undefined): number => Number(BigInt.asIntN(32, num(v)));

/** The fields of a DeviceInfo that describe kernel state (everything but driver and era), for change detection. */
const stateKey = (d: DeviceInfo): string => JSON.stringify([d.memoryEnabled, d.powerState, d.revoked, d.openCount, d.noCommandMemory, d.zapBarsOnRevoke, d.customVmOpsBars]);

export class Decoder {
  private threads = new Map<number, ThreadState>();
  private devBySem = new Map<bigint, string>();
  private devByVdev = new Map<bigint, string>();
  private devByMapping = new Map<bigint, string>();
  private devByDmabuf = new Map<bigint, string>();
  private heldBy = new Map<number, string>();               // tid -> device whose memory_lock it holds
  private liveMappings = new Map<string, Map<number, number>>(); // dev -> mapping_id -> bar
  private lastInfo = new Map<string, string>();             // dev -> stateKey of the last DeviceInfo
  readonly stats: DecoderStats = { hits: 0, events: 0, unattributed: 0, unpaired: 0, snapshots: 0, beforeFirstAcquire: 0 };
  private acquired = new Set<string>();                     // devices with a LockAcquire (untilFirstAcquire)
  /** Kernel stacks by id; `fresh`: ids not yet handed out by takeStacks(). */
  private readonly stacks = new Map<number, string[]>();
  private fresh: number[] = [];

  constructor(private emit: (ev: Event) => void, private opts: DecoderOptions = {}) {}

  /** Stacks seen for the first time since the last call: the boot's stack table entries to send (EventBatch.stacks). */
  takeStacks(): { id: number; frames: string[] }[] {
    if (!this.fresh.length) return [];
    const out = this.fresh.map((id) => ({ id, frames: this.stacks.get(id)! }));
    this.fresh = [];
    return out;
  }

  /** The id of the hit's stack (0: none), remembered for takeStacks(). */
  private stackOf(h: ProbeHit): number | undefined {
    if (!h.stack?.length) return undefined;
    const id = stackIdOf(h.stack);
    if (!this.stacks.has(id)) { this.stacks.set(id, h.stack); this.fresh.push(id); }
    return id;
  }

  /** Mappings found at start (snapshot) also retire at munmap and close. */
  noteMapping(dev: string, id: number, bar: number): void {
    let m = this.liveMappings.get(dev); if (!m) this.liveMappings.set(dev, (m = new Map()));
    m.set(id, bar);
  }

  /** Devices a DeviceInfo snapshot has been emitted for. */
  snapshotted(dev: string): boolean { return this.lastInfo.has(dev); }

  /** DeviceInfo without kernel state (no snapshot could be read): driver and era only, every state field absent. */
  bareDeviceInfo(dev: string, ts: number): Event {
    return { tsNs: ts, device: dev, comm: 'revokescope', deviceInfo: { driver: this.opts.driverOf?.(dev) ?? 'vfio-pci', dmabufBarMmap: this.opts.dmabufBarMmap ?? false } };
  }

  private thread(tid: number): ThreadState {
    let t = this.threads.get(tid); if (!t) this.threads.set(tid, (t = {}));
    return t;
  }

  /** The thread's pending entry for a return, cleared; none (unpaired) when missing or later than the return
   * (a backend that does not order hits across CPUs, or an entry lost in the ring). */
  private take<K extends 'lock' | 'tryLock' | 'zap' | 'fault' | 'move' | 'notify' | 'power' | 'reset'>(t: ThreadState, key: K, h: ProbeHit): NonNullable<ThreadState[K]> | undefined {
    const p = t[key];
    t[key] = undefined;
    if (!p || p.ts > h.tsNs) { this.stats.unpaired++; return undefined; }
    return p as NonNullable<ThreadState[K]>;
  }

  private out(h: ProbeHit, ts: number, dev: string, body: Partial<Event>, stackId?: number): void {
    if (this.opts.untilFirstAcquire && !this.acquired.has(dev)) {
      if (body.lockAcquire) this.acquired.add(dev);
      else if (body.lockRelease || body.zap || body.dmabufRevoke || body.moveNotify || body.resetFunction || body.powerTransition) {
        this.stats.beforeFirstAcquire++;
        return;
      }
    }
    this.stats.events++;
    const ev: Event = { tsNs: ts, cpu: h.cpu, pid: h.pid, tid: h.tid, comm: h.comm, device: dev, ...body };
    if (h.cgroupId) ev.cgroupId = h.cgroupId;
    if (stackId) ev.stackId = stackId;
    this.emit(ev);
  }

  private devFromSem(sem: bigint): string | undefined {
    return this.devBySem.get(sem)
      ?? (this.opts.memoryLockOffset !== undefined ? this.devByVdev.get(sem - BigInt(this.opts.memoryLockOffset)) : undefined);
  }

  /** The device named by the hit itself, or learned from its pointers, or from the thread's context. */
  private deviceOf(h: ProbeHit, t: ThreadState): string | undefined {
    const named = h.args.dev;
    if (isDev(named) && (this.opts.knownDevice?.(named) ?? true)) return named;
    if (isDev(named)) return undefined;                       // a PCI device that is not a vfio device
    const sem = h.args.sem;
    if (typeof sem === 'bigint') {
      // Only vdev->memory_lock counts: vfio-pci-core takes other rw_semaphores for write too.
      const d = this.devFromSem(sem);
      if (d || this.opts.memoryLockOffset !== undefined) return d;
    }
    const mapping = h.args.mapping;
    if (typeof mapping === 'bigint' && this.devByMapping.has(mapping)) return this.devByMapping.get(mapping);
    const held = this.heldBy.get(h.tid);
    if (held) return held;
    if (t.lastTrigger && h.tsNs - t.lastTrigger.ts <= TRIGGER_CONTEXT_NS) return t.lastTrigger.dev;
    return this.opts.soleDevice?.();
  }

  private startTrigger(h: ProbeHit, t: ThreadState, dev: string, kind: TriggerKind, groupId = 0): void {
    t.lastTrigger = { dev, ts: h.tsNs };
    (t.triggers ??= new Map()).set(h.probe, { dev, kind });
    this.out(h, h.tsNs, dev, { trigger: { kind, groupId } });
  }

  hit(h: ProbeHit): void {
    this.stats.hits++;
    const t = this.thread(h.tid);
    const role = h.probe;
    // Remember which vdev pointer / semaphore belongs to which device, from hits that name both.
    const dev = this.deviceOf(h, t);
    if (dev && typeof h.args.vdev === 'bigint' && h.probe !== 'munmap') this.devByVdev.set(h.args.vdev, dev);
    if (dev && typeof h.args.sem === 'bigint' && isDev(h.args.dev) && this.opts.memoryLockOffset === undefined) this.devBySem.set(h.args.sem, dev);

    switch (role) {
      case 'trig_config': case 'trig_pm': case 'trig_ioctl': case 'trig_reset': case 'trig_close': case 'trig_pm_entry': case 'trig_pm_exit':
      case 'trig_flr': case 'trig_af_flr': case 'trig_open': {
        if (!dev) { this.stats.unattributed++; return; }
        const kind = triggerKind(role, h.args);
        if (kind === undefined) return;
        if (kind === TriggerKind.HOT_RESET) {
          // vfio_pci_dev_set_hot_reset() takes every device's memory_lock of the set (down_write_trylock):
          // the same group id goes to each device whose lock this task takes before the ioctl returns.
          const groupId = hotResetGroup(h.tid, h.tsNs);
          t.hotReset = { groupId, origin: dev, devices: new Set([dev]) };
          this.startTrigger(h, t, dev, kind, groupId);
          return;
        }
        this.startTrigger(h, t, dev, kind);
        if (kind === TriggerKind.CLOSE) {
          // vfio_pci_core_close_device() runs only after the last file reference is gone, and every VMA
          // holds one: no BAR mapping of this device survives a close.
          for (const [id, bar] of this.liveMappings.get(dev) ?? []) this.out(h, h.tsNs, dev, { barMunmap: { bar, mappingId: id } });
          this.liveMappings.delete(dev);
        }
        return;
      }
      case 'trig_config_ret': case 'trig_pm_ret': case 'trig_ioctl_ret': case 'trig_reset_ret': case 'trig_close_ret': case 'trig_pm_entry_ret':
      case 'trig_pm_exit_ret': case 'trig_flr_ret': case 'trig_af_flr_ret': case 'trig_open_ret': {
        const entry = role.slice(0, -'_ret'.length);
        const p = t.triggers?.get(entry);
        if (!p) return;                                           // a call whose entry named no trigger (other offsets, cmds)
        t.triggers!.delete(entry);
        if (p.kind === TriggerKind.HOT_RESET) t.hotReset = undefined;
        // vfio_pci_core_close_device() and vfio_pci_runtime_pm_exit() return void: no return value to read
        const isVoid = role === 'trig_close_ret' || role === 'trig_pm_exit_ret';
        this.out(h, h.tsNs, p.dev, { triggerEnd: { kind: p.kind, ret: isVoid ? 0 : sint(h.args.ret) } });
        return;
      }
      case 'lock': case 'lock_try':
        if (!dev) { this.stats.unattributed++; return; }
        if (role === 'lock') t.lock = { ts: h.tsNs, dev, args: h.args, stack: this.stackOf(h) };
        else t.tryLock = { ts: h.tsNs, dev, args: h.args, stack: this.stackOf(h) };
        return;
      case 'lock_ret': {
        const p = this.take(t, 'lock', h);
        if (!p) return;
        this.heldBy.set(h.tid, p.dev);
        this.out(h, h.tsNs, p.dev, { lockAcquire: { waitNs: Math.max(0, h.tsNs - p.ts) } }, p.stack);
        return;
      }
      case 'lock_try_ret': {
        const p = this.take(t, 'tryLock', h);
        if (!p) return;
        if ((num(h.args.ok) & 0xffn) === 0n) return;             // down_write_trylock() failed
        const hr = t.hotReset;
        if (hr && !hr.devices.has(p.dev)) {
          hr.devices.add(p.dev);
          this.out(h, p.ts, p.dev, { trigger: { kind: TriggerKind.HOT_RESET, groupId: hr.groupId } });
        }
        this.heldBy.set(h.tid, p.dev);
        this.out(h, h.tsNs, p.dev, { lockAcquire: { waitNs: 0 } }, p.stack);
        return;
      }
      case 'unlock':
        if (!dev) { this.stats.unattributed++; return; }
        if (this.heldBy.get(h.tid) === dev) this.heldBy.delete(h.tid);
        this.out(h, h.tsNs, dev, { lockRelease: {} });
        return;
      case 'zap':
        if (!dev) { this.stats.unattributed++; return; }
        if (typeof h.args.mapping === 'bigint' && num(h.args.magic) !== DMA_BUF_MAGIC) this.devByMapping.set(h.args.mapping, dev);
        t.zap = { ts: h.tsNs, dev, args: h.args, stack: this.stackOf(h) };
        return;
      case 'zap_ret': {
        const p = this.take(t, 'zap', h);
        if (!p) return;
        this.out(h, p.ts, p.dev, { zap: zapBody(p.args, h.tsNs - p.ts) }, p.stack);
        return;
      }
      case 'mmap': case 'mmap_custom': {
        if (!dev) { this.stats.unattributed++; return; }
        const start = num(h.args.start), end = num(h.args.end), pgoff = num(h.args.pgoff);
        if (typeof h.args.fmap === 'bigint' && h.args.fmap !== 0n) this.devByMapping.set(h.args.fmap, dev);
        const id = mappingId(h.pid, start), bar = Number(pgoff >> BigInt(BAR_PGOFF_SHIFT));
        this.noteMapping(dev, id, bar);
        this.out(h, h.tsNs, dev, { barMmap: { bar, backing: this.opts.backingOf?.[role] ?? Backing.LEGACY, mappingId: id, length: Number(end - start), snapshot: false } });
        return;
      }
      case 'munmap': case 'munmap_dmabuf': {
        // remove_vma(): a device VMA (vm_private_data = vdev) or a DMABUF VMA (vm_file->private_data = dmabuf)
        const d = role === 'munmap' ? this.devByVdev.get(num(h.args.vdev)) : this.devByDmabuf.get(num(h.args.dmabuf));
        if (!d) { this.stats.unattributed++; return; }
        const id = mappingId(h.pid, num(h.args.start));
        const live = this.liveMappings.get(d);
        const bar = live?.get(id) ?? Number(num(h.args.pgoff) >> BigInt(BAR_PGOFF_SHIFT));
        live?.delete(id);
        this.out(h, h.tsNs, d, { barMunmap: { bar, mappingId: id } });
        return;
      }
      case 'fault':
        if (!dev) { this.stats.unattributed++; return; }
        t.fault = { ts: h.tsNs, dev, args: h.args, stack: this.stackOf(h) };
        return;
      case 'fault_ret': {
        const p = this.take(t, 'fault', h);
        if (!p) return;
        const ret = num(h.args.ret);
        if (ret & VM_FAULT_FALLBACK) return;                       // huge page declined; the order-0 retry follows
        const bar = Number(num(p.args.pgoff) >> BigInt(BAR_PGOFF_SHIFT));
        this.out(h, p.ts, p.dev, { barFault: { bar, mappingId: mappingId(h.pid, num(p.args.start)), ok: (ret & VM_FAULT_ERROR) === 0n } }, p.stack);
        return;
      }
      case 'dmabuf_move':
        if (!dev) { this.stats.unattributed++; return; }
        t.move = { ts: h.tsNs, dev, args: h.args, notifies: 0, stack: this.stackOf(h) };
        return;
      case 'dmabuf_move_ret': {
        const p = this.take(t, 'move', h);
        if (!p) return;
        // dmabuf_count: the DMABUFs this call changed (vfio_pci_dma_buf_move() notifies only those whose state flips)
        const body: revokescope.v1.IDmaBufRevoke = { revoked: (num(p.args.revoked) & 0xffn) !== 0n, dmabufCount: p.notifies, durationNs: h.tsNs - p.ts };
        if (typeof p.args.vmas === 'bigint') body.deviceHasVmas = p.args.vmas !== 0n;
        this.out(h, p.ts, p.dev, { dmabufRevoke: body }, p.stack);
        return;
      }
      case 'move_notify':
        if (t.move) t.move.notifies++;
        if (t.move && typeof h.args.dmabuf === 'bigint') this.devByDmabuf.set(h.args.dmabuf, t.move.dev);
        t.notify = { ts: h.tsNs, dev: t.move?.dev ?? dev ?? '', args: h.args };
        return;
      case 'move_notify_ret': {
        const p = this.take(t, 'notify', h);
        if (!p) return;
        if (!p.dev) { this.stats.unpaired++; return; }
        this.out(h, p.ts, p.dev, { moveNotify: { dmabufId: Number(num(p.args.dmabuf) & 0xffffffffffffn), durationNs: h.tsNs - p.ts, ...this.importers(p.args) } });
        return;
      }
      case 'power':
        if (!dev) { this.stats.unattributed++; return; }
        t.power = { ts: h.tsNs, dev, args: h.args };
        return;
      case 'power_ret': {
        const p = this.take(t, 'power', h);
        if (!p) return;
        this.out(h, p.ts, p.dev, { powerTransition: { from: Number(num(p.args.from) & 0xffffffffn), to: Number(num(p.args.to) & 0xffffffffn), durationNs: h.tsNs - p.ts } });
        return;
      }
      case 'reset_fn': case 'reset_bus':
        if (!dev) { this.stats.unattributed++; return; }
        t.reset = { ts: h.tsNs, dev, args: h.args };
        return;
      case 'reset_fn_ret': case 'reset_bus_ret': {
        const p = this.take(t, 'reset', h);
        if (!p) return;
        this.out(h, p.ts, p.dev, { resetFunction: { ret: sint(h.args.ret), durationNs: h.tsNs - p.ts } });
        return;
      }
      case 'snapshot':
        if (!dev) { this.stats.unattributed++; return; }
        this.snapshot(h, dev);
        return;
      default:
        return;
    }
  }

  /** importer_count and identities from the walk of dmabuf->attachments (n1..: list nodes, o1..: their importer_ops). */
  private importers(args: Record<string, bigint | string>): { importerCount: number; importers?: string[] } {
    const off = this.opts.offsets?.['dma_buf.attachments'];
    if (off === undefined || !has(args, 'n1') || !has(args, 'dmabuf')) return { importerCount: 0 };
    const head = num(args.dmabuf) + BigInt(off);
    const names: string[] = [];
    let count = 0;
    for (let i = 1; i <= IMPORTER_WALK; i++) {
      const node = args[`n${i}`];
      if (typeof node !== 'bigint' || node === head || node === 0n) break;
      count++;
      const ops = num(args[`o${i}`]);
      names.push(ops === 0n ? '(no importer ops: pinned)' : this.opts.symbolize?.(ops) ?? `0x${ops.toString(16)}`);
    }
    return { importerCount: count, importers: names };
  }

  /** A DeviceInfo snapshot: what __vfio_pci_memory_enabled() would return, the D-state, the open count, the
   * zap flag (only where the kernel has it), custom mmap, revoked; emitted when it differs from the last one. */
  private snapshot(h: ProbeHit, dev: string): void {
    this.stats.snapshots++;
    const a = h.args;
    if (has(a, 'imap') && num(a.imap) !== 0n) this.devByMapping.set(num(a.imap), dev);
    const info: DeviceInfo = { driver: this.opts.driverOf?.(dev) ?? 'vfio-pci', dmabufBarMmap: this.opts.dmabufBarMmap ?? false };
    const power = has(a, 'power') ? Number(num(a.power) & 0xffffffffn) : undefined;
    if (power !== undefined && power <= 4) info.powerState = power;        // PCI_D0..PCI_D3cold (PCI_UNKNOWN / error: absent)
    if (has(a, 'ncm')) info.noCommandMemory = num(a.ncm) !== 0n;
    // __vfio_pci_memory_enabled(): current_state < PCI_D3hot && (no_command_memory || vconfig COMMAND & MEMORY)
    if (info.powerState != null && has(a, 'cmd')) {
      const bit = (num(a.cmd) & PCI_COMMAND_MEMORY) !== 0n;
      if (info.powerState >= PCI_D3HOT) info.memoryEnabled = false;
      else if (bit || info.noCommandMemory === true) info.memoryEnabled = true;
      else if (info.noCommandMemory === false) info.memoryEnabled = false;
    }
    if (has(a, 'open')) info.openCount = Number(num(a.open) & 0xffffffffn);
    if (has(a, 'zap_bars')) info.zapBarsOnRevoke = num(a.zap_bars) !== 0n;
    else if (has(a, 'bar_needs_zap')) info.zapBarsOnRevoke = num(a.bar_needs_zap) !== 0n;
    // the device's mmap is the core one: no BAR is served through a driver's own vm_ops
    const coreMmap = this.opts.symbols?.vfio_pci_core_mmap;
    if (has(a, 'mmapfn') && coreMmap !== undefined && num(a.mmapfn) === coreMmap) info.customVmOpsBars = 0;
    // the first DMABUF's revoked bit (vfio_pci_dma_buf_move() keeps all of a device's DMABUFs in one state;
    // with none exported the list head points at itself and there is nothing to be revoked)
    const listOff = this.opts.offsets?.['vfio_pci_core_device.dmabufs'];
    if (has(a, 'bufs') && has(a, 'revoked') && has(a, 'vdev') && listOff !== undefined && num(a.bufs) !== num(a.vdev) + BigInt(listOff))
      info.revoked = num(a.revoked) !== 0n;
    const key = stateKey(info);
    if (this.lastInfo.get(dev) === key) return;
    this.lastInfo.set(dev, key);
    this.stats.events++;
    this.emit({ tsNs: h.tsNs, cpu: h.cpu, pid: h.pid, tid: h.tid, comm: h.comm, device: dev, deviceInfo: info });
  }
}

function triggerKind(probe: string, args: Record<string, bigint | string>): TriggerKind | undefined {
  switch (probe) {
    // vfio_basic_config_write(): new_mem = !!(le32_to_cpu(val) & PCI_COMMAND_MEMORY)
    case 'trig_config': return (num(args.val) & PCI_COMMAND_MEMORY) ? TriggerKind.MEM_ENABLE : TriggerKind.MEM_DISABLE;
    // vfio_pm_config_write(): PMCSR power state bits
    case 'trig_pm': { const s = num(args.val) & 3n; return s === 3n ? TriggerKind.D3HOT : s === 0n ? TriggerKind.D0 : undefined; }
    case 'trig_ioctl': { const c = num(args.cmd); return c === VFIO_DEVICE_RESET ? TriggerKind.RESET : c === VFIO_DEVICE_PCI_HOT_RESET ? TriggerKind.HOT_RESET : undefined; }
    case 'trig_reset': return TriggerKind.RESET;
    case 'trig_close': return TriggerKind.CLOSE;
    case 'trig_open': return TriggerKind.OPEN;
    case 'trig_pm_entry': return TriggerKind.RUNTIME_PM_ENTRY;
    case 'trig_pm_exit': return TriggerKind.RUNTIME_PM_EXIT;
    // a write covering PCI_EXP_DEVCTL with "Initiate FLR" set (the value's bytes start at `offset`)
    case 'trig_flr': return covers(args, PCI_EXP_DEVCTL, PCI_EXP_DEVCTL_BCR_FLR, 0xffffn) ? TriggerKind.FLR : undefined;
    case 'trig_af_flr': return covers(args, PCI_AF_CTRL, PCI_AF_CTRL_FLR, 0xffn) ? TriggerKind.FLR : undefined;
    default: return undefined;
  }
}

/** The config write (offset, count, val) covers register `reg` and sets `bit` in it. */
function covers(args: Record<string, bigint | string>, reg: bigint, bit: bigint, mask: bigint): boolean {
  const offset = num(args.offset), count = num(args.count) || 4n;
  if (offset > reg || offset + count <= reg) return false;
  return (((num(args.val) >> ((reg - offset) * 8n)) & mask) & bit) !== 0n;
}

function zapBody(args: Record<string, bigint | string>, durationNs: number): revokescope.v1.IZap {
  if ('mapping' in args || 'len' in args) {
    // unmap_mapping_range(mapping, start, len, even_cows) on the vdev inode (or a DMABUF file's) mapping
    const body: revokescope.v1.IZap = { start: Number(num(args.start)), length: Number(num(args.len)), durationNs,
      target: num(args.magic) === DMA_BUF_MAGIC ? ZapTarget.DMABUF : ZapTarget.DEVICE };
    if (typeof args.vmas === 'bigint') body.hadVmas = args.vmas !== 0n;
    return body;
  }
  // zap_vma_ptes(vma, vm_start, size) per VMA: the device offset is vm_pgoff << PAGE_SHIFT; a VMA exists by definition
  return { start: Number(num(args.pgoff) << BigInt(PAGE_SHIFT)), length: Number(num(args.size)), durationNs, target: ZapTarget.DEVICE, hadVmas: true };
}
