export interface CorrelatorStats {
  batches: number;
  /** Events accepted (not duplicates, not invalid). */
  events: number;
  duplicateEvents: number;
  /** dropped + sequence gaps. */
  lostEvents: number;
  /** Arrived after the lateness window had passed their ts: counted as loss. */
  lateEvents: number;
  /** No device, no body or no valid ts. */
  invalidEvents: number;
}

export function emptyStats(): CorrelatorStats {
  return { batches: 0, events: 0, duplicateEvents: 0, lostEvents: 0, lateEvents: 0, invalidEvents: 0 };
}
