// Kernel eras, drivers and collector versions the simulated fleet mixes (docs/design.md §1, §7). The simulator's own
// tables: nothing here comes from the correlator.
import { Backing, Capability } from '../../services/core/model.js';

export type EraName = 'pre-6.11' | '6.12' | '6.19' | '7.1' | 'series';
export const ERA_NAMES: readonly EraName[] = ['pre-6.11', '6.12', '6.19', '7.1', 'series'];

export type Arch = 'amd64' | 'arm64';
/** Host flavours: x86 NIC/GPU boxes, Grace Hopper (nvgrace-gpu), Kunpeng (hisi_acc). */
export type Flavor = 'x86' | 'grace' | 'kunpeng';
export const FLAVORS: readonly Flavor[] = ['x86', 'grace', 'kunpeng'];

/** How vfio_pci_zap_and_down_write_memory_lock() zaps BAR mappings in this era:
 * - 'vma-list': < 6.11, vfio_pci_zap_and_vma_lock() zap_vma_ptes() each VMA on vdev->vma_list (the faulted ones),
 *   before down_write;
 * - 'unconditional': 6.11 up to the series, vfio_pci_zap_bars() = unmap_mapping_range(vdev inode, 0, 6 << 40)
 *   under the write lock on every revoking path;
 * - 'conditional': the series, the DEVICE zap only when vdev->zap_bars_on_revoke. */
export type ZapStyle = 'vma-list' | 'unconditional' | 'conditional';

export interface Era {
  name: EraName;
  releases: Record<Arch, readonly string[]>;
  zap: ZapStyle;
  /** >= 6.19: vfio_pci_dma_buf_move() revokes exported DMABUFs and calls move_notify per DMABUF. */
  dmabufExport: boolean;
  /** The "vfio/pci: Add mmap() for DMABUFs" series: core BAR mmaps are DMABUF-backed, DEVICE zap is
   * conditional on vdev->zap_bars_on_revoke, PERMANENT_REVOKE exists. */
  dmabufBarMmap: boolean;
  /** vdev->zap_bars_on_revoke exists (the series): DeviceInfo carries it only here. */
  zapFlagField: boolean;
  /** The series' permanent revoke of a device's DMABUFs exists. */
  permanentRevoke: boolean;
  capabilities: readonly Capability[];
}

const BASE_CAPS = [Capability.LOCK, Capability.ZAP, Capability.BAR_MMAP, Capability.BAR_FAULT, Capability.TRIGGER,
  Capability.DEVICE_INFO];
const DMABUF_CAPS = [...BASE_CAPS, Capability.DMABUF_REVOKE, Capability.MOVE_NOTIFY];

export const ERAS: Record<EraName, Era> = {
  'pre-6.11': {
    name: 'pre-6.11', zap: 'vma-list', dmabufExport: false, dmabufBarMmap: false, zapFlagField: false, permanentRevoke: false, capabilities: BASE_CAPS,
    releases: { amd64: ['6.1.0-27-amd64', '6.1.0-31-amd64', '6.1.0-28-cloud-amd64'], arm64: ['6.1.0-27-arm64', '6.1.0-31-arm64'] },
  },
  '6.12': {
    name: '6.12', zap: 'unconditional', dmabufExport: false, dmabufBarMmap: false, zapFlagField: false, permanentRevoke: false, capabilities: BASE_CAPS,
    releases: { amd64: ['6.12.57+deb13-amd64', '6.12.48+deb13-amd64'], arm64: ['6.12.57+deb13-arm64', '6.12.48+deb13-arm64'] },
  },
  '6.19': {
    name: '6.19', zap: 'unconditional', dmabufExport: true, dmabufBarMmap: false, zapFlagField: false, permanentRevoke: false, capabilities: DMABUF_CAPS,
    releases: { amd64: ['6.19.0-1-amd64', '6.19.3-1-amd64'], arm64: ['6.19.0-1-arm64', '6.19.3-1-arm64'] },
  },
  '7.1': {
    name: '7.1', zap: 'unconditional', dmabufExport: true, dmabufBarMmap: false, zapFlagField: false, permanentRevoke: false, capabilities: DMABUF_CAPS,
    releases: { amd64: ['7.1.0-1-amd64', '7.1.2-1-amd64'], arm64: ['7.1.0-1-arm64', '7.1.2-1-arm64'] },
  },
  series: {
    name: 'series', zap: 'conditional', dmabufExport: true, dmabufBarMmap: true, zapFlagField: true, permanentRevoke: true, capabilities: DMABUF_CAPS,
    releases: { amd64: ['7.2.0-rc3+vfio-dmabuf-mmap'], arm64: ['7.2.0-rc3+vfio-dmabuf-mmap'] },
  },
};

export type DriverName = 'vfio-pci' | 'nvgrace-gpu' | 'hisi_acc_vfio_pci' | 'mlx5_vfio_pci';
export const DRIVER_NAMES: readonly DriverName[] = ['vfio-pci', 'nvgrace-gpu', 'hisi_acc_vfio_pci', 'mlx5_vfio_pci'];

export interface BarSpec {
  bar: number;
  /** Bytes a user mmap()s of this BAR. */
  length: number;
  /** Mapped through the driver's own vm_ops (nvgrace-gpu device memory), never DMABUF-backed. */
  customVmOps: boolean;
  /** Always kept mapped while the device is open (a VM's RAM-like BAR). */
  persistent: boolean;
}

const MiB = 2 ** 20, GiB = 2 ** 30;

/** BAR layouts a user maps, by driver (one profile is drawn per device). */
export const BAR_PROFILES: Record<DriverName, readonly (readonly BarSpec[])[]> = {
  'vfio-pci': [
    [{ bar: 0, length: 16 * MiB, customVmOps: false, persistent: false }, { bar: 1, length: 256 * MiB, customVmOps: false, persistent: false }, { bar: 3, length: 32 * MiB, customVmOps: false, persistent: false }],
    [{ bar: 0, length: 128 * 1024, customVmOps: false, persistent: false }, { bar: 3, length: 16 * 1024, customVmOps: false, persistent: false }],
    [{ bar: 0, length: 1 * MiB, customVmOps: false, persistent: false }],
  ],
  // nvgrace_gpu_mmap(): BAR0 through the core, usemem (BAR2) and resmem (BAR4) with nvgrace_gpu_vm_ops.
  'nvgrace-gpu': [
    [{ bar: 0, length: 16 * MiB, customVmOps: false, persistent: false }, { bar: 2, length: 94 * GiB, customVmOps: true, persistent: true }],
    [{ bar: 0, length: 16 * MiB, customVmOps: false, persistent: false }, { bar: 2, length: 94 * GiB, customVmOps: true, persistent: true }, { bar: 4, length: 1 * GiB, customVmOps: true, persistent: true }],
  ],
  // hisi_acc_vfio_pci_mmap(): BAR2, only the first half (the VF's queue pages), wrapping vfio_pci_core_mmap.
  hisi_acc_vfio_pci: [[{ bar: 2, length: 16 * 1024, customVmOps: false, persistent: false }]],
  mlx5_vfio_pci: [[{ bar: 0, length: 32 * MiB, customVmOps: false, persistent: false }]],
};

export function backingOf(era: Era, spec: BarSpec): Backing {
  if (spec.customVmOps) return Backing.CUSTOM_VM_OPS;
  return era.dmabufBarMmap ? Backing.DMABUF : Backing.LEGACY;
}

/** The series sets zap_bars_on_revoke when a driver's .mmap is not vfio_pci_core_mmap; hisi_acc opts
 * out (its .mmap only wraps the core one). Older kernels have no such flag: they always zap. */
export function zapBarsOnRevoke(era: Era, driver: DriverName): boolean {
  if (!era.zapFlagField) return true;
  return driver === 'nvgrace-gpu';
}

/** BARs a driver serves through its own vm_ops (nvgrace_gpu_mmap: usemem BAR2, resmem BAR4), as a bitmask. */
export function customVmOpsBars(driver: DriverName): number {
  return driver === 'nvgrace-gpu' ? (1 << 2) | (1 << 4) : 0;
}

/** Drivers bound to SR-IOV virtual functions: pdev->no_command_memory (the COMMAND memory bit is ignored, so
 * __vfio_pci_memory_enabled() is true in D0 whatever the guest writes). */
export function isVirtualFunction(driver: DriverName): boolean {
  return driver === 'mlx5_vfio_pci' || driver === 'hisi_acc_vfio_pci';
}

/** What a host's collector reports. 'current' (rules v2): TriggerEnd events and the TRIGGER_END capability,
 * DeviceInfo with the device's state (memory_enabled, power_state, revoked, open_count, no_command_memory,
 * custom_vm_ops_bars), OPEN, PowerTransition and ResetFunction markers. 'older': none of those (a collector
 * released before them): a DeviceInfo with the driver and flags only, and no way to tell a failed ioctl from
 * one that took the lock. Both cut batches with now_ns and send heartbeats. */
export type CollectorKind = 'current' | 'older';
export interface Collector { kind: CollectorKind; version: string; triggerEnd: boolean; stateFields: boolean; markers: boolean }
export const COLLECTORS: Record<CollectorKind, Collector> = {
  current: { kind: 'current', version: '0.2.0-sim', triggerEnd: true, stateFields: true, markers: true },
  older: { kind: 'older', version: '0.1.4-sim', triggerEnd: false, stateFields: false, markers: false },
};

export function driversFor(era: Era, flavor: Flavor): DriverName[] {
  switch (flavor) {
    case 'x86': return ['vfio-pci', 'mlx5_vfio_pci'];
    case 'grace': return era.name === 'pre-6.11' ? ['vfio-pci', 'mlx5_vfio_pci'] : ['nvgrace-gpu', 'mlx5_vfio_pci', 'vfio-pci'];
    case 'kunpeng': return ['hisi_acc_vfio_pci', 'vfio-pci'];
  }
}

export type ImporterKind = 'mlx5_ib' | 'iommufd' | 'amdgpu' | 'xe';
/** move_notify callback cost per importer kind: median ns and log-spread (heavy tail). */
export const IMPORTER_LATENCY: Record<ImporterKind, { median: number; sigma: number }> = {
  iommufd: { median: 6_000, sigma: 0.5 },       // iopt_revoke_notify: unmap from the IOPT
  mlx5_ib: { median: 120_000, sigma: 1.0 },     // mlx5_ib_dmabuf_invalidate_cb: MR invalidation, UMR post
  amdgpu: { median: 350_000, sigma: 1.2 },      // amdgpu_dma_buf_move_notify: waits on fences
  xe: { median: 250_000, sigma: 1.2 },
};
