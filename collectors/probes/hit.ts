// One probe firing, as both backends report it: the common input of the decoder.
export interface ProbeHit {
  /** ProbeSpec.id of the probe that fired. */
  probe: string;
  /** CLOCK_MONOTONIC ns (ftrace trace_clock=mono, bpftrace nsecs). */
  tsNs: number;
  cpu: number;
  tid: number;
  /** Thread group id (process id) when the backend knows it, else the tid. */
  pid: number;
  comm: string;
  /** Fetched arguments: numbers as bigint, strings as string ('(fault)' when the fetch faulted). */
  args: Record<string, bigint | string>;
  /** The task's cgroup v2 id when the backend read it in the kernel (bpftrace `cgroup`). */
  cgroupId?: number;
  /** The kernel stack of the hit, innermost frame first, as the backend symbolized it (collect --stacks). */
  stack?: string[];
}
