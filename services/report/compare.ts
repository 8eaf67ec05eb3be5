// Kernel A/B comparison (issue 17): revoke and hold latency quantiles and finding rates of a candidate kernel against
// a baseline, within trigger × driver strata, combined with the baseline's mix of strata so that the verdict does
// not move when only the workload mix differs. Episodes of one host are not independent (its devices, importers and
// load are shared), so every variance is taken between hosts. Pure: the store query (services/store/queries.ts) and
// the trace path (StrataBuilder below) fill the same input. The method and its reasons: docs/compare.md.
import { FindingKind, TriggerKind, type Episode, type Finding } from '../core/model.js';
import {
  clusterVariance, conditionalCountTest, holm, logQuantileTerm, normalTwoSided, quantileInterval, satterthwaite, spreadTies,
  standardizedRate, studentQuantile, studentTwoSided, type LogQuantileTerm,
} from './stats.js';

export const COMPARE_METRICS = ['revoke', 'hold'] as const;
export type CompareMetric = (typeof COMPARE_METRICS)[number];
export const COMPARE_QUANTILES = [0.5, 0.9, 0.99] as const;
export type CompareQuantile = (typeof COMPARE_QUANTILES)[number];
export const RATE_KINDS = ['certain', 'inconclusive'] as const;
export type RateKind = (typeof RATE_KINDS)[number];

/** One host's episodes in one trigger × driver stratum. */
export interface HostInput {
  host: string;
  /** Every episode (the exposure of the finding rates). */
  episodes: number;
  /** Findings about these episodes. */
  certain: number;
  inconclusive: number;
  /** Per metric: how many episodes measured it, and their values (all of them, or a uniform subsample). */
  latency: Record<CompareMetric, { count: number; values: ArrayLike<number> }>;
}

export interface StratumInput { trigger: string; driver: string; hosts: HostInput[] }

export interface KernelInput {
  /** What was asked for (a release or a glob), and which releases it matched. */
  label: string;
  kernels: string[];
  strata: StratumInput[];
  /** Findings of the selection whose episode is not among its episodes (outside any episode, or outside the range). */
  unattributed: { certain: number; inconclusive: number };
}

export interface CompareOptions {
  /** Significance level of every test and 1 − confidence of every interval (default 0.05). */
  alpha: number;
  /** A significant latency change counts as a regression (improvement) only when the ratio is above 1 + minEffect
   * (below 1/(1 + minEffect)). Default 0.05. */
  minEffect: number;
}

export const defaultCompareOptions: CompareOptions = { alpha: 0.05, minEffect: 0.05 };

/** Latency values per stratum, metric and side `revokescope compare` reads by default (a uniform subsample above;
 * the kernel-rollout dashboard caps the same way). */
export const COMPARE_MAX_SAMPLES = 50_000;

export type Verdict = 'regression' | 'improvement' | 'no significant difference' | 'insufficient data';

/** A quantile of one side: the nearest-rank value and its distribution-free interval. */
export interface QuantileSide {
  /** Values the estimate rests on (a subsample when the stratum had more than the cap), and their hosts. */
  n: number;
  hosts: number;
  value?: number;
  /** Exact order-statistic interval (independent values); undefined where no order statistic reaches the confidence. */
  lower?: number;
  upper?: number;
}

/** candidate ÷ baseline of a quantile, its interval and test (between-host variance, Student t with `df`); undefined
 * when either side has too few values for the quantile or fewer than two hosts. */
export interface RatioEstimate {
  ratio?: number;
  lower?: number;
  upper?: number;
  df?: number;
  p?: number;
  /** Holm-adjusted over the table the estimate is in. */
  pAdjusted?: number;
}

export interface QuantileComparison extends RatioEstimate {
  metric: CompareMetric;
  q: CompareQuantile;
  baseline: QuantileSide;
  candidate: QuantileSide;
}

export interface RateSide {
  findings: number;
  episodes: number;
  /** Findings per 1000 episodes and its interval (exact Poisson, widened by the between-host dispersion). */
  per1k: number;
  lower: number;
  upper: number;
  /** Variance between hosts ÷ Poisson variance (≥ 1). */
  dispersion: number;
}

export interface RateComparison {
  kind: RateKind;
  baseline: RateSide;
  candidate: RateSide;
  /** candidate ÷ baseline rate; undefined when the baseline's is 0. */
  ratio?: number;
  p: number;
  pAdjusted?: number;
}

export interface StratumComparison {
  trigger: string;
  driver: string;
  baselineEpisodes: number;
  candidateEpisodes: number;
  /** The stratum's share of the baseline's episodes. */
  weight: number;
  latency: QuantileComparison[];
  rates: RateComparison[];
}

/** The ratio is exp(Σ wₛ ln ratioₛ) with wₛ the baseline's share of the compared strata. */
export interface OverallLatency extends RatioEstimate {
  metric: CompareMetric;
  q: CompareQuantile;
  /** Strata compared (both sides had enough values and hosts) and the share of the baseline's measured episodes in them. */
  strata: number;
  coverage: number;
  verdict: Verdict;
}

export interface OverallRate {
  kind: RateKind;
  strata: number;
  coverage: number;
  /** The baseline's rate over the strata both sides have, and the candidate's standardized to the baseline's mix. */
  baseline: { per1k: number; lower: number; upper: number; dispersion: number };
  candidate: { per1k: number; lower: number; upper: number; dispersion: number };
  ratio?: number;
  p: number;
  pAdjusted?: number;
  verdict: Verdict;
}

export interface SideSummary {
  label: string;
  kernels: string[];
  hosts: number;
  episodes: number;
  /** Measured episodes per metric (the subsample cap does not apply to these counts). */
  measured: Record<CompareMetric, number>;
  findings: { certain: number; inconclusive: number };
  unattributed: { certain: number; inconclusive: number };
}

export interface Comparison {
  baseline: SideSummary;
  candidate: SideSummary;
  alpha: number;
  minEffect: number;
  verdict: Verdict;
  /** One line per test that made the verdict a regression or an improvement. */
  reasons: string[];
  overall: { latency: OverallLatency[]; rates: OverallRate[] };
  /** Union of both sides' strata, the baseline's largest first. */
  strata: StratumComparison[];
}

const stratumKey = (s: { trigger: string; driver: string }): string => `${s.trigger}\u0000${s.driver}`;
export const metricQuantileKey = (m: CompareMetric, q: number): string => `${m}/${q}`;

/** One side's values of one stratum and metric, sorted with ties spread (stats.spreadTies), each with its host. */
interface Sample {
  /** Measured episodes (all of them, not only the subsample). */
  count: number;
  sorted: Float64Array;
  /** Host index (per side) of each sorted value. */
  host: Int32Array;
  hosts: number;
}

function sampleOf(hosts: readonly HostInput[], m: CompareMetric, hostIndex: Map<string, number>): Sample {
  let n = 0, count = 0;
  for (const h of hosts) { n += h.latency[m].values.length; count += h.latency[m].count; }
  const pairs: { v: number; h: number }[] = new Array(n);
  let i = 0, present = 0;
  for (const h of hosts) {
    const vs = h.latency[m].values;
    if (vs.length > 0) present++;
    const idx = hostIndex.get(h.host)!;
    for (let j = 0; j < vs.length; j++) pairs[i++] = { v: Number(vs[j]), h: idx };
  }
  pairs.sort((a, b) => a.v - b.v || a.h - b.h);
  return { count, sorted: spreadTies(Float64Array.from(pairs, (p) => p.v)), host: Int32Array.from(pairs, (p) => p.h), hosts: present };
}

/** A quantile's linearization on one side: the log estimate, its slope and, per host, Σ (1{rank ≤ k} − q). */
interface Linearized { term: LogQuantileTerm; perHost: Map<number, number> }

function linearize(s: Sample, q: number): Linearized | undefined {
  if (s.hosts < 2) return undefined;
  const term = logQuantileTerm(s.sorted, q);
  if (!term) return undefined;
  const perHost = new Map<number, number>();
  for (let i = 0; i < s.sorted.length; i++) {
    const h = s.host[i]!;
    perHost.set(h, (perHost.get(h) ?? 0) + (i < term.rank ? 1 : 0) - q);
  }
  return { term, perHost };
}

const ln = (x: number): number => Math.log(Math.max(1, x));

/** Between-host variance of Σₛ cₛ · slopeₛ · (per-host sums)ₛ: the linearized variance of a weighted sum of log
 * quantiles on one side. */
function sideVariance(parts: readonly { coef: number; lin: Linearized }[]): { variance: number; df: number } | undefined {
  const totals = new Map<number, number>();
  for (const { coef, lin } of parts) {
    for (const [h, e] of lin.perHost) totals.set(h, (totals.get(h) ?? 0) + coef * lin.term.slope * e);
  }
  return clusterVariance(inHostOrder(totals));
}

/** A difference of two sides' estimates with independent variances: interval, df and two-sided p. */
function contrast(d: number, a: { variance: number; df: number }, b: { variance: number; df: number }, alpha: number) {
  const se = Math.sqrt(a.variance + b.variance);
  const df = satterthwaite([a, b]);
  const t = studentQuantile(alpha, Number.isFinite(df) ? Math.max(1, df) : df);
  const p = se === 0 ? (d === 0 ? 1 : 0) : studentTwoSided(d / se, Number.isFinite(df) ? Math.max(1, df) : df);
  return { ratio: Math.exp(d), lower: Math.exp(d - t * se), upper: Math.exp(d + t * se), ...(Number.isFinite(df) ? { df } : {}), p };
}

function quantileSide(s: Sample, q: number, alpha: number): QuantileSide {
  const n = s.sorted.length;
  if (n === 0) return { n, hosts: 0 };
  const ci = quantileInterval(n, q, alpha);
  return {
    n, hosts: s.hosts, value: s.sorted[Math.min(n, Math.max(1, Math.ceil(q * n - 1e-9))) - 1]!,
    ...(ci.lowerRank !== undefined ? { lower: s.sorted[ci.lowerRank - 1]! } : {}),
    ...(ci.upperRank !== undefined ? { upper: s.sorted[ci.upperRank - 1]! } : {}),
  };
}

/** A side's finding counts per stratum and host, as a standardized rate with its dispersion. */
interface RateParts { strata: { count: number; exposure: number; weight: number; perHost: Map<number, { k: number; n: number }> }[] }

function rateOf(parts: RateParts, alpha: number): { rate: number; variance: number; lower: number; upper: number; dispersion: number } {
  // between-host variance of the linearized rate Σₛ (wₛ/Nₛ)(kᶜₛ − r̂ₛ nᶜₛ), against the Poisson variance Σ (wₛ/Nₛ)² Kₛ
  const totals = new Map<number, number>();
  let poisson = 0;
  for (const s of parts.strata) {
    if (!(s.exposure > 0) || s.weight === 0) continue;
    const wn = s.weight / s.exposure, r = s.count / s.exposure;
    poisson += wn * wn * s.count;
    for (const [h, c] of s.perHost) totals.set(h, (totals.get(h) ?? 0) + wn * (c.k - r * c.n));
  }
  const between = clusterVariance(inHostOrder(totals));
  const dispersion = poisson > 0 && between ? Math.max(1, between.variance / poisson) : 1;
  return { ...standardizedRate(parts.strata, alpha, dispersion), dispersion };
}

/** Equal rates in every stratum: the exact conditional test when both sides look Poisson, else a z-test on the
 * difference of the standardized rates with the variances widened by their dispersions. */
function rateTest(a: RateParts, b: RateParts, ra: ReturnType<typeof rateOf>, rb: ReturnType<typeof rateOf>): number {
  if (ra.dispersion === 1 && rb.dispersion === 1) {
    return conditionalCountTest(a.strata.map((s, i) => ({ baseline: s.count, baselineExposure: s.exposure, candidate: b.strata[i]!.count,
      candidateExposure: b.strata[i]!.exposure }))).p;
  }
  const variance = ra.dispersion * ra.variance + rb.dispersion * rb.variance;
  if (variance === 0) return rb.rate === ra.rate ? 1 : 0;
  return normalTwoSided((rb.rate - ra.rate) / Math.sqrt(variance));
}

function rateParts(strata: readonly { s: StratumInput; weight: number }[], kind: RateKind, hostIndex: Map<string, number>): RateParts {
  return {
    strata: strata.map(({ s, weight }) => {
      const perHost = new Map<number, { k: number; n: number }>();
      let count = 0, exposure = 0;
      for (const h of s.hosts) {
        count += h[kind]; exposure += h.episodes;
        perHost.set(hostIndex.get(h.host)!, { k: h[kind], n: h.episodes });
      }
      return { count, exposure, weight, perHost };
    }),
  };
}

function latencyVerdict(ratio: number | undefined, pAdjusted: number | undefined, o: CompareOptions): Verdict {
  if (ratio === undefined || pAdjusted === undefined) return 'insufficient data';
  if (pAdjusted >= o.alpha) return 'no significant difference';
  if (ratio > 1 + o.minEffect) return 'regression';
  if (ratio < 1 / (1 + o.minEffect)) return 'improvement';
  return 'no significant difference';
}

const pct = (q: number): string => `p${Math.round(q * 100)}`;
const episodesOf = (s: StratumInput | undefined): number => (s ? s.hosts.reduce((n, h) => n + h.episodes, 0) : 0);

/** Hosts numbered in name order, and sums taken in that order: the result does not depend on the order of the input. */
function hostIndexOf(k: KernelInput): Map<string, number> {
  const names = [...new Set(k.strata.flatMap((s) => s.hosts.map((h) => h.host)))].sort();
  return new Map(names.map((n, i) => [n, i]));
}

function inHostOrder(totals: Map<number, number>): number[] {
  return [...totals].sort(([x], [y]) => x - y).map(([, v]) => v);
}

/** The comparison of a candidate kernel selection against a baseline one. */
export function compareKernels(baseline: KernelInput, candidate: KernelInput, opts: Partial<CompareOptions> = {}): Comparison {
  const o: CompareOptions = { ...defaultCompareOptions, ...opts };
  if (!(o.alpha > 0 && o.alpha < 1)) throw new RangeError(`alpha must be in (0, 1) (got ${o.alpha})`);
  if (!(o.minEffect >= 0) || !Number.isFinite(o.minEffect)) throw new RangeError(`minEffect must be ≥ 0 (got ${o.minEffect})`);
  const hostsA = hostIndexOf(baseline), hostsB = hostIndexOf(candidate);
  const A = new Map(baseline.strata.map((s) => [stratumKey(s), s]));
  const B = new Map(candidate.strata.map((s) => [stratumKey(s), s]));
  const keys = [...new Set([...A.keys(), ...B.keys()])].sort();
  const baseEpisodes = baseline.strata.reduce((n, s) => n + episodesOf(s), 0);

  interface Work { a?: StratumInput; b?: StratumInput; lin: Map<string, [Linearized, Linearized]>; out: StratumComparison }
  const work: Work[] = keys.map((key) => {
    const a = A.get(key), b = B.get(key);
    const any = (a ?? b)!;
    const lin = new Map<string, [Linearized, Linearized]>();
    const latency: QuantileComparison[] = [];
    for (const m of COMPARE_METRICS) {
      const sa = sampleOf(a?.hosts ?? [], m, hostsA), sb = sampleOf(b?.hosts ?? [], m, hostsB);
      for (const q of COMPARE_QUANTILES) {
        const c: QuantileComparison = { metric: m, q, baseline: quantileSide(sa, q, o.alpha), candidate: quantileSide(sb, q, o.alpha) };
        const la = linearize(sa, q), lb = linearize(sb, q);
        const va = la && sideVariance([{ coef: 1, lin: la }]), vb = lb && sideVariance([{ coef: 1, lin: lb }]);
        if (la && lb && va && vb) {
          lin.set(metricQuantileKey(m, q), [la, lb]);
          Object.assign(c, contrast(ln(lb.term.value) - ln(la.term.value), va, vb, o.alpha));
        }
        latency.push(c);
      }
    }
    const rates: RateComparison[] = RATE_KINDS.map((kind) => {
      const pa = rateParts(a ? [{ s: a, weight: 1 }] : [], kind, hostsA), pb = rateParts(b ? [{ s: b, weight: 1 }] : [], kind, hostsB);
      const ra = rateOf(pa, o.alpha), rb = rateOf(pb, o.alpha);
      const side = (r: typeof ra, s: StratumInput | undefined): RateSide => ({
        findings: s ? s.hosts.reduce((n, h) => n + h[kind], 0) : 0, episodes: episodesOf(s),
        per1k: 1000 * r.rate, lower: 1000 * r.lower, upper: 1000 * r.upper, dispersion: r.dispersion,
      });
      const both = a && b ? rateTest(pa, pb, ra, rb) : 1;
      return { kind, baseline: side(ra, a), candidate: side(rb, b), ...(ra.rate > 0 ? { ratio: rb.rate / ra.rate } : {}), p: both };
    });
    return {
      a, b, lin,
      out: { trigger: any.trigger, driver: any.driver, baselineEpisodes: episodesOf(a), candidateEpisodes: episodesOf(b),
        weight: baseEpisodes > 0 ? episodesOf(a) / baseEpisodes : 0, latency, rates },
    };
  });

  // Holm over the per-stratum table: every latency test, and every rate test with a finding on either side
  const tests: { p?: number; set: (p: number) => void }[] = [];
  for (const w of work) {
    for (const c of w.out.latency) tests.push({ p: c.p, set: (p) => { c.pAdjusted = p; } });
    for (const r of w.out.rates) {
      if (w.a && w.b && r.baseline.findings + r.candidate.findings > 0) tests.push({ p: r.p, set: (p) => { r.pAdjusted = p; } });
    }
  }
  holm(tests.map((t) => t.p)).forEach((p, i) => { if (p !== undefined) tests[i]!.set(p); });

  // overall latency: the baseline-weighted mean of the per-stratum log ratios over the strata both sides can estimate;
  // its variance is taken between hosts over all those strata at once (a host shares its slowness across strata)
  const latency: OverallLatency[] = [];
  for (const m of COMPARE_METRICS) {
    const measuredA = work.reduce((n, w) => n + (w.a?.hosts.reduce((k, h) => k + h.latency[m].count, 0) ?? 0), 0);
    for (const q of COMPARE_QUANTILES) {
      const key = metricQuantileKey(m, q);
      const used = work.filter((w) => w.lin.has(key)).map((w) => ({ w, count: w.a!.hosts.reduce((k, h) => k + h.latency[m].count, 0) }));
      const total = used.reduce((n, u) => n + u.count, 0);
      const row: OverallLatency = { metric: m, q, strata: used.length, coverage: measuredA > 0 ? total / measuredA : 0, verdict: 'insufficient data' };
      if (used.length > 0 && total > 0) {
        let d = 0;
        const partsA: { coef: number; lin: Linearized }[] = [], partsB: { coef: number; lin: Linearized }[] = [];
        for (const { w, count } of used) {
          const weight = count / total;
          const [la, lb] = w.lin.get(key)!;
          d += weight * (ln(lb.term.value) - ln(la.term.value));
          partsA.push({ coef: weight, lin: la });
          partsB.push({ coef: weight, lin: lb });
        }
        const va = sideVariance(partsA), vb = sideVariance(partsB);
        if (va && vb) Object.assign(row, contrast(d, va, vb, o.alpha));
      }
      latency.push(row);
    }
  }

  // overall finding rates: the candidate's rate standardized to the baseline's mix of the strata both sides have
  const common = work.filter((w) => episodesOf(w.a) > 0 && episodesOf(w.b) > 0);
  const commonA = common.reduce((n, w) => n + episodesOf(w.a), 0);
  const rates: OverallRate[] = RATE_KINDS.map((kind) => {
    const pa = rateParts(common.map((w) => ({ s: w.a!, weight: episodesOf(w.a) / commonA })), kind, hostsA);
    const pb = rateParts(common.map((w) => ({ s: w.b!, weight: episodesOf(w.a) / commonA })), kind, hostsB);
    const ra = rateOf(pa, o.alpha), rb = rateOf(pb, o.alpha);
    const k = (r: typeof ra) => ({ per1k: 1000 * r.rate, lower: 1000 * r.lower, upper: 1000 * r.upper, dispersion: r.dispersion });
    return {
      kind, strata: common.length, coverage: baseEpisodes > 0 ? commonA / baseEpisodes : 0, baseline: k(ra), candidate: k(rb),
      ...(ra.rate > 0 ? { ratio: rb.rate / ra.rate } : {}), p: common.length > 0 ? rateTest(pa, pb, ra, rb) : 1,
      verdict: 'insufficient data' as Verdict,
    };
  });

  // Holm over the overall table; the verdict rests on it (latency and certain findings; inconclusive ones are shown)
  const adjusted = holm([...latency.map((l) => l.p), ...rates.map((r) => (r.strata > 0 ? r.p : undefined))]);
  latency.forEach((l, i) => {
    if (adjusted[i] !== undefined) l.pAdjusted = adjusted[i];
    l.verdict = latencyVerdict(l.ratio, l.pAdjusted, o);
  });
  rates.forEach((r, i) => {
    const p = adjusted[latency.length + i];
    if (p !== undefined) r.pAdjusted = p;
    r.verdict = r.strata === 0 ? 'insufficient data' : p === undefined || p >= o.alpha ? 'no significant difference'
      : r.candidate.per1k > r.baseline.per1k ? 'regression' : 'improvement';
  });

  const reasons: string[] = [];
  const fmtP = (p: number | undefined): string => (p === undefined ? '' : p < 1e-4 ? 'p < 0.0001' : `p = ${p.toPrecision(2)}`);
  for (const l of latency) {
    if (l.verdict === 'regression' || l.verdict === 'improvement') {
      reasons.push(`${l.verdict}: ${l.metric} ${pct(l.q)} ×${l.ratio!.toFixed(3)} [${l.lower!.toFixed(3)}, ${l.upper!.toFixed(3)}], ${fmtP(l.pAdjusted)} (Holm)`);
    }
  }
  const certain = rates.find((r) => r.kind === 'certain')!;
  if (certain.verdict === 'regression' || certain.verdict === 'improvement') {
    reasons.push(`${certain.verdict}: certain findings ${certain.baseline.per1k.toPrecision(3)} → ${certain.candidate.per1k.toPrecision(3)} per 1000 episodes, ${fmtP(certain.pAdjusted)} (Holm)`);
  }
  // not enough data when no latency quantile could be compared at all (finding rates alone do not clear a kernel)
  const verdicts = [...latency.map((l) => l.verdict), certain.verdict];
  const verdict: Verdict = verdicts.includes('regression') ? 'regression'
    : verdicts.includes('improvement') ? 'improvement'
    : latency.every((l) => l.verdict === 'insufficient data') ? 'insufficient data' : 'no significant difference';
  if (verdict === 'insufficient data') reasons.push('no latency quantile had enough values and hosts (two or more) on both sides');

  const strata = work.map((w) => w.out).sort((x, y) => y.baselineEpisodes - x.baselineEpisodes || y.candidateEpisodes - x.candidateEpisodes
    || x.trigger.localeCompare(y.trigger) || x.driver.localeCompare(y.driver));
  return {
    baseline: sideSummary(baseline, hostsA.size), candidate: sideSummary(candidate, hostsB.size), alpha: o.alpha, minEffect: o.minEffect,
    verdict, reasons, overall: { latency, rates }, strata,
  };
}

function sideSummary(k: KernelInput, hosts: number): SideSummary {
  const sum = (f: (h: HostInput) => number): number => k.strata.reduce((n, s) => n + s.hosts.reduce((x, h) => x + f(h), 0), 0);
  return {
    label: k.label, kernels: [...k.kernels].sort(), hosts, episodes: sum((h) => h.episodes),
    measured: Object.fromEntries(COMPARE_METRICS.map((m) => [m, sum((h) => h.latency[m].count)])) as Record<CompareMetric, number>,
    findings: { certain: sum((h) => h.certain), inconclusive: sum((h) => h.inconclusive) },
    unattributed: { ...k.unattributed },
  };
}

// ---------------------------------------------------------------- from correlator output

/** The latency an episode contributes to a metric, where it was measured (as the store's rollups count it): a
 * complete episode whose LockAcquire was seen; revoke latency only for revoke episodes that revoked something
 * (docs/design.md §4), hold time only once released. */
export function measuredLatency(e: Pick<Episode, 'complete' | 'acquireTsNs' | 'releaseTsNs' | 'revoke' | 'revokeNs' | 'holdNs'>,
  metric: CompareMetric): number | undefined {
  if (!e.complete || !(Number(e.acquireTsNs) > 0)) return undefined;
  if (metric === 'revoke') return e.revoke && Number(e.revokeNs) > 0 ? Number(e.revokeNs) : undefined;
  return Number(e.releaseTsNs) > 0 ? Number(e.holdNs) : undefined;
}

/** A kernel release pattern: `*` any run of characters, `?` one character, anything else literally. Matched without
 * a regular expression (a user types the glob and a host names its release): the greedy two-pointer walk that
 * backs up to the last `*` only, O(pattern × release) at worst. */
export function kernelMatcher(pattern: string): (release: string) => boolean {
  const p = [...pattern];
  return (release) => {
    const r = [...release];
    let i = 0, j = 0, star = -1, mark = 0;
    while (j < r.length) {
      if (i < p.length && (p[i] === '?' || (p[i] !== '*' && p[i] === r[j]))) { i++; j++; }
      else if (i < p.length && p[i] === '*') { star = i++; mark = j; }
      else if (star >= 0) { i = star + 1; j = ++mark; }
      else return false;
    }
    while (i < p.length && p[i] === '*') i++;
    return i === p.length;
  };
}

/** FNV-1a of an episode id: the order in which a capped stratum keeps its episodes (a uniform, repeatable subsample). */
function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The `cap` (value, host) pairs with the smallest keys (a max-heap on the key). */
class BottomK {
  readonly keys: number[] = [];
  readonly values: number[] = [];
  readonly hosts: number[] = [];
  constructor(private readonly cap: number) {}
  add(key: number, value: number, host: number): void {
    const k = this.keys;
    if (k.length < this.cap) {
      k.push(key); this.values.push(value); this.hosts.push(host);
      for (let i = k.length - 1; i > 0;) {
        const parent = (i - 1) >> 1;
        if (k[parent]! >= k[i]!) break;
        this.swap(i, parent);
        i = parent;
      }
      return;
    }
    if (this.cap === 0 || key >= k[0]!) return;
    k[0] = key; this.values[0] = value; this.hosts[0] = host;
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let top = i;
      if (l < k.length && k[l]! > k[top]!) top = l;
      if (r < k.length && k[r]! > k[top]!) top = r;
      if (top === i) break;
      this.swap(i, top);
      i = top;
    }
  }
  private swap(i: number, j: number): void {
    for (const a of [this.keys, this.values, this.hosts]) [a[i], a[j]] = [a[j]!, a[i]!];
  }
}

interface BuilderHost { episodes: number; measured: Record<CompareMetric, number> }
interface BuilderStratum {
  trigger: string; driver: string;
  hosts: Map<number, BuilderHost>;
  samples: Record<CompareMetric, BottomK>;
}

/** Collects one kernel selection's strata from correlator episodes and findings (the trace path of
 * `revokescope compare`). Keeps at most `maxSamples` values per stratum and metric (the episodes with the smallest
 * id hashes: a uniform subsample) and, to attribute findings, each selected episode's stratum and host by id. */
export class StrataBuilder {
  private readonly matches: (release: string) => boolean;
  private readonly strata = new Map<string, BuilderStratum>();
  private readonly hostNames: string[] = [];
  private readonly hostIds = new Map<string, number>();
  private readonly episodeOf = new Map<string, { s: BuilderStratum; host: number }>();
  private readonly findings: { episodeId: string; inconclusive: boolean }[] = [];
  private readonly kernels = new Set<string>();

  constructor(readonly label: string, private readonly maxSamples = COMPARE_MAX_SAMPLES) {
    this.matches = kernelMatcher(label);
  }

  addEpisode(e: Episode): void {
    if (!this.matches(e.kernelRelease)) return;
    this.kernels.add(e.kernelRelease);
    const trigger = TriggerKind[e.trigger] ?? String(e.trigger);
    const key = stratumKey({ trigger, driver: e.driver });
    let s = this.strata.get(key);
    if (!s) {
      s = { trigger, driver: e.driver, hosts: new Map(), samples: { revoke: new BottomK(this.maxSamples), hold: new BottomK(this.maxSamples) } };
      this.strata.set(key, s);
    }
    let host = this.hostIds.get(e.hostname);
    if (host === undefined) { host = this.hostNames.length; this.hostNames.push(e.hostname); this.hostIds.set(e.hostname, host); }
    let h = s.hosts.get(host);
    if (!h) s.hosts.set(host, h = { episodes: 0, measured: { revoke: 0, hold: 0 } });
    h.episodes++;
    if (e.episodeId) this.episodeOf.set(e.episodeId, { s, host });
    const key2 = idHash(e.episodeId);
    for (const m of COMPARE_METRICS) {
      const v = measuredLatency(e, m);
      if (v === undefined) continue;
      h.measured[m]++;
      s.samples[m].add(key2, v, host);
    }
  }

  addFinding(f: Finding): void {
    if (!this.matches(f.kernelRelease) || f.kind === FindingKind.FINDING_KIND_UNSPECIFIED) return;
    this.findings.push({ episodeId: f.episodeId, inconclusive: f.inconclusive });
  }

  build(): KernelInput {
    const unattributed = { certain: 0, inconclusive: 0 };
    const counts = new Map<BuilderStratum, Map<number, Record<RateKind, number>>>();
    for (const f of this.findings) {
      const at = f.episodeId ? this.episodeOf.get(f.episodeId) : undefined;
      const kind: RateKind = f.inconclusive ? 'inconclusive' : 'certain';
      if (!at) { unattributed[kind]++; continue; }
      let perHost = counts.get(at.s);
      if (!perHost) counts.set(at.s, perHost = new Map());
      let c = perHost.get(at.host);
      if (!c) perHost.set(at.host, c = { certain: 0, inconclusive: 0 });
      c[kind]++;
    }
    return {
      label: this.label, kernels: [...this.kernels], unattributed,
      strata: [...this.strata.values()].map((s) => {
        const byHost = Object.fromEntries(COMPARE_METRICS.map((m) => {
          const out = new Map<number, number[]>();
          const { values, hosts } = s.samples[m];
          for (let i = 0; i < values.length; i++) {
            const list = out.get(hosts[i]!);
            if (list) list.push(values[i]!); else out.set(hosts[i]!, [values[i]!]);
          }
          return [m, out];
        })) as Record<CompareMetric, Map<number, number[]>>;
        return {
          trigger: s.trigger, driver: s.driver,
          hosts: [...s.hosts].map(([host, h]): HostInput => {
            const c = counts.get(s)?.get(host);
            return { host: this.hostNames[host]!, episodes: h.episodes, certain: c?.certain ?? 0, inconclusive: c?.inconclusive ?? 0,
              latency: { revoke: { count: h.measured.revoke, values: byHost.revoke.get(host) ?? [] },
                hold: { count: h.measured.hold, values: byHost.hold.get(host) ?? [] } } };
          }),
        };
      }),
    };
  }
}
