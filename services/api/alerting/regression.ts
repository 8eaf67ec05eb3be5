// The latency_regression rule type: `revokescope compare` of a candidate kernel against a baseline over the rule's
// window, within trigger × driver strata weighted by the baseline's mix (services/report/compare.ts). A series per
// group (none, or per driver / trigger): its value is the lower end of the (1 − alpha) interval of the ratio
// candidate ÷ baseline at the rule's quantile, so `> 1` fires on a significant slowdown and `> 1.1` only when the
// candidate is confidently more than 10% slower. Groups without enough values or hosts on both sides yield no series.
import type { ClickHouseClient } from '@clickhouse/client';
import { compareKernels, defaultCompareOptions, type CompareMetric, type KernelInput } from '../../report/compare.js';
import { kernelStrata } from '../../store/queries.js';
import type { Sample } from './queries.js';
import type { RuleQuery } from './types.js';

/** Latency values per stratum, metric and kernel a rule evaluation reads at most (a uniform subsample above). */
export const REGRESSION_MAX_SAMPLES = 20_000;

export async function evaluateLatencyRegression(client: ClickHouseClient, database: string, q: RuleQuery,
  range: { fromMs: number; toMs: number }): Promise<Sample[]> {
  if (!q.baseline || !q.candidate) throw new Error('latency_regression needs baseline and candidate kernels');
  const metric = (q.metric ?? 'revoke') as CompareMetric;
  const quantile = q.quantile ?? 0.99;
  const alpha = q.alpha ?? defaultCompareOptions.alpha;
  const read = async (kernel: string): Promise<KernelInput> =>
    ({ label: kernel, ...await kernelStrata(client, database, { kernel, ...range, maxSamples: REGRESSION_MAX_SAMPLES }) });
  const baseline = await read(q.baseline);
  const candidate = await read(q.candidate);
  const group = q.groupBy.filter((g): g is 'driver' | 'trigger' => g === 'driver' || g === 'trigger');
  const keyOf = (s: { driver: string; trigger: string }): string => JSON.stringify(group.map((g) => s[g]));
  const keys = [...new Set(baseline.strata.map(keyOf))].sort();
  const out: Sample[] = [];
  for (const key of keys) {
    const only = (k: KernelInput): KernelInput => ({ ...k, strata: k.strata.filter((s) => keyOf(s) === key) });
    const c = compareKernels(only(baseline), only(candidate), { alpha });
    const row = c.overall.latency.find((l) => l.metric === metric && l.q === quantile);
    if (row?.lower === undefined) continue;
    const values = JSON.parse(key) as string[];
    const labels: Record<string, string> = { baseline: q.baseline, candidate: q.candidate, metric, quantile: String(quantile) };
    group.forEach((g, i) => { labels[g] = values[i]!; });
    out.push({ labels, value: row.lower });
  }
  return out;
}
