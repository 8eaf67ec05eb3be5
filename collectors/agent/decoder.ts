// ProbeHits -> semantic Events (DESIGN §3). Per-thread state pairs entries with returns (durations, lock
// wait) and attributes device-less hits (a zap only knows its address_space) to the device whose
// memory_lock the same thread holds, or that it just triggered. Pure apart from the device registry callback.
import { TriggerKind, ZapTarget, Backing, VFIO_PCI_OFFSET_SHIFT, type Event } from '../../services/core/model.js';
import type { ProbeHit } from './hit.js';
import type { revokescope } from '../../gen/proto.js';
import { VFIO_DEVICE_RESET, VFIO_DEVICE_PCI_HOT_RESET, DMA_BUF_MAGIC } from '../probes/profiles.js';

const PAGE_SHIFT = 12;
const BAR_PGOFF_SHIFT = VFIO_PCI_OFFSET_SHIFT - PAGE_SHIFT;
const PCI_COMMAND_MEMORY = 0x2n;
const VM_FAULT_ERROR = 0x0873n;       // OOM | SIGBUS | SIGSEGV | HWPOISON | HWPOISON_LARGE | FALLBACK
const VM_FAULT_FALLBACK = 0x0800n;
const TRIGGER_CONTEXT_NS = 1e9;       // a trigger names the device of this thread's next lock (DESIGN §4: 1 s)

export interface DecoderOptions {
  /** offsetof(vfio_pci_core_device, memory_lock): sem - offset = vdev. */
  memoryLockOffset?: number;
  /** Called for every device name seen; returns false for names that are not vfio devices (hit dropped). */
  knownDevice?: (dev: string) => boolean;
  /** When only one vfio device exists, device-less hits go to it (kernels without BTF). */
  soleDevice?: () => string | undefined;
}

interface Pending { ts: number; dev: string; args: Record<string, bigint | string> }
interface ThreadState { lock?: Pending; tryLock?: Pending; zap?: Pending; fault?: Pending; move?: Pending & { notifies: number }; notify?: Pending; lastTrigger?: { dev: string; ts: number } }

export interface DecoderStats { hits: number; events: number; unattributed: number; unpaired: number }

export const mappingId = (pid: number, start: bigint): number => {
  // FNV-1a over "pid:start", 48 bits: the same VMA gets the same id from a probe and from /proc/<pid>/maps.
  let h = 0xcbf29ce484222325n;
  for (const c of Buffer.from(`${pid}:${start.toString(16)}`)) { h ^= BigInt(c); h = (h * 0x100000001b3n) & 0xffffffffffffffffn; }
  return Number(h & 0xffffffffffffn);
};

const isDev = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/.test(s);
const num = (v: bigint | string | undefined): bigint => (typeof v === 'bigint' ? v : 0n);

export class Decoder {
  private threads = new Map<number, ThreadState>();
  private devBySem = new Map<bigint, string>();
  private devByVdev = new Map<bigint, string>();
  private devByMapping = new Map<bigint, string>();
  private heldBy = new Map<number, string>();               // tid -> device whose memory_lock it holds
  private liveMappings = new Map<string, Map<number, number>>(); // dev -> mapping_id -> bar
  readonly stats: DecoderStats = { hits: 0, events: 0, unattributed: 0, unpaired: 0 };

  constructor(private emit: (ev: Event) => void, private opts: DecoderOptions = {}) {}

  /** Mappings found at start (snapshot) also retire at close. */
  noteMapping(dev: string, id: number, bar: number): void {
    let m = this.liveMappings.get(dev); if (!m) this.liveMappings.set(dev, (m = new Map()));
    m.set(id, bar);
  }

  private thread(tid: number): ThreadState {
    let t = this.threads.get(tid); if (!t) this.threads.set(tid, (t = {}));
    return t;
  }

  private out(h: ProbeHit, ts: number, dev: string, body: Partial<Event>): void {
    this.stats.events++;
    this.emit({ tsNs: ts, cpu: h.cpu, pid: h.pid, tid: h.tid, comm: h.comm, device: dev, ...body });
  }

  /** The device named by the hit itself, or learned from its pointers, or from the thread's context. */
  private deviceOf(h: ProbeHit, t: ThreadState): string | undefined {
    const named = h.args.dev;
    if (isDev(named) && (this.opts.knownDevice?.(named) ?? true)) return named;
    const sem = h.args.sem;
    if (typeof sem === 'bigint') {
      // Only vdev->memory_lock counts: vfio-pci-core takes other rw_semaphores for write too.
      const d = this.devBySem.get(sem)
        ?? (this.opts.memoryLockOffset !== undefined ? this.devByVdev.get(sem - BigInt(this.opts.memoryLockOffset)) : undefined);
      if (d || this.opts.memoryLockOffset !== undefined) return d;
    }
    const mapping = h.args.mapping;
    if (typeof mapping === 'bigint' && this.devByMapping.has(mapping)) return this.devByMapping.get(mapping);
    const held = this.heldBy.get(h.tid);
    if (held) return held;
    if (t.lastTrigger && h.tsNs - t.lastTrigger.ts <= TRIGGER_CONTEXT_NS) return t.lastTrigger.dev;
    return this.opts.soleDevice?.();
  }

  hit(h: ProbeHit): void {
    this.stats.hits++;
    const t = this.thread(h.tid);
    const role = h.probe;
    // Remember which vdev pointer / semaphore belongs to which device, from hits that name both.
    const dev = this.deviceOf(h, t);
    if (dev && typeof h.args.vdev === 'bigint') this.devByVdev.set(h.args.vdev, dev);
    if (dev && typeof h.args.sem === 'bigint' && isDev(h.args.dev) && this.opts.memoryLockOffset === undefined) this.devBySem.set(h.args.sem, dev);

    switch (role) {
      case 'trig_config': case 'trig_pm': case 'trig_ioctl': case 'trig_reset': case 'trig_close': case 'trig_pm_entry': case 'trig_pm_exit': {
        if (!dev) { this.stats.unattributed++; return; }
        const kind = triggerKind(role, h.args);
        if (kind === undefined) return;
        t.lastTrigger = { dev, ts: h.tsNs };
        this.out(h, h.tsNs, dev, { trigger: { kind, groupId: 0 } });
        if (kind === TriggerKind.CLOSE) {
          // vfio_pci_core_close_device() runs only after the last file reference is gone, and every VMA
          // holds one: no BAR mapping of this device survives a close.
          for (const [id, bar] of this.liveMappings.get(dev) ?? []) this.out(h, h.tsNs, dev, { barMunmap: { bar, mappingId: id } });
          this.liveMappings.delete(dev);
        }
        return;
      }
      case 'lock': case 'lock_try':
        if (!dev) { this.stats.unattributed++; return; }
        if (role === 'lock') t.lock = { ts: h.tsNs, dev, args: h.args }; else t.tryLock = { ts: h.tsNs, dev, args: h.args };
        return;
      case 'lock_ret': {
        const p = t.lock; t.lock = undefined;
        if (!p) { this.stats.unpaired++; return; }
        this.heldBy.set(h.tid, p.dev);
        this.out(h, h.tsNs, p.dev, { lockAcquire: { waitNs: Math.max(0, h.tsNs - p.ts) } });
        return;
      }
      case 'lock_try_ret': {
        const p = t.tryLock; t.tryLock = undefined;
        if (!p) { this.stats.unpaired++; return; }
        if ((num(h.args.ok) & 0xffn) === 0n) return;             // down_write_trylock() failed
        this.heldBy.set(h.tid, p.dev);
        this.out(h, h.tsNs, p.dev, { lockAcquire: { waitNs: 0 } });
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
        t.zap = { ts: h.tsNs, dev, args: h.args };
        return;
      case 'zap_ret': {
        const p = t.zap; t.zap = undefined;
        if (!p) { this.stats.unpaired++; return; }
        this.out(h, p.ts, p.dev, { zap: zapBody(p.args, h.tsNs - p.ts) });
        return;
      }
      case 'mmap': {
        if (!dev) { this.stats.unattributed++; return; }
        const start = num(h.args.start), end = num(h.args.end), pgoff = num(h.args.pgoff);
        if (typeof h.args.fmap === 'bigint' && h.args.fmap !== 0n) this.devByMapping.set(h.args.fmap, dev);
        const id = mappingId(h.pid, start), bar = Number(pgoff >> BigInt(BAR_PGOFF_SHIFT));
        this.noteMapping(dev, id, bar);
        this.out(h, h.tsNs, dev, { barMmap: { bar, backing: Backing.LEGACY, mappingId: id, length: Number(end - start), snapshot: false } });
        return;
      }
      case 'fault':
        if (!dev) { this.stats.unattributed++; return; }
        t.fault = { ts: h.tsNs, dev, args: h.args };
        return;
      case 'fault_ret': {
        const p = t.fault; t.fault = undefined;
        if (!p) { this.stats.unpaired++; return; }
        const ret = num(h.args.ret);
        if (ret & VM_FAULT_FALLBACK) return;                       // huge page declined; the order-0 retry follows
        const bar = Number(num(p.args.pgoff) >> BigInt(BAR_PGOFF_SHIFT));
        this.out(h, p.ts, p.dev, { barFault: { bar, mappingId: mappingId(h.pid, num(p.args.start)), ok: (ret & VM_FAULT_ERROR) === 0n } });
        return;
      }
      case 'dmabuf_move':
        if (!dev) { this.stats.unattributed++; return; }
        t.move = { ts: h.tsNs, dev, args: h.args, notifies: 0 };
        return;
      case 'dmabuf_move_ret': {
        const p = t.move; t.move = undefined;
        if (!p) { this.stats.unpaired++; return; }
        const body: revokescope.v1.IDmaBufRevoke = { revoked: (num(p.args.revoked) & 0xffn) !== 0n, dmabufCount: p.notifies, durationNs: h.tsNs - p.ts };
        if (typeof p.args.vmas === 'bigint') body.deviceHasVmas = p.args.vmas !== 0n;
        this.out(h, p.ts, p.dev, { dmabufRevoke: body });
        return;
      }
      case 'move_notify':
        if (t.move) t.move.notifies++;
        t.notify = { ts: h.tsNs, dev: t.move?.dev ?? dev ?? '', args: h.args };
        return;
      case 'move_notify_ret': {
        const p = t.notify; t.notify = undefined;
        if (!p || !p.dev) { this.stats.unpaired++; return; }
        this.out(h, p.ts, p.dev, { moveNotify: { dmabufId: Number(num(p.args.dmabuf) & 0xffffffffffffn), importerCount: 0, durationNs: h.tsNs - p.ts } });
        return;
      }
      default:
        return;
    }
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
    case 'trig_pm_entry': return TriggerKind.RUNTIME_PM_ENTRY;
    case 'trig_pm_exit': return TriggerKind.RUNTIME_PM_EXIT;
    default: return undefined;
  }
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
