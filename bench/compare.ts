// `revokescope compare` on simulated fleets, many seeds (issue 17): how often two identical fleets (same options,
// different seeds) are called a regression or an improvement — the false-positive rate — and, when one fleet's revoke
// latencies are scaled by 1.2, how often the regression is found and how often the overall intervals hold 1.2.
// Each pair is two fresh fleets (seeds 2i+1000, 2i+1001); every kernel era of the pair is one comparison.
//   npm run bench -- compare            (BENCH_COMPARE_PAIRS, BENCH_COMPARE_HOSTS, BENCH_COMPARE_SECONDS to change the size)
import { FleetSimulator } from '../collectors/simulator/index.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { COMPARE_QUANTILES, compareKernels, StrataBuilder, type KernelInput } from '../services/report/compare.js';
import { binomialCdf } from '../services/report/stats.js';

const ERAS = ['6.1.*', '6.12.*', '6.19.*', '7.1.*', '7.2.*'];

/** Clopper–Pearson interval of a proportion k/n (bisection on the binomial CDF). */
function proportion(k: number, n: number, alpha = 0.05): { rate: number; lower: number; upper: number } {
  const solve = (f: (p: number) => number): number => {
    let lo = 0, hi = 1;
    for (let i = 0; i < 60; i++) { const mid = (lo + hi) / 2; if (f(mid) > 0) lo = mid; else hi = mid; }
    return (lo + hi) / 2;
  };
  const lower = k === 0 ? 0 : solve((p) => 1 - binomialCdf(k - 1, n, p) - alpha / 2 < 0 ? 1 : -1);
  const upper = k === n ? 1 : solve((p) => binomialCdf(k, n, p) - alpha / 2);
  const r = (x: number): number => Math.round(x * 10_000) / 10_000;
  return { rate: r(k / n), lower: r(lower), upper: r(upper) };
}

/** One fleet's kernel selections by era, as simulated and with every revoke latency × 1.2. */
function fleetByEra(seed: number, hosts: number, durationNs: number): { plain: Record<string, KernelInput>; slow: Record<string, KernelInput> } {
  const plain = ERAS.map((era) => new StrataBuilder(era)), slow = ERAS.map((era) => new StrataBuilder(era));
  const { episodes, findings } = analyzeBatches(new FleetSimulator({ hosts, durationNs, seed }).batches());
  for (const e of episodes) {
    const scaled = { ...e, revokeNs: Math.round(Number(e.revokeNs) * 1.2) };
    for (let i = 0; i < ERAS.length; i++) { plain[i]!.addEpisode(e); slow[i]!.addEpisode(scaled); }
  }
  for (const f of findings) for (let i = 0; i < ERAS.length; i++) { plain[i]!.addFinding(f); slow[i]!.addFinding(f); }
  const byEra = (bs: StrataBuilder[]): Record<string, KernelInput> => Object.fromEntries(bs.map((b, i) => [ERAS[i]!, b.build()]));
  return { plain: byEra(plain), slow: byEra(slow) };
}

export async function benchCompare(): Promise<unknown> {
  const pairs = Number(process.env.BENCH_COMPARE_PAIRS ?? 40);
  const hosts = Number(process.env.BENCH_COMPARE_HOSTS ?? 300);
  const durationNs = Number(process.env.BENCH_COMPARE_SECONDS ?? 120) * 1e9;
  const count = { comparisons: 0, flagged: 0, flaggedNoMinEffect: 0, found: 0, cases: 0, covered: {} as Record<string, [number, number]> };
  const perEra = Object.fromEntries(ERAS.map((e) => [e, { flagged: 0, found: 0 }]));
  for (const q of COMPARE_QUANTILES) count.covered[`p${q * 100}`] = [0, 0];
  const t0 = Date.now();
  for (let i = 0; i < pairs; i++) {
    const a = fleetByEra(1000 + 2 * i, hosts, durationNs).plain;
    const { plain: b, slow } = fleetByEra(1001 + 2 * i, hosts, durationNs);
    for (const era of ERAS) {
      count.comparisons++;
      const same = compareKernels(a[era]!, b[era]!);
      if (same.verdict === 'regression' || same.verdict === 'improvement') { count.flagged++; perEra[era]!.flagged++; }
      const strict = compareKernels(a[era]!, b[era]!, { minEffect: 0 });
      if (strict.verdict === 'regression' || strict.verdict === 'improvement') count.flaggedNoMinEffect++;
      const slower = compareKernels(a[era]!, slow[era]!);
      count.cases++;
      if (slower.verdict === 'regression') { count.found++; perEra[era]!.found++; }
      for (const l of slower.overall.latency.filter((x) => x.metric === 'revoke')) {
        if (l.lower === undefined) continue;
        const c = count.covered[`p${l.q * 100}`]!;
        c[1]++;
        if (l.lower <= 1.2 && 1.2 <= l.upper!) c[0]++;
      }
    }
    process.stderr.write(`compare bench: pair ${i + 1}/${pairs}, ${Math.round((Date.now() - t0) / 1000)} s\n`);
  }
  return {
    fleet: { hosts, seconds: durationNs / 1e9, pairs, erasPerPair: ERAS.length },
    identicalFleets: {
      comparisons: count.comparisons,
      falsePositives: count.flagged, falsePositiveRate: proportion(count.flagged, count.comparisons),
      falsePositivesWithMinEffect0: count.flaggedNoMinEffect, falsePositiveRateWithMinEffect0: proportion(count.flaggedNoMinEffect, count.comparisons),
    },
    revokeTimes1_2: {
      comparisons: count.cases, foundAsRegression: proportion(count.found, count.cases),
      overallIntervalHolds1_2: Object.fromEntries(Object.entries(count.covered).map(([q, [k, n]]) => [q, { ...proportion(k, n), of: n }])),
    },
    perEra,
  };
}
