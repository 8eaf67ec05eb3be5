// Probe profiles as data (docs/design.md §7): one per kernel era, each mapping kernel functions and their
// arguments to the semantic events of docs/design.md §3 and docs/rules.md. Backends (ftrace, bpftrace) render the same specs.
// Arguments are x86-64 SysV integer registers (arg0 = %di ... arg5 = %r9); struct member offsets come
// from BTF at plan time, so a spec needing BTF degrades (the argument or filter is dropped) without it.
import { Backing, Capability } from '../../services/core/model.js';

/** A member path ('struct.a.b', '-struct.member' subtracts: container_of) or a raw byte offset. */
export type Field = string | number;
export type Expr =
  | { arg: number }                         // nth integer argument at function entry
  | { ret: true }                           // return value (return probes)
  | { caller: true }                        // return address at entry: *(u64 *)sp
  | { load: Expr; fields: Field[] };        // *(base + Σ offsetof(field)), as wide as the argument's type

/** u64..u8: an integer of that width; flag: a bool member or a 1-bit bitfield (resolved through BTF). */
export type ArgType = 'u64' | 'u32' | 'u16' | 'u8' | 'flag' | 'string';
export interface ProbeArg {
  name: string; expr: Expr; type: ArgType;
  /** Dereferences a pointer that is only meaningful once the filter passed (e.g. sem - offsetof(memory_lock)):
   * fetched only by backends that filter before fetching (bpftrace predicates), never by ftrace, which
   * fetches every argument of every hit and could read arbitrary (even MMIO) memory otherwise. */
  afterFilter?: boolean;
}

export type FilterValue = bigint | { symbol: string };
export type Filter =
  | { arg: string; eq: FilterValue[] }       // arg equals one of the values
  | { arg: string; inModule: string }        // arg (an address) lies in the module's text
  | { retInModule: string }                  // return probes: the caller is in the module's text
  | { self: true };                          // only the agent's own task (checked before anything is fetched)

export type Role =
  | 'zap' | 'zap_vma' | 'zap_ret' | 'lock' | 'lock_ret' | 'lock_try' | 'lock_try_ret' | 'unlock'
  | 'trigger_config' | 'trigger_pm' | 'trigger_ioctl' | 'trigger_reset' | 'trigger_close' | 'trigger_pm_entry' | 'trigger_pm_exit'
  | 'trigger_flr' | 'trigger_af_flr' | 'trigger_open' | 'trigger_ret'
  | 'mmap' | 'munmap' | 'fault' | 'fault_ret' | 'dmabuf_move' | 'dmabuf_move_ret' | 'move_notify' | 'move_notify_ret'
  | 'power' | 'power_ret' | 'reset_fn' | 'reset_fn_ret' | 'snapshot';

export interface ProbeSpec {
  /** Event name in our tracefs group / bpftrace output. */
  id: string;
  role: Role;
  kind: 'entry' | 'return';
  /** Alternatives in order of preference; the first the kernel can trace is used. */
  symbols: string[];
  capability: Capability;
  args: ProbeArg[];
  /** Alternatives: the first set whose arguments all resolved is applied (all clauses ANDed). */
  filters: Filter[][];
  /** Missing it only loses detail, not the capability. */
  optional?: boolean;
  /** What the findings lose when this probe cannot attach (shown by --dry-run). */
  cost: string;
  /** mmap probes: what backs the mappings this function makes (the VMA's vm_ops / vm_file on this era). */
  backing?: Backing;
  /** Probe vfio-pci-core's calls of the (global) function instead of the function itself, where the kernel image
   * can be read: an entry probe sits on each `call`, a return probe on the instruction after it (return value in
   * %ax). The host's other callers then pay nothing; the filters on the caller become moot. */
  callsite?: boolean;
}

export interface ProbeProfile {
  id: string;
  era: string;
  /** The profile applies when the kernel has all of `all` and at least one of `any` (if given). */
  match: { all?: string[]; any?: (string | RegExp)[]; none?: (string | RegExp)[] };
  /** DeviceInfo.dmabuf_bar_mmap on this era (core BAR mmaps are DMABUF-backed). */
  dmabufBarMmap: boolean;
  /** Before 6.11 the zap runs before down_write (vfio_pci_zap_and_down_write_memory_lock). */
  zapsBeforeLock: boolean;
  /** Backing of the BAR mappings of a device fd found at start in /proc/<pid>/maps ("[vfio-device]"). */
  snapshotBacking: Backing;
  probes: ProbeSpec[];
  notes: string[];
}

// ---- building blocks --------------------------------------------------------------------------

export const VFIO_MAGIC = 0x5646494fn;        // "VFIO": vfio_fs_type, the pseudo fs of the vdev inodes (vfio_main.c)
export const DMA_BUF_MAGIC = 0x444d4142n;     // "DMAB": dma-buf's pseudo fs (dma-buf.c)
export const VFIO_DEVICE_RESET = 0x3b6fn;     // _IO(VFIO_TYPE, VFIO_BASE + 11)
export const VFIO_DEVICE_PCI_HOT_RESET = 0x3b71n;
export const ALL_BARS = 6n << 40n;           // vfio_pci_zap_bars(): unmap_mapping_range(mapping, 0, 6 << 40, true)
/** Attachments of a DMABUF the move_notify probe walks (dmabuf->attachments, in list order). */
export const IMPORTER_WALK = 6;
/** Kernel symbols whose addresses the decoder compares fetched pointers with (replay keeps them in its header). */
export const DECODER_SYMBOLS = ['vfio_pci_mmap_ops', 'vfio_pci_core_mmap', 'dma_buf_fops', 'vfio_pci_dmabuf_ops'];
/** Struct offsets the decoder uses for pointer arithmetic (list heads). */
export const DECODER_OFFSETS = ['vfio_pci_core_device.memory_lock', 'vfio_pci_core_device.dmabufs', 'dma_buf.attachments'];
const PCI_COMMAND = 4n, PCI_PM_CTRL = 4n;
const CORE = 'vfio_pci_core';
/** The module whose call sites `callsite` probes use. */
export const CALLSITE_MODULE = CORE;

const a = (n: number): Expr => ({ arg: n });
const load = (base: Expr, ...fields: Field[]): Expr => ({ load: base, fields });
/** dev_name(&vdev->pdev->dev): the PCI address; `adjust` turns a pointer into the vdev (e.g. -memory_lock). */
const devName = (vdev: Expr, ...adjust: string[]): ProbeArg =>
  ({ name: 'dev', type: 'string', expr: load(load(vdev, 'vfio_pci_core_device.pdev', ...adjust), 'pci_dev.dev.kobj.name') });
/** The vdev pointer itself: lets the agent map vdev + offsetof(memory_lock) to the device. */
const vdevArg = (vdev: Expr): ProbeArg => ({ name: 'vdev', type: 'u64', expr: vdev });
const devNameFiltered = (vdev: Expr, ...adjust: string[]): ProbeArg => ({ ...devName(vdev, ...adjust), afterFilter: true });
const fromCore: Filter[][] = [[{ arg: 'caller', inModule: CORE }]];
const retToCore: Filter[][] = [[{ retInModule: CORE }]];
const ret = (id: string, symbols: string[], capability: Capability, cost: string, filters: Filter[][] = [[]], role: Role = 'trigger_ret'): ProbeSpec =>
  ({ id, role, kind: 'return', symbols, capability, args: [{ name: 'ret', expr: { ret: true }, type: 'u64' }], filters, optional: true, cost });

/** memory_lock for write: down_write/up_write called from vfio-pci-core code, keyed by the semaphore. */
const lockProbes: ProbeSpec[] = [
  { id: 'lock', role: 'lock', kind: 'entry', symbols: ['down_write'], capability: Capability.LOCK, callsite: true,
    args: [{ name: 'sem', expr: a(0), type: 'u64' }, { name: 'caller', expr: { caller: true }, type: 'u64' },
      devNameFiltered(a(0), '-vfio_pci_core_device.memory_lock')],
    filters: fromCore, cost: 'no LockAcquire: no episodes at all (every finding needs the lock window)' },
  { id: 'lock_ret', role: 'lock_ret', kind: 'return', symbols: ['down_write'], capability: Capability.LOCK, args: [], callsite: true,
    filters: retToCore, cost: 'acquire time = entry time: lock_wait_ns is 0 and hold_ns includes the wait' },
  { id: 'lock_try', role: 'lock_try', kind: 'entry', symbols: ['down_write_trylock'], capability: Capability.LOCK, callsite: true,
    args: [{ name: 'sem', expr: a(0), type: 'u64' }, { name: 'caller', expr: { caller: true }, type: 'u64' },
      devNameFiltered(a(0), '-vfio_pci_core_device.memory_lock')],
    filters: fromCore, optional: true, cost: 'hot resets of a device set (down_write_trylock per device) are not seen' },
  { id: 'lock_try_ret', role: 'lock_try_ret', kind: 'return', symbols: ['down_write_trylock'], capability: Capability.LOCK, callsite: true,
    args: [{ name: 'ok', expr: { ret: true }, type: 'u32' }], filters: retToCore, optional: true, cost: 'as lock_try' },
  { id: 'unlock', role: 'unlock', kind: 'entry', symbols: ['up_write'], capability: Capability.LOCK, callsite: true,
    args: [{ name: 'sem', expr: a(0), type: 'u64' }, { name: 'caller', expr: { caller: true }, type: 'u64' },
      devNameFiltered(a(0), '-vfio_pci_core_device.memory_lock')],
    filters: fromCore, cost: 'no LockRelease: episodes never close (LOCK_HELD_OPEN everywhere)' },
];

/** Config writes: vfio_*_config_write(vdev, pos, count, perm, offset, val). */
const configWrite = (id: string, role: Role, symbol: string, filters: Filter[][], cost: string, optional = false): ProbeSpec =>
  ({ id, role, kind: 'entry', symbols: [symbol], capability: Capability.TRIGGER, optional, cost, filters,
    args: [devName(a(0)), vdevArg(a(0)), { name: 'count', expr: a(2), type: 'u32' }, { name: 'offset', expr: a(4), type: 'u32' }, { name: 'val', expr: a(5), type: 'u32' }] });

/** Triggers: announced before (config writes, ioctls) or inside the lock window, with the device and tid; every
 * trigger function's return is a TriggerEnd (its return value says whether the operation happened). */
const triggerProbes = (opts: { pmEntry?: string[] } = {}): ProbeSpec[] => [
  configWrite('trig_config', 'trigger_config', 'vfio_basic_config_write', [[{ arg: 'offset', eq: [PCI_COMMAND] }]],
    'PCI_COMMAND memory off/on episodes have no trigger (MEM_DISABLE/MEM_ENABLE)'),
  ret('trig_config_ret', ['vfio_basic_config_write'], Capability.TRIGGER, 'config writes have no TriggerEnd (a failed write still names the next episode)'),
  configWrite('trig_pm', 'trigger_pm', 'vfio_pm_config_write', [[{ arg: 'offset', eq: [PCI_PM_CTRL] }]], 'PMCSR D3hot/D0 episodes have no trigger'),
  ret('trig_pm_ret', ['vfio_pm_config_write'], Capability.TRIGGER, 'PMCSR writes have no TriggerEnd'),
  // vfio_exp_config_write(): "Initiate FLR" in PCI_EXP_DEVCTL (cap offset 8) runs pci_try_reset_function() under the lock
  configWrite('trig_flr', 'trigger_flr', 'vfio_exp_config_write', [[]], 'FLR through the PCIe capability has no trigger', true),
  ret('trig_flr_ret', ['vfio_exp_config_write'], Capability.TRIGGER, 'FLR config writes have no TriggerEnd'),
  // vfio_af_config_write(): PCI_AF_CTRL (cap offset 5) bit 0 = AF FLR (conventional PCI devices)
  configWrite('trig_af_flr', 'trigger_af_flr', 'vfio_af_config_write', [[]], 'AF FLR (Advanced Features capability) has no trigger', true),
  ret('trig_af_flr_ret', ['vfio_af_config_write'], Capability.TRIGGER, 'AF FLR config writes have no TriggerEnd'),
  // vfio_pci_ioctl_reset() is inlined on Debian builds: fall back to the ioctl entry filtered by cmd.
  { id: 'trig_reset', role: 'trigger_reset', kind: 'entry', symbols: ['vfio_pci_ioctl_reset'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'covered by trig_ioctl' },
  ret('trig_reset_ret', ['vfio_pci_ioctl_reset'], Capability.TRIGGER, 'covered by trig_ioctl_ret'),
  { id: 'trig_ioctl', role: 'trigger_ioctl', kind: 'entry', symbols: ['vfio_pci_core_ioctl'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0)), { name: 'cmd', expr: a(1), type: 'u32' }],
    filters: [[{ arg: 'cmd', eq: [VFIO_DEVICE_RESET, VFIO_DEVICE_PCI_HOT_RESET] }]], cost: 'VFIO_DEVICE_RESET / hot reset episodes have no trigger' },
  ret('trig_ioctl_ret', ['vfio_pci_core_ioctl'], Capability.TRIGGER, 'a failed or early-returning reset ioctl still names the next episode'),
  { id: 'trig_close', role: 'trigger_close', kind: 'entry', symbols: ['vfio_pci_core_close_device'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], cost: 'no CLOSE trigger; mappings are not retired at close' },
  // void: the kernel refuses $retval on it (BTF knows the type)
  { ...ret('trig_close_ret', ['vfio_pci_core_close_device'], Capability.TRIGGER, 'close has no TriggerEnd'), args: [] },
  // vfio_pci_core_enable(): the device's first open (open_device of vfio-pci and its variant drivers)
  { id: 'trig_open', role: 'trigger_open', kind: 'entry', symbols: ['vfio_pci_core_enable'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'no OPEN trigger: the open count comes from DeviceInfo snapshots only' },
  ret('trig_open_ret', ['vfio_pci_core_enable'], Capability.TRIGGER, 'a failed open is not told from a successful one'),
  { id: 'trig_pm_entry', role: 'trigger_pm_entry', kind: 'entry', symbols: opts.pmEntry ?? ['vfio_pci_runtime_pm_entry'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'low-power entry (VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY) has no trigger' },
  ret('trig_pm_entry_ret', opts.pmEntry ?? ['vfio_pci_runtime_pm_entry'], Capability.TRIGGER, 'low-power entry has no TriggerEnd'),
  { id: 'trig_pm_exit', role: 'trigger_pm_exit', kind: 'entry', symbols: ['vfio_pci_runtime_pm_exit'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'low-power exit has no trigger' },
  // void, as close
  { ...ret('trig_pm_exit_ret', ['vfio_pci_runtime_pm_exit'], Capability.TRIGGER, 'low-power exit has no TriggerEnd'), args: [] },
];

/** In-episode markers: the D-state change and the reset itself, with their return values and durations. */
const markerProbes: ProbeSpec[] = [
  // vfio_pci_set_power_state(vdev, state): from = pdev->current_state at entry
  { id: 'power', role: 'power', kind: 'entry', symbols: ['vfio_pci_set_power_state'], capability: Capability.TRIGGER, optional: true,
    args: [devName(a(0)), vdevArg(a(0)), { name: 'to', expr: a(1), type: 'u32' },
      { name: 'from', expr: load(load(a(0), 'vfio_pci_core_device.pdev'), 'pci_dev.current_state'), type: 'u32' }],
    filters: [[]], cost: 'no PowerTransition markers (D-state changes are known only from triggers)' },
  { ...ret('power_ret', ['vfio_pci_set_power_state'], Capability.TRIGGER, 'PowerTransition has no duration'), role: 'power_ret' },
  // pci_try_reset_function(pdev) / pci_reset_bus(pdev) called from vfio-pci-core (reset ioctl, FLR write, hot reset)
  { id: 'reset_fn', role: 'reset_fn', kind: 'entry', symbols: ['pci_try_reset_function'], capability: Capability.TRIGGER, optional: true, callsite: true,
    args: [{ name: 'dev', type: 'string', expr: load(a(0), 'pci_dev.dev.kobj.name') }, { name: 'caller', expr: { caller: true }, type: 'u64' }],
    filters: fromCore, cost: 'no ResetFunction markers for function resets' },
  { ...ret('reset_fn_ret', ['pci_try_reset_function'], Capability.TRIGGER, 'function resets have no result', retToCore), role: 'reset_fn_ret', callsite: true },
  { id: 'reset_bus', role: 'reset_fn', kind: 'entry', symbols: ['pci_reset_bus'], capability: Capability.TRIGGER, optional: true, callsite: true,
    args: [{ name: 'dev', type: 'string', expr: load(a(0), 'pci_dev.dev.kobj.name') }, { name: 'caller', expr: { caller: true }, type: 'u64' }],
    filters: fromCore, cost: 'no ResetFunction markers for bus (hot) resets' },
  { ...ret('reset_bus_ret', ['pci_reset_bus'], Capability.TRIGGER, 'bus resets have no result', retToCore), role: 'reset_fn_ret', callsite: true },
];

/** DeviceInfo state read through BTF when the agent itself reads the device's sysfs `d3cold_allowed` (a snapshot: at
 * start, and again after episodes): what __vfio_pci_memory_enabled() reads (vconfig[PCI_COMMAND], the D-state,
 * no_command_memory), the open count, the series' zap flag where the kernel has one, whether the driver serves BARs
 * with its own mmap, and the DMABUFs' revoked bit. d3cold_allowed_show(dev) runs for any PCI device, and dev's
 * driver_data is a vdev only for vfio-pci-core drivers: the probe fires only for the agent's own reads (`self`:
 * ftrace event-pid filter, checked before any fetch; bpftrace predicate), and the agent reads only devices it
 * found bound to a vfio-pci-core driver. */
const snapshotProbe = (): ProbeSpec => {
  const dev = a(0);
  const vdev = load(dev, 'device.driver_data');
  const pdev: Expr = { arg: 0 };                                       // container_of(dev, struct pci_dev, dev)
  const first = load(vdev, 'vfio_pci_core_device.dmabufs');           // dmabufs.next
  return {
    // d3cold_allowed is there for every PCI device; reset_method only for devices with a reset method
    id: 'snapshot', role: 'snapshot', kind: 'entry', symbols: ['d3cold_allowed_show', 'reset_method_show'], capability: Capability.DEVICE_INFO,
    optional: true, filters: [[{ self: true }]],
    args: [{ name: 'dev', type: 'string', expr: load(dev, 'device.kobj.name') }, { name: 'vdev', type: 'u64', expr: vdev },
      { name: 'cmd', type: 'u16', expr: load(load(vdev, 'vfio_pci_core_device.vconfig'), 4) },
      { name: 'power', type: 'u32', expr: load(pdev, '-pci_dev.dev', 'pci_dev.current_state') },
      { name: 'ncm', type: 'flag', expr: load(pdev, '-pci_dev.dev', 'pci_dev.no_command_memory') },
      { name: 'open', type: 'u32', expr: load(vdev, 'vfio_pci_core_device.vdev.open_count') },
      // the seed series' flag (bar_needs_zap in its first versions): absent where the field does not exist, never guessed
      { name: 'zap_bars', type: 'flag', expr: load(vdev, 'vfio_pci_core_device.zap_bars_on_revoke') },
      { name: 'bar_needs_zap', type: 'flag', expr: load(vdev, 'vfio_pci_core_device.bar_needs_zap') },
      { name: 'mmapfn', type: 'u64', expr: load(load(vdev, 'vfio_pci_core_device.vdev.ops'), 'vfio_device_ops.mmap') },
      { name: 'bufs', type: 'u64', expr: first },
      // the vdev inode's address_space: what a DEVICE zap's unmap_mapping_range() names
      { name: 'imap', type: 'u64', expr: load(load(vdev, 'vfio_pci_core_device.vdev.inode'), 'inode.i_mapping') },
      { name: 'revoked', type: 'flag', expr: load(first, '-vfio_pci_dma_buf.dmabufs_elm', 'vfio_pci_dma_buf.revoked') }],
    cost: 'DeviceInfo carries only the driver: memory, power, open and revoked state stay unknown until triggers set them (rules that need them are inconclusive)',
  };
};

const mmapProbe = (symbols: string[], backing: Backing, id = 'mmap', optional = false): ProbeSpec => ({
  id, role: 'mmap', kind: 'entry', symbols, capability: Capability.BAR_MMAP, backing, optional,
  args: [devName(a(0)), vdevArg(a(0)), { name: 'start', expr: load(a(1), 'vm_area_struct.vm_start'), type: 'u64' },
    { name: 'end', expr: load(a(1), 'vm_area_struct.vm_end'), type: 'u64' },
    { name: 'pgoff', expr: load(a(1), 'vm_area_struct.vm_pgoff'), type: 'u64' },
    { name: 'fmap', expr: load(load(a(1), 'vm_area_struct.vm_file'), 'file.f_mapping'), type: 'u64' }],
  filters: [[]], cost: 'mapping state comes only from the start snapshot: SKIPPED_ZAP verdicts become inconclusive',
});

/** VMA teardown (munmap, exit): remove_vma() / vm_area_free() for every VMA of the host, filtered in the kernel to
 * the device's own vm_ops (vfio_pci_mmap_ops) or, for DMABUF mappings, to files whose f_op is dma_buf_fops. */
const munmapProbes = (dmabufMappings: boolean): ProbeSpec[] => {
  const vma = a(0);
  const common: ProbeArg[] = [{ name: 'start', expr: load(vma, 'vm_area_struct.vm_start'), type: 'u64' },
    { name: 'pgoff', expr: load(vma, 'vm_area_struct.vm_pgoff'), type: 'u64' }];
  const out: ProbeSpec[] = [{ id: 'munmap', role: 'munmap', kind: 'entry', symbols: ['remove_vma', 'vm_area_free'], capability: Capability.BAR_MMAP,
    optional: true, filters: [[{ arg: 'ops', eq: [{ symbol: 'vfio_pci_mmap_ops' }] }]],
    args: [{ name: 'ops', expr: load(vma, 'vm_area_struct.vm_ops'), type: 'u64' }, ...common,
      { name: 'vdev', expr: load(vma, 'vm_area_struct.vm_private_data'), type: 'u64' }],
    cost: 'munmap is not seen: a device mapping lives until the device is closed' }];
  if (dmabufMappings) out.push({ id: 'munmap_dmabuf', role: 'munmap', kind: 'entry', symbols: ['remove_vma', 'vm_area_free'], capability: Capability.BAR_MMAP,
    optional: true, filters: [[{ arg: 'fop', eq: [{ symbol: 'dma_buf_fops' }] }]],
    args: [{ name: 'fop', expr: load(load(vma, 'vm_area_struct.vm_file'), 'file.f_op'), type: 'u64' }, ...common,
      { name: 'dmabuf', expr: load(load(vma, 'vm_area_struct.vm_file'), 'file.private_data'), type: 'u64' }],
    cost: 'munmap of DMABUF mappings is not seen: they live until the device is closed' });
  return out;
};

const faultProbes = (symbols: string[]): ProbeSpec[] => [
  { id: 'fault', role: 'fault', kind: 'entry', symbols, capability: Capability.BAR_FAULT,
    args: [devName(load(load(a(0), 'vm_fault.vma'), 'vm_area_struct.vm_private_data')),
      vdevArg(load(load(a(0), 'vm_fault.vma'), 'vm_area_struct.vm_private_data')),
      { name: 'start', expr: load(load(a(0), 'vm_fault.vma'), 'vm_area_struct.vm_start'), type: 'u64' },
      { name: 'pgoff', expr: load(a(0), 'vm_fault.pgoff'), type: 'u64' }],
    filters: [[]], cost: 'populated PTEs are not tracked: SKIPPED_ZAP is WARNING instead of CRITICAL; the double zap cannot be told from zap-fault-zap' },
  { id: 'fault_ret', role: 'fault_ret', kind: 'return', symbols, capability: Capability.BAR_FAULT,
    args: [{ name: 'ret', expr: { ret: true }, type: 'u32' }], filters: [[]], cost: 'faults are reported without outcome' },
];

/** 6.11+: the BAR zap is unmap_mapping_range() on the vdev inode's mapping (vfio_pci_zap_bars). */
const unmapRangeZap = (magics: bigint[]): ProbeSpec[] => [
  { id: 'zap', role: 'zap', kind: 'entry', symbols: ['unmap_mapping_range'], capability: Capability.ZAP, callsite: true,
    args: [{ name: 'mapping', expr: a(0), type: 'u64' }, { name: 'start', expr: a(1), type: 'u64' }, { name: 'len', expr: a(2), type: 'u64' },
      // i_mmap.rb_root.rb_node != NULL: the mapping had VMAs at entry (mapping_mapped())
      { name: 'vmas', expr: load(a(0), 'address_space.i_mmap'), type: 'u64' },
      { name: 'magic', expr: load(load(load(a(0), 'address_space.host'), 'inode.i_sb'), 'super_block.s_magic'), type: 'u64' }],
    // In-kernel filter to vfio device mappings: by the inode's fs magic (BTF), else by vfio_pci_zap_bars()'s range.
    filters: [[{ arg: 'magic', eq: magics }], [{ arg: 'start', eq: [0n] }, { arg: 'len', eq: [ALL_BARS] }]],
    cost: 'no Zap events: revoke episodes look like SKIPPED_ZAP, REDUNDANT_ZAP and zap_ns are lost' },
  { id: 'zap_ret', role: 'zap_ret', kind: 'return', symbols: ['unmap_mapping_range'], capability: Capability.ZAP, args: [], callsite: true,
    filters: retToCore, cost: 'zaps have no duration: zap_ns = 0 and revoke_ns ends at the zap entry' },
];

/** Every era: triggers with their returns, markers, snapshots. */
const common = (opts: { pmEntry?: string[] } = {}): ProbeSpec[] => [...triggerProbes(opts), ...markerProbes, snapshotProbe()];

export const PROFILES: ProbeProfile[] = [
  {
    id: 'seed-series', era: 'vfio_pci_*revoke_bars series (conditional DEVICE zap, DMABUF-backed BAR mmaps)',
    match: { all: ['vfio_pci_dma_buf_move'], any: [/^vfio_pci_(lock_)?(zap_)?revoke_bars$/] },
    dmabufBarMmap: true, zapsBeforeLock: false, snapshotBacking: Backing.DMABUF,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC, DMA_BUF_MAGIC]), ...common(), mmapProbe(['vfio_pci_core_mmap'], Backing.DMABUF),
      mmapProbe(['nvgrace_gpu_mmap'], Backing.CUSTOM_VM_OPS, 'mmap_custom', true), ...munmapProbes(true),
      ...faultProbes(['vfio_pci_mmap_huge_fault']), ...dmabufProbes(['dma_buf_invalidate_mappings', 'dma_buf_move_notify'])],
    notes: ['zap_bars_on_revoke is read from the vdev in each snapshot (absent where the field does not exist)'],
  },
  {
    id: '7.1+', era: '7.1+ (dma_buf_invalidate_mappings)',
    match: { all: ['vfio_pci_dma_buf_move', 'dma_buf_invalidate_mappings'] },
    dmabufBarMmap: false, zapsBeforeLock: false, snapshotBacking: Backing.LEGACY,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC]), ...common(), mmapProbe(['vfio_pci_core_mmap'], Backing.LEGACY),
      mmapProbe(['nvgrace_gpu_mmap'], Backing.CUSTOM_VM_OPS, 'mmap_custom', true), ...munmapProbes(false),
      ...faultProbes(['vfio_pci_mmap_huge_fault']), ...dmabufProbes(['dma_buf_invalidate_mappings'])],
    notes: ['dma_resv_wait_timeout inside the move is an unbounded wait for importers (inside the DmaBufRevoke duration)',
      'DMABUFs have no .mmap before the DMABUF-mmap series: every BAR mapping is the device fd\'s own (LEGACY)'],
  },
  {
    id: '6.19-7.0', era: '6.19–7.0 (DMABUF export)',
    match: { all: ['vfio_pci_dma_buf_move', 'dma_buf_move_notify'] },
    dmabufBarMmap: false, zapsBeforeLock: false, snapshotBacking: Backing.LEGACY,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC]), ...common(), mmapProbe(['vfio_pci_core_mmap'], Backing.LEGACY),
      mmapProbe(['nvgrace_gpu_mmap'], Backing.CUSTOM_VM_OPS, 'mmap_custom', true), ...munmapProbes(false),
      ...faultProbes(['vfio_pci_mmap_huge_fault']), ...dmabufProbes(['dma_buf_move_notify'])],
    notes: [],
  },
  {
    id: '6.11-6.18', era: '6.11–6.18 (unmap_mapping_range on the vdev inode, no DMABUF)',
    match: { all: ['unmap_mapping_range'], any: ['vfio_pci_mmap_huge_fault', 'vfio_pci_mmap_page_fault'], none: ['vfio_pci_dma_buf_move'] },
    dmabufBarMmap: false, zapsBeforeLock: false, snapshotBacking: Backing.LEGACY,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC]), ...common(), mmapProbe(['vfio_pci_core_mmap'], Backing.LEGACY),
      mmapProbe(['nvgrace_gpu_mmap'], Backing.CUSTOM_VM_OPS, 'mmap_custom', true), ...munmapProbes(false),
      ...faultProbes(['vfio_pci_mmap_huge_fault', 'vfio_pci_mmap_page_fault'])],
    notes: ['dma_buf_move_notify may exist but vfio exports no DMABUF before 6.19: not probed'],
  },
  {
    id: 'pre-6.11', era: '< 6.11 (zap_vma_ptes per VMA from vfio_pci_zap_and_vma_lock, before down_write)',
    match: { all: ['zap_vma_ptes'], any: ['vfio_pci_mmap_open', 'vfio_pci_zap_and_vma_lock', 'vfio_pci_mmap_fault'] },
    dmabufBarMmap: false, zapsBeforeLock: true, snapshotBacking: Backing.LEGACY,
    probes: [...lockProbes,
      { id: 'zap', role: 'zap_vma', kind: 'entry', symbols: ['zap_vma_ptes'], capability: Capability.ZAP, callsite: true,
        args: [{ name: 'caller', expr: { caller: true }, type: 'u64' }, { name: 'size', expr: a(2), type: 'u64' },
          { name: 'pgoff', expr: load(a(0), 'vm_area_struct.vm_pgoff'), type: 'u64' },
          { name: 'start', expr: load(a(0), 'vm_area_struct.vm_start'), type: 'u64' },
          devNameFiltered(load(a(0), 'vm_area_struct.vm_private_data'))],
        filters: fromCore, cost: 'no Zap events: every revoke episode is a SKIPPED_ZAP' },
      { id: 'zap_ret', role: 'zap_ret', kind: 'return', symbols: ['zap_vma_ptes'], capability: Capability.ZAP, args: [], callsite: true,
        filters: retToCore, cost: 'zaps have no duration' },
      ...common(), mmapProbe(['vfio_pci_core_mmap'], Backing.LEGACY), ...munmapProbes(false), ...faultProbes(['vfio_pci_mmap_fault'])],
    notes: ['zaps happen before down_write: the correlator attaches them to the next episode of the same device',
      'a revoke with no VMA on vdev->vma_list makes no zap_vma_ptes call at all'],
  },
];

function dmabufProbes(notify: string[]): ProbeSpec[] {
  // dma_buf_invalidate_mappings(dmabuf) walks dmabuf->attachments and calls each importer's invalidate callback:
  // the probe walks the same list (IMPORTER_WALK entries) and reads each attachment's importer_ops, whose
  // module names the importer.
  const walk: ProbeArg[] = [];
  let node: Expr = load(a(0), 'dma_buf.attachments');               // attachments.next
  for (let i = 1; i <= IMPORTER_WALK; i++) {
    walk.push({ name: `n${i}`, expr: node, type: 'u64' });
    walk.push({ name: `o${i}`, expr: load(node, '-dma_buf_attachment.node', 'dma_buf_attachment.importer_ops'), type: 'u64' });
    node = load(node, 0);
  }
  return [
    { id: 'dmabuf_move', role: 'dmabuf_move', kind: 'entry', symbols: ['vfio_pci_dma_buf_move'], capability: Capability.DMABUF_REVOKE,
      args: [devName(a(0)), vdevArg(a(0)), { name: 'revoked', expr: a(1), type: 'u32' },
        { name: 'vmas', expr: load(load(load(a(0), 'vfio_pci_core_device.vdev.inode'), 'inode.i_mapping'), 'address_space.i_mmap'), type: 'u64' }],
      filters: [[]], cost: 'DMABUF revokes are not seen: UNPAIRED_REVOKE and DMABUF-backed mapping state are lost' },
    { id: 'dmabuf_move_ret', role: 'dmabuf_move_ret', kind: 'return', symbols: ['vfio_pci_dma_buf_move'], capability: Capability.DMABUF_REVOKE,
      args: [], filters: [[]], cost: 'DMABUF revokes have no duration' },
    { id: 'move_notify', role: 'move_notify', kind: 'entry', symbols: notify, capability: Capability.MOVE_NOTIFY, callsite: true,
      args: [{ name: 'dmabuf', expr: a(0), type: 'u64' }, { name: 'ops', expr: load(a(0), 'dma_buf.ops'), type: 'u64' }, ...walk],
      filters: [[{ arg: 'ops', eq: [{ symbol: 'vfio_pci_dmabuf_ops' }] }]], optional: true, cost: 'importer notification cost (move_ns), count and identity are lost' },
    { id: 'move_notify_ret', role: 'move_notify_ret', kind: 'return', symbols: notify, capability: Capability.MOVE_NOTIFY, callsite: true,
      args: [], filters: retToCore, optional: true, cost: 'as move_notify' },
  ];
}

/** What backs the mappings each mmap probe of a profile sees, by probe id (the decoder's BarMmap.backing). */
export function backingByProbe(profile: ProbeProfile): Record<string, Backing> {
  return Object.fromEntries(profile.probes.filter((p) => p.backing !== undefined).map((p) => [p.id, p.backing!]));
}
