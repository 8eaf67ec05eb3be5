// Building Finding records (docs/rules.md §4). The evidence is a JSON object: the rule, the kernel function it
// mirrors, the facts the finding rests on and, for an inconclusive finding, which piece of state was unknown and
// why. Pure.
import { stableId } from '../ids.js';
import { FindingKind, Severity, type Finding, type FindingKind as FindingKindT, type Severity as SeverityT } from '../model.js';
import type { HostContext } from './context.js';

/** The rule a finding applied: an id, and the kernel function whose behaviour it checks. */
export interface Rule { readonly id: string; readonly mirrors: string }

export const RULES = {
  skippedUnconditional: { id: 'skipped_zap.unconditional_era', mirrors: 'vfio_pci_zap_and_down_write_memory_lock() / vfio_pci_zap_bars()' },
  skippedMapping: { id: 'skipped_zap.live_mapping', mirrors: 'vfio_pci_zap_revoke_bars(): unmap_mapping_range() only if vdev->zap_bars_on_revoke' },
  skippedPre611: { id: 'skipped_zap.pre_6_11', mirrors: 'vfio_pci_zap_and_vma_lock(): zap_vma_ptes() per VMA on vdev->vma_list' },
  skippedUnseen: { id: 'skipped_zap.device_has_vmas', mirrors: 'vfio_pci_dma_buf_move(): the vdev inode i_mmap tree had VMAs' },
  redundantNoMapping: { id: 'redundant_zap.no_device_mapping', mirrors: 'unmap_mapping_range() on a vdev inode mapping with no VMA (series: zap_bars_on_revoke)' },
  redundantRepeat: { id: 'redundant_zap.same_episode', mirrors: 'unmap_mapping_range() twice in one memory_lock write section' },
  redundantMemoryOff: { id: 'redundant_zap.memory_still_off', mirrors: 'vfio_basic_config_write(): vfio_pci_zap_and_down_write_memory_lock() on every memory-off write' },
  unpaired: { id: 'unpaired_revoke', mirrors: 'vfio_pci_dma_buf_move(vdev, false) before up_write when __vfio_pci_memory_enabled()' },
  unrevokeWithoutRevoke: { id: 'unrevoke_without_revoke', mirrors: 'vfio_pci_dma_buf_move(vdev, false): notifies only DMABUFs that were revoked' },
  lockNotHeld: { id: 'lock_not_held', mirrors: 'lockdep_assert_held_write(&vdev->memory_lock) in vfio_pci_zap_bars() / vfio_pci_dma_buf_move()' },
  lockHeldOpen: { id: 'lock_held_open', mirrors: 'down_write(&vdev->memory_lock) with no up_write' },
  slowRevoke: { id: 'slow_revoke', mirrors: 'vfio_pci_dma_buf_move() → dma_buf_move_notify() / dma_buf_invalidate_mappings() importer callbacks' },
  faultWhileRevoked: { id: 'fault_while_revoked', mirrors: 'vfio_pci_mmap_huge_fault(): PTEs only while __vfio_pci_memory_enabled() and the DMABUF is not revoked' },
} as const satisfies Record<string, Rule>;

export function makeFinding(
  ctx: HostContext, device: string, driver: string, kind: FindingKindT, severity: SeverityT,
  tsNs: number, episodeId: string, rule: Rule, facts: Record<string, unknown>, unknown: readonly string[],
): Finding {
  const evidence: Record<string, unknown> = { rule: rule.id, mirrors: rule.mirrors, ...facts };
  if (unknown.length > 0) evidence.unknown = unknown;
  return {
    findingId: stableId(FindingKind[kind], ctx.hostname, ctx.bootId, device, episodeId, tsNs),
    kind, severity, hostname: ctx.hostname, bootId: ctx.bootId, device, driver,
    kernelRelease: ctx.kernelRelease, episodeId, tsNs, inconclusive: unknown.length > 0, evidence: JSON.stringify(evidence),
  };
}

/** Mark a finding inconclusive with a reason (loss touched its episode or moment). */
export function markInconclusive(f: Finding, why: string): void {
  f.inconclusive = true;
  const ev = JSON.parse(f.evidence) as Record<string, unknown>;
  const unknown = Array.isArray(ev.unknown) ? (ev.unknown as string[]) : [];
  if (!unknown.includes(why)) unknown.push(why);
  ev.unknown = unknown;
  f.evidence = JSON.stringify(ev);
}

export const severityRank: Record<SeverityT, number> = {
  [Severity.SEVERITY_UNSPECIFIED]: 0, [Severity.INFO]: 1, [Severity.WARNING]: 2, [Severity.CRITICAL]: 3,
};
