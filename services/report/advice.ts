// What a finding means in plain language and what to check next, per kind (docs/explain.md). Used by `explain`
// and by the `analyze` table's list of findings to act on. Pure data.
import { FindingKind, type FindingKind as FindingKindT } from '../core/model.js';

export interface FindingAdvice {
  /** One line: what went wrong, for a person who does not know the rules. */
  reason: string;
  /** What to check next, most likely cause first. */
  next: string[];
}

export const FINDING_ADVICE: Record<Exclude<FindingKindT, typeof FindingKind.FINDING_KIND_UNSPECIFIED>, FindingAdvice> = {
  [FindingKind.SKIPPED_ZAP]: {
    reason: 'a revoke left a BAR mapping of the device file reachable: userspace could touch MMIO during the reset or power-down',
    next: [
      'which kernel path revoked without unmap_mapping_range(): the trigger in the timeline (reset ioctl, config write, PM) and the kernel release',
      'on a kernel with the DMABUF mmap series: is zap_bars_on_revoke set for this driver (a driver with its own .mmap must set it)?',
      'the process that owns the mapping (the uncovered mapping ids in the evidence) and whether it faulted it (populated)',
      'a kernel without the series: every revoking path must call vfio_pci_zap_bars(); compare with the distribution patches',
    ],
  },
  [FindingKind.REDUNDANT_ZAP]: {
    reason: 'a BAR zap walked a mapping tree with nothing to tear down, while holding the write lock that stalls faults',
    next: [
      'the wasted time (evidence wastedNs) against the hold time of the episode: does it matter at this rate?',
      'series kernels: the driver should opt out of zap_bars_on_revoke when every BAR mmap is DMABUF-backed',
      'a repeated memory-off COMMAND write (the VMM writes PCI_COMMAND twice): the guest or VMM config-space emulation',
    ],
  },
  [FindingKind.UNPAIRED_REVOKE]: {
    reason: 'the device was left with its DMABUFs revoked although memory is enabled: importers (RDMA, GPU, iommufd) stay cut off',
    next: [
      'the path that released the lock without vfio_pci_dma_buf_move(vdev, false): the trigger and its return value in the timeline',
      'whether memory really is enabled (state at the finding, and the fact that established it)',
      'importers of the device\'s DMABUFs: do they see a revoke and never an unrevoke?',
    ],
  },
  [FindingKind.UNREVOKE_WITHOUT_REVOKE]: {
    reason: 'DMABUFs were unrevoked that were not revoked: importers got a move notification for nothing, or a revoke was missed',
    next: [
      'the last revoke of the device before this one (is it in the timeline, or was it lost?)',
      'the path that unrevoked (task, trigger) and whether it pairs with a revoke of another path',
    ],
  },
  [FindingKind.LOCK_NOT_HELD]: {
    reason: 'a zap or DMABUF revoke ran without this task holding memory_lock for write: it races with faults (lockdep would warn)',
    next: [
      'the task that zapped or revoked (tid, comm) and the lock holder at that moment (evidence holderTid)',
      'its kernel stack: which caller reached vfio_pci_zap_bars() / vfio_pci_dma_buf_move() without vfio_pci_zap_and_down_write_memory_lock()',
      'run the same workload on a lockdep (CONFIG_PROVE_LOCKING) kernel to confirm',
    ],
  },
  [FindingKind.LOCK_HELD_OPEN]: {
    reason: 'memory_lock was held for write far longer than any revoke needs: faults and config accesses of the device are stalled',
    next: [
      'the task holding it (tid, comm in the evidence) and what it waits for: a slow importer move_notify, a hung reset, D3cold',
      'cat /proc/TID/stack of that task on the host while it is held',
      'whether a release arrives later (the episode is open at the end of the input, or the release was lost)',
    ],
  },
  [FindingKind.SLOW_REVOKE]: {
    reason: 'revoking access took longer than the limit: the device and its importers were stalled meanwhile',
    next: [
      'the slowest importer (evidence slowestImporter) and its move_notify / invalidate callback',
      'zap time against DMABUF revoke time (evidence zapNs, dmabufRevokeNs, moveNs): which step was slow',
      'the number of importers and mappings: does it grow with the workload?',
    ],
  },
  [FindingKind.FAULT_WHILE_REVOKED]: {
    reason: 'a fault installed BAR PTEs while memory was disabled or the DMABUF revoked: MMIO was reachable when it must not be',
    next: [
      'the faulting task (tid, comm) and the mapping (backing, BAR) in the evidence',
      'the event that disabled memory or revoked the DMABUF (state at the finding, established by), and whether the fault handler checked it',
      'the kernel release: vfio_pci_mmap_huge_fault() must check __vfio_pci_memory_enabled() under memory_lock held for read',
    ],
  },
};

/** The advice for a kind (an unknown kind gets a generic line). */
export function adviceFor(kind: FindingKindT): FindingAdvice {
  return (FINDING_ADVICE as Partial<Record<FindingKindT, FindingAdvice>>)[kind]
    ?? { reason: 'a finding of a kind this version does not describe', next: ['its evidence: rule and mirrors name the kernel function'] };
}
