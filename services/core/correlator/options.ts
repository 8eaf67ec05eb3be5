// Correlator limits (docs/rules.md). All times in nanoseconds.
export interface CorrelatorOptions {
  /** How far out of ts order events of one host may arrive (per-CPU buffers interleave). Default 2 s. */
  latenessNs: number;
  /** LOCK_HELD_OPEN: memory_lock held for write longer than this with no release seen. Default 5 s. */
  openLockLimitNs: number;
  /** SLOW_REVOKE: revoke latency above this. Default 50 ms. */
  slowRevokeLimitNs: number;
  /** A trigger seen while the lock is free belongs to the same tid's next episode within this. Default 1 s. */
  triggerAttachNs: number;
}

export const defaultCorrelatorOptions: CorrelatorOptions = {
  latenessNs: 2_000_000_000,
  openLockLimitNs: 5_000_000_000,
  slowRevokeLimitNs: 50_000_000,
  triggerAttachNs: 1_000_000_000,
};
