// What a device tracker needs from its host (and the correlator): identity, kernel facts, limits, outputs.
import type { Episode, Finding } from '../model.js';
import type { CorrelatorOptions } from './options.js';

export interface HostContext {
  readonly hostname: string;
  readonly bootId: string;
  kernelRelease: string;
  /** The DMABUF_REVOKE probe is attached: without it the kernel predates DMABUF export (DESIGN §4). */
  hasDmabufRevoke: boolean;
  /** Pre-6.11: zap_vma_ptes runs before down_write(&vdev->memory_lock) (see model.zapsBeforeLock). */
  zapsBeforeLock: boolean;
  readonly opts: CorrelatorOptions;
  /** Loss (dropped events, seq gaps, too-late events) overlapping (from, to]. */
  lossTouches(from: number, to: number): boolean;
  emitEpisode(e: Episode): void;
  emitFinding(f: Finding): void;
}
