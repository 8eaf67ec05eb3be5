// Loss counts the kernel reports (ftrace's "[LOST n EVENTS]", bpftrace's "Lost n events", ring-buffer overruns), summed
// into EventBatch.dropped: a uint64 the readers accept below 2^64. A count past 2^53 (a corrupt or absurd line, e.g.
// "[LOST 10000000000000000000000 EVENTS]") says "everything was lost" as well as any larger one, so counts saturate
// there: a batch never becomes unreadable, and its events lost, because of its loss count.
export const MAX_LOST = Number.MAX_SAFE_INTEGER;

/** A reported count's digits as a number, saturated. */
export const lostCount = (digits: string): number => Math.min(Number(digits), MAX_LOST);

/** a + b, saturated. */
export const addLost = (a: number, b: number): number => Math.min(a + b, MAX_LOST);
