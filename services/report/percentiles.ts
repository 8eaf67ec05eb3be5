// Exact percentiles by the nearest-rank method: the p-th percentile of n sorted values is the value at
// 1-based rank ceil(p/100 · n). It is always one of the observed values (no interpolation), so a p99 of
// 120 ms means some revoke really took 120 ms.

export interface LatencyStats { count: number; p50Ns: number; p90Ns: number; p99Ns: number; maxNs: number }

/** Sorts `values` in place (numeric) and returns its nearest-rank percentiles. */
export function latencyStats(values: number[] | Float64Array): LatencyStats {
  const sorted = values instanceof Float64Array ? values.sort() : Float64Array.from(values).sort();
  const n = sorted.length;
  if (n === 0) return { count: 0, p50Ns: 0, p90Ns: 0, p99Ns: 0, maxNs: 0 };
  return { count: n, p50Ns: nearestRank(sorted, 50), p90Ns: nearestRank(sorted, 90), p99Ns: nearestRank(sorted, 99), maxNs: sorted[n - 1]! };
}

/** sorted ascending, 0 < p ≤ 100 */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * n));
  return sorted[Math.min(n, rank) - 1]!;
}
