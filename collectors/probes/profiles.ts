// Probe profiles as data (DESIGN §7): one per kernel era, each mapping kernel functions and their
// arguments to the semantic events of §3. Backends (ftrace, bpftrace) render the same specs.
// Arguments are x86-64 SysV integer registers (arg0 = %di ... arg5 = %r9); struct member offsets come
// from BTF at plan time, so a spec needing BTF degrades (the argument or filter is dropped) without it.
import { Capability } from '../../services/core/model.js';

export type Expr =
  | { arg: number }                         // nth integer argument at function entry
  | { ret: true }                           // return value (return probes)
  | { caller: true }                        // return address at entry: *(u64 *)sp
  | { load: Expr; fields: string[] }        // *(u64 *)(base + Σ offsetof(field)); a leading '-' subtracts
  | { load32: Expr; fields: string[] };     // *(u32 *)(...)

export type ArgType = 'u64' | 'u32' | 'string';
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
  | { retInModule: string };                 // return probes: the caller is in the module's text

export type Role =
  | 'zap' | 'zap_vma' | 'zap_ret' | 'lock' | 'lock_ret' | 'lock_try' | 'lock_try_ret' | 'unlock'
  | 'trigger_config' | 'trigger_pm' | 'trigger_ioctl' | 'trigger_reset' | 'trigger_close' | 'trigger_pm_entry' | 'trigger_pm_exit'
  | 'mmap' | 'fault' | 'fault_ret' | 'dmabuf_move' | 'dmabuf_move_ret' | 'move_notify' | 'move_notify_ret';

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
  probes: ProbeSpec[];
  notes: string[];
}

// ---- building blocks --------------------------------------------------------------------------

export const VFIO_MAGIC = 0x5646494fn;        // "VFIO": vfio_fs_type, the pseudo fs of the vdev inodes (vfio_main.c)
export const DMA_BUF_MAGIC = 0x444d4142n;     // "DMAB": dma-buf's pseudo fs (dma-buf.c)
export const VFIO_DEVICE_RESET = 0x3b6fn;     // _IO(VFIO_TYPE, VFIO_BASE + 11)
export const VFIO_DEVICE_PCI_HOT_RESET = 0x3b71n;
export const ALL_BARS = 6n << 40n;           // vfio_pci_zap_bars(): unmap_mapping_range(mapping, 0, 6 << 40, true)
const PCI_COMMAND = 4n, PCI_PM_CTRL = 4n;
const CORE = 'vfio_pci_core';

const a = (n: number): Expr => ({ arg: n });
const load = (base: Expr, ...fields: string[]): Expr => ({ load: base, fields });
/** dev_name(&vdev->pdev->dev): the PCI address; `adjust` turns a pointer into the vdev (e.g. -memory_lock). */
const devName = (vdev: Expr, ...adjust: string[]): ProbeArg =>
  ({ name: 'dev', type: 'string', expr: load(load(vdev, 'vfio_pci_core_device.pdev', ...adjust), 'pci_dev.dev.kobj.name') });
/** The vdev pointer itself: lets the agent map vdev + offsetof(memory_lock) to the device. */
const vdevArg = (vdev: Expr): ProbeArg => ({ name: 'vdev', type: 'u64', expr: vdev });
const devNameFiltered = (vdev: Expr, ...adjust: string[]): ProbeArg => ({ ...devName(vdev, ...adjust), afterFilter: true });
const fromCore: Filter[][] = [[{ arg: 'caller', inModule: CORE }]];
const retToCore: Filter[][] = [[{ retInModule: CORE }]];

/** memory_lock for write: down_write/up_write called from vfio-pci-core code, keyed by the semaphore. */
const lockProbes: ProbeSpec[] = [
  { id: 'lock', role: 'lock', kind: 'entry', symbols: ['down_write'], capability: Capability.LOCK,
    args: [{ name: 'sem', expr: a(0), type: 'u64' }, { name: 'caller', expr: { caller: true }, type: 'u64' },
      devNameFiltered(a(0), '-vfio_pci_core_device.memory_lock')],
    filters: fromCore, cost: 'no LockAcquire: no episodes at all (every finding needs the lock window)' },
  { id: 'lock_ret', role: 'lock_ret', kind: 'return', symbols: ['down_write'], capability: Capability.LOCK, args: [],
    filters: retToCore, cost: 'acquire time = entry time: lock_wait_ns is 0 and hold_ns includes the wait' },
  { id: 'lock_try', role: 'lock_try', kind: 'entry', symbols: ['down_write_trylock'], capability: Capability.LOCK,
    args: [{ name: 'sem', expr: a(0), type: 'u64' }, { name: 'caller', expr: { caller: true }, type: 'u64' },
      devNameFiltered(a(0), '-vfio_pci_core_device.memory_lock')],
    filters: fromCore, optional: true, cost: 'hot resets of a device set (down_write_trylock per device) are not seen' },
  { id: 'lock_try_ret', role: 'lock_try_ret', kind: 'return', symbols: ['down_write_trylock'], capability: Capability.LOCK,
    args: [{ name: 'ok', expr: { ret: true }, type: 'u32' }], filters: retToCore, optional: true, cost: 'as lock_try' },
  { id: 'unlock', role: 'unlock', kind: 'entry', symbols: ['up_write'], capability: Capability.LOCK,
    args: [{ name: 'sem', expr: a(0), type: 'u64' }, { name: 'caller', expr: { caller: true }, type: 'u64' },
      devNameFiltered(a(0), '-vfio_pci_core_device.memory_lock')],
    filters: fromCore, cost: 'no LockRelease: episodes never close (LOCK_HELD_OPEN everywhere)' },
];

/** Triggers: announced before (config writes, ioctls) or inside the lock window, with the device and tid. */
const triggerProbes = (opts: { pmEntry?: string[] } = {}): ProbeSpec[] => [
  { id: 'trig_config', role: 'trigger_config', kind: 'entry', symbols: ['vfio_basic_config_write'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0)), { name: 'offset', expr: a(4), type: 'u32' }, { name: 'val', expr: a(5), type: 'u32' }],
    filters: [[{ arg: 'offset', eq: [PCI_COMMAND] }]], cost: 'PCI_COMMAND memory off/on episodes have no trigger (MEM_DISABLE/MEM_ENABLE)' },
  { id: 'trig_pm', role: 'trigger_pm', kind: 'entry', symbols: ['vfio_pm_config_write'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0)), { name: 'offset', expr: a(4), type: 'u32' }, { name: 'val', expr: a(5), type: 'u32' }],
    filters: [[{ arg: 'offset', eq: [PCI_PM_CTRL] }]], cost: 'PMCSR D3hot/D0 episodes have no trigger' },
  // vfio_pci_ioctl_reset() is inlined on Debian builds: fall back to the ioctl entry filtered by cmd.
  { id: 'trig_reset', role: 'trigger_reset', kind: 'entry', symbols: ['vfio_pci_ioctl_reset'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'covered by trig_ioctl' },
  { id: 'trig_ioctl', role: 'trigger_ioctl', kind: 'entry', symbols: ['vfio_pci_core_ioctl'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0)), { name: 'cmd', expr: a(1), type: 'u32' }],
    filters: [[{ arg: 'cmd', eq: [VFIO_DEVICE_RESET, VFIO_DEVICE_PCI_HOT_RESET] }]], cost: 'VFIO_DEVICE_RESET / hot reset episodes have no trigger' },
  { id: 'trig_close', role: 'trigger_close', kind: 'entry', symbols: ['vfio_pci_core_close_device'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], cost: 'no CLOSE trigger; mappings are not retired at close (munmap is not probed)' },
  { id: 'trig_pm_entry', role: 'trigger_pm_entry', kind: 'entry', symbols: opts.pmEntry ?? ['vfio_pci_runtime_pm_entry'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'low-power entry (VFIO_DEVICE_FEATURE_LOW_POWER_ENTRY) has no trigger' },
  { id: 'trig_pm_exit', role: 'trigger_pm_exit', kind: 'entry', symbols: ['vfio_pci_runtime_pm_exit'], capability: Capability.TRIGGER,
    args: [devName(a(0)), vdevArg(a(0))], filters: [[]], optional: true, cost: 'low-power exit has no trigger' },
];

const mmapProbe: ProbeSpec = {
  id: 'mmap', role: 'mmap', kind: 'entry', symbols: ['vfio_pci_core_mmap'], capability: Capability.BAR_MMAP,
  args: [devName(a(0)), vdevArg(a(0)), { name: 'start', expr: load(a(1), 'vm_area_struct.vm_start'), type: 'u64' },
    { name: 'end', expr: load(a(1), 'vm_area_struct.vm_end'), type: 'u64' },
    { name: 'pgoff', expr: load(a(1), 'vm_area_struct.vm_pgoff'), type: 'u64' },
    { name: 'fmap', expr: load(load(a(1), 'vm_area_struct.vm_file'), 'file.f_mapping'), type: 'u64' }],
  filters: [[]], cost: 'mapping state comes only from the start snapshot: SKIPPED_ZAP verdicts become inconclusive',
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
  { id: 'zap', role: 'zap', kind: 'entry', symbols: ['unmap_mapping_range'], capability: Capability.ZAP,
    args: [{ name: 'mapping', expr: a(0), type: 'u64' }, { name: 'start', expr: a(1), type: 'u64' }, { name: 'len', expr: a(2), type: 'u64' },
      // i_mmap.rb_root.rb_node != NULL: the mapping had VMAs at entry (mapping_mapped())
      { name: 'vmas', expr: load(a(0), 'address_space.i_mmap'), type: 'u64' },
      { name: 'magic', expr: load(load(load(a(0), 'address_space.host'), 'inode.i_sb'), 'super_block.s_magic'), type: 'u64' }],
    // In-kernel filter to vfio device mappings: by the inode's fs magic (BTF), else by vfio_pci_zap_bars()'s range.
    filters: [[{ arg: 'magic', eq: magics }], [{ arg: 'start', eq: [0n] }, { arg: 'len', eq: [ALL_BARS] }]],
    cost: 'no Zap events: revoke episodes look like SKIPPED_ZAP, REDUNDANT_ZAP and zap_ns are lost' },
  { id: 'zap_ret', role: 'zap_ret', kind: 'return', symbols: ['unmap_mapping_range'], capability: Capability.ZAP, args: [],
    filters: retToCore, cost: 'zaps have no duration: zap_ns = 0 and revoke_ns ends at the zap entry' },
];

export const PROFILES: ProbeProfile[] = [
  {
    id: 'seed-series', era: 'vfio_pci_*revoke_bars series (conditional DEVICE zap, DMABUF-backed BAR mmaps)',
    match: { all: ['vfio_pci_dma_buf_move'], any: [/^vfio_pci_(lock_)?(zap_)?revoke_bars$/] },
    dmabufBarMmap: true, zapsBeforeLock: false,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC, DMA_BUF_MAGIC]), ...triggerProbes(), mmapProbe, ...faultProbes(['vfio_pci_mmap_huge_fault']),
      ...dmabufProbes(['dma_buf_invalidate_mappings', 'dma_buf_move_notify'])],
    notes: ['zap_bars_on_revoke is not read from the vdev yet: DeviceInfo reports the kernel default (true)'],
  },
  {
    id: '7.1+', era: '7.1+ (dma_buf_invalidate_mappings)',
    match: { all: ['vfio_pci_dma_buf_move', 'dma_buf_invalidate_mappings'] },
    dmabufBarMmap: false, zapsBeforeLock: false,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC]), ...triggerProbes(), mmapProbe, ...faultProbes(['vfio_pci_mmap_huge_fault']),
      ...dmabufProbes(['dma_buf_invalidate_mappings'])],
    notes: ['dma_resv_wait_timeout inside the move is an unbounded wait for importers (not probed)'],
  },
  {
    id: '6.19-7.0', era: '6.19–7.0 (DMABUF export)',
    match: { all: ['vfio_pci_dma_buf_move', 'dma_buf_move_notify'] },
    dmabufBarMmap: false, zapsBeforeLock: false,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC]), ...triggerProbes(), mmapProbe, ...faultProbes(['vfio_pci_mmap_huge_fault']),
      ...dmabufProbes(['dma_buf_move_notify'])],
    notes: [],
  },
  {
    id: '6.11-6.18', era: '6.11–6.18 (unmap_mapping_range on the vdev inode, no DMABUF)',
    match: { all: ['unmap_mapping_range'], any: ['vfio_pci_mmap_huge_fault', 'vfio_pci_mmap_page_fault'], none: ['vfio_pci_dma_buf_move'] },
    dmabufBarMmap: false, zapsBeforeLock: false,
    probes: [...lockProbes, ...unmapRangeZap([VFIO_MAGIC]), ...triggerProbes(), mmapProbe,
      ...faultProbes(['vfio_pci_mmap_huge_fault', 'vfio_pci_mmap_page_fault'])],
    notes: ['dma_buf_move_notify may exist but vfio exports no DMABUF before 6.19: not probed'],
  },
  {
    id: 'pre-6.11', era: '< 6.11 (zap_vma_ptes per VMA from vfio_pci_zap_and_vma_lock, before down_write)',
    match: { all: ['zap_vma_ptes'], any: ['vfio_pci_mmap_open', 'vfio_pci_zap_and_vma_lock', 'vfio_pci_mmap_fault'] },
    dmabufBarMmap: false, zapsBeforeLock: true,
    probes: [...lockProbes,
      { id: 'zap', role: 'zap_vma', kind: 'entry', symbols: ['zap_vma_ptes'], capability: Capability.ZAP,
        args: [{ name: 'caller', expr: { caller: true }, type: 'u64' }, { name: 'size', expr: a(2), type: 'u64' },
          { name: 'pgoff', expr: load(a(0), 'vm_area_struct.vm_pgoff'), type: 'u64' },
          { name: 'start', expr: load(a(0), 'vm_area_struct.vm_start'), type: 'u64' },
          devNameFiltered(load(a(0), 'vm_area_struct.vm_private_data'))],
        filters: fromCore, cost: 'no Zap events: every revoke episode is a SKIPPED_ZAP' },
      { id: 'zap_ret', role: 'zap_ret', kind: 'return', symbols: ['zap_vma_ptes'], capability: Capability.ZAP, args: [],
        filters: retToCore, cost: 'zaps have no duration' },
      ...triggerProbes(), mmapProbe, ...faultProbes(['vfio_pci_mmap_fault'])],
    notes: ['zaps happen before down_write: the correlator attaches them to the next episode of the same device',
      'a revoke with no VMA on vdev->vma_list makes no zap_vma_ptes call at all'],
  },
];

function dmabufProbes(notify: string[]): ProbeSpec[] {
  return [
    { id: 'dmabuf_move', role: 'dmabuf_move', kind: 'entry', symbols: ['vfio_pci_dma_buf_move'], capability: Capability.DMABUF_REVOKE,
      args: [devName(a(0)), vdevArg(a(0)), { name: 'revoked', expr: a(1), type: 'u32' },
        { name: 'vmas', expr: load(load(load(a(0), 'vfio_pci_core_device.vdev.inode'), 'inode.i_mapping'), 'address_space.i_mmap'), type: 'u64' }],
      filters: [[]], cost: 'DMABUF revokes are not seen: UNPAIRED_REVOKE and DMABUF-backed mapping state are lost' },
    { id: 'dmabuf_move_ret', role: 'dmabuf_move_ret', kind: 'return', symbols: ['vfio_pci_dma_buf_move'], capability: Capability.DMABUF_REVOKE,
      args: [], filters: [[]], cost: 'DMABUF revokes have no duration' },
    { id: 'move_notify', role: 'move_notify', kind: 'entry', symbols: notify, capability: Capability.MOVE_NOTIFY,
      args: [{ name: 'dmabuf', expr: a(0), type: 'u64' }, { name: 'ops', expr: load(a(0), 'dma_buf.ops'), type: 'u64' }],
      filters: [[{ arg: 'ops', eq: [{ symbol: 'vfio_pci_dmabuf_ops' }] }]], optional: true, cost: 'importer notification cost (move_ns) is lost' },
    { id: 'move_notify_ret', role: 'move_notify_ret', kind: 'return', symbols: notify, capability: Capability.MOVE_NOTIFY,
      args: [], filters: retToCore, optional: true, cost: 'as move_notify' },
  ];
}
