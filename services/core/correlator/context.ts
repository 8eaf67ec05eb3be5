// What a device tracker needs from its host (and the correlator): identity, kernel facts, limits, outputs.
import type { Episode, Finding } from '../model.js';
import type { OpenEpisode } from './episode.js';
import type { CorrelatorOptions } from './options.js';

/** What a task's cgroup path names (core/workload.ts), and the pod name the collector read; '' = none. */
export interface WorkloadIdentity { vm: string; podUid: string; podName: string; containerId: string }

export interface HostContext {
  readonly hostname: string;
  readonly bootId: string;
  kernelRelease: string;
  /** The DMABUF_REVOKE probe is attached: without it the kernel predates DMABUF export (docs/rules.md). */
  hasDmabufRevoke: boolean;
  /** The collector reports trigger returns (Capability.TRIGGER_END): a trigger without one has not returned. */
  hasTriggerEnd: boolean;
  /** Pre-6.11: zap_vma_ptes runs before down_write(&vdev->memory_lock) (see model.zapsBeforeLock). */
  zapsBeforeLock: boolean;
  /** 6.11 or later (unmap_mapping_range of the vdev inode under the write lock on every revoking path). */
  zapsUnderLock: boolean;
  readonly opts: CorrelatorOptions;
  /** Loss (dropped events, seq gaps, too-late events) overlapping (from, to]. */
  lossTouches(from: number, to: number): boolean;
  /** The HOT_RESET episode task `tid` holds on another device of this host, if any (vfio_pci_dev_set_hot_reset()
   * takes every device's memory_lock in one task). */
  hotResetHeldBy(tid: number, except: string): OpenEpisode | undefined;
  /** The workload of a cgroup of this boot (EventBatch.cgroups); undefined when its path was not sent (or id 0). */
  workload(cgroupId: number): WorkloadIdentity | undefined;
  emitEpisode(e: Episode): void;
  emitFinding(f: Finding): void;
}
