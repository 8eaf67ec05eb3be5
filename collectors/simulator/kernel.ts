// The simulator's model of the kernel: what each vfio-pci path that takes vdev->memory_lock for write does to a
// device, and when the device's memory is reachable. Written from the kernel sources (drivers/vfio/pci/
// vfio_pci_core.c, vfio_pci_config.c, vfio_pci_dmabuf.c) and the kernel lab's traces, not from the correlator:
// the ground truth it yields can therefore disagree with a correlator that is wrong about the kernel.
import { TriggerKind } from '../../services/core/model.js';

/** The write sections of memory_lock the simulator drives. */
export type PathName =
  | 'ioctl_reset' | 'hot_reset' | 'mem_disable' | 'mem_enable' | 'pm_d3hot' | 'pm_d0' | 'exp_flr' | 'af_flr'
  | 'rpm_entry' | 'rpm_exit' | 'close' | 'permanent_revoke' | 'lock_and_enable';

export interface PathSpec {
  /** The kernel function (what a probe attaches to). */
  fn: string;
  /** What the collector announces at the function's entry; undefined: no trigger probe on this path. */
  trigger: TriggerKind | undefined;
  /** Takes the lock through vfio_pci_zap_and_down_write_memory_lock() (hot reset: down_write_trylock, then
   * vfio_pci_zap_bars()): the BARs are zapped as the era does it (ZapStyle), and on DMABUF kernels
   * vfio_pci_dma_buf_move(vdev, true) revokes the exported DMABUFs. Otherwise a plain down_write(). */
  revokes: boolean;
  /** vfio_pci_dma_buf_cleanup() (>= 6.19, close): every DMABUF is revoked and freed, no zap. */
  cleanup: boolean;
  /** Before up_write: `if (__vfio_pci_memory_enabled(vdev)) vfio_pci_dma_buf_move(vdev, false)` (>= 6.19). */
  unrevoke: boolean;
  /** The virtual PCI_COMMAND_MEMORY bit the write leaves (vdev->vconfig), if it writes one. */
  memBit?: boolean;
  /** The PCI power state the path leaves the device in (0 = D0, 3 = D3hot), if it sets one. */
  power?: 0 | 3;
  /** pci_try_reset_function() / pci_reset_bus() inside the window (a ResetFunction marker). */
  reset?: 'function' | 'bus';
  /** vfio_pci_set_power_state() inside the window (a PowerTransition marker when the state changes). */
  setsPower: boolean;
  /** The series' permanent revoke: the DMABUFs stay revoked until the device is closed. */
  permanent: boolean;
  /** What the function returns when it succeeds (config writes return the bytes written). */
  okRet: number;
}

const base = { revokes: false, cleanup: false, unrevoke: false, setsPower: false, permanent: false, okRet: 0 };

export const PATHS: Record<PathName, PathSpec> = {
  // vfio_pci_ioctl_reset(): zap_and_down_write, vfio_pci_set_power_state(D0) (the reset may be asked for in
  // D3hot), dma_buf_move(true), pci_try_reset_function(), unrevoke if memory is enabled, up_write.
  ioctl_reset: { ...base, fn: 'vfio_pci_ioctl_reset', trigger: TriggerKind.RESET, revokes: true, unrevoke: true, power: 0, setsPower: true, reset: 'function' },
  // vfio_pci_dev_set_hot_reset(): every device of the set, down_write_trylock + zap + revoke; pci_reset_bus().
  hot_reset: { ...base, fn: 'vfio_pci_dev_set_hot_reset', trigger: TriggerKind.HOT_RESET, revokes: true, unrevoke: true, power: 0, reset: 'bus' },
  // vfio_basic_config_write() of PCI_COMMAND: !new_mem → zap_and_down_write (+ revoke), else down_write; the
  // write; unrevoke whenever memory is enabled afterwards (a VF's memory stays enabled), up_write.
  mem_disable: { ...base, fn: 'vfio_basic_config_write', trigger: TriggerKind.MEM_DISABLE, revokes: true, unrevoke: true, memBit: false, okRet: 2 },
  mem_enable: { ...base, fn: 'vfio_basic_config_write', trigger: TriggerKind.MEM_ENABLE, unrevoke: true, memBit: true, okRet: 2 },
  // vfio_pm_config_write() → vfio_lock_and_set_power_state(): >= D3hot zap_and_down_write, else down_write.
  pm_d3hot: { ...base, fn: 'vfio_lock_and_set_power_state', trigger: TriggerKind.D3HOT, revokes: true, unrevoke: true, power: 3, setsPower: true, okRet: 4 },
  pm_d0: { ...base, fn: 'vfio_lock_and_set_power_state', trigger: TriggerKind.D0, unrevoke: true, power: 0, setsPower: true, okRet: 4 },
  // vfio_exp_config_write() / vfio_af_config_write(): the FLR bit, when the capability has FLR.
  exp_flr: { ...base, fn: 'vfio_exp_config_write', trigger: TriggerKind.FLR, revokes: true, unrevoke: true, power: 0, reset: 'function', okRet: 2 },
  af_flr: { ...base, fn: 'vfio_af_config_write', trigger: TriggerKind.FLR, revokes: true, unrevoke: true, power: 0, reset: 'function', okRet: 1 },
  // vfio_pci_runtime_pm_entry(): zap_and_down_write, the device goes to D3hot; exit: down_write, back to D0.
  rpm_entry: { ...base, fn: 'vfio_pci_runtime_pm_entry', trigger: TriggerKind.RUNTIME_PM_ENTRY, revokes: true, unrevoke: true, power: 3 },
  rpm_exit: { ...base, fn: 'vfio_pci_runtime_pm_exit', trigger: TriggerKind.RUNTIME_PM_EXIT, unrevoke: true, power: 0 },
  // vfio_pci_core_close_device(): on DMABUF kernels vfio_pci_dma_buf_cleanup() under the lock; no zap (every
  // device-fd mapping is gone once the last reference to the file is).
  close: { ...base, fn: 'vfio_pci_core_close_device', trigger: TriggerKind.CLOSE, cleanup: true },
  // The series' permanent revoke of a device's DMABUFs (vfio_pci_zap_revoke_bars + the permanent flag).
  permanent_revoke: { ...base, fn: 'vfio_pci_zap_revoke_bars', trigger: TriggerKind.PERMANENT_REVOKE, revokes: true, permanent: true },
  // vfio_pci_memory_lock_and_enable() / _unlock_and_restore() around MSI-X table access: lock only, unprobed.
  lock_and_enable: { ...base, fn: 'vfio_pci_memory_lock_and_enable', trigger: undefined },
};

/** Kernel state of a device that decides whether its memory is reachable. */
export interface MemoryState { memBit: boolean; power: number; noCmd: boolean }

/** __vfio_pci_memory_enabled(): pdev->current_state < PCI_D3hot && (pdev->no_command_memory ||
 * (vconfig PCI_COMMAND & PCI_COMMAND_MEMORY)). */
export function memoryEnabled(d: MemoryState): boolean {
  return d.power < 3 && (d.noCmd || d.memBit);
}

/** Triggers announcing a path that revokes (a revoke episode by its trigger). */
export const REVOKING_TRIGGERS: ReadonlySet<TriggerKind> = new Set(
  Object.values(PATHS).filter((p) => p.revokes && p.trigger !== undefined).map((p) => p.trigger!));

/** Triggers whose every path zaps the BARs in the unconditional era (6.11 up to the series): they all take the lock
 * through vfio_pci_zap_and_down_write_memory_lock() / vfio_pci_zap_bars(). The permanent revoke exists only in the
 * series. */
export const ZAPPING_TRIGGERS: ReadonlySet<TriggerKind> = new Set(
  Object.values(PATHS).filter((p) => p.revokes && !p.permanent && p.trigger !== undefined).map((p) => p.trigger!));
