// The statistics `revokescope compare` rests on, written from their textbook definitions: the normal, binomial,
// gamma and chi-square distributions (through the regularized incomplete beta and gamma functions), quantile
// intervals from order statistics, exact tests for counts and Holm's correction. Pure: no I/O, no randomness.
// docs/compare.md says which method is used where and why.

const SQRT2 = Math.SQRT2;
const EPS = 1e-15;
const TINY = 1e-300;

/** ln Γ(x) for x > 0: Stirling's series after shifting x above 15 with Γ(x+1) = xΓ(x) (|error| < 1e-14). */
export function logGamma(x: number): number {
  if (!(x > 0)) throw new RangeError(`logGamma needs x > 0 (got ${x})`);
  let shift = 0;
  while (x < 15) { shift += Math.log(x); x += 1; }
  const inv = 1 / x, inv2 = inv * inv;
  const series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 * (1 / 1680 - inv2 / 1188))));
  return (x - 0.5) * Math.log(x) - x + 0.5 * Math.log(2 * Math.PI) + series - shift;
}

/** Regularized lower incomplete gamma P(a, x) = γ(a, x) / Γ(a). */
export function gammaP(a: number, x: number): number {
  if (!(a > 0)) throw new RangeError(`gammaP needs a > 0 (got ${a})`);
  if (!(x > 0)) return 0;
  if (x === Infinity) return 1;
  return x < a + 1 ? gammaSeries(a, x) : 1 - gammaContinuedFraction(a, x);
}

/** Regularized upper incomplete gamma Q(a, x) = 1 − P(a, x), accurate where it is tiny. */
export function gammaQ(a: number, x: number): number {
  if (!(a > 0)) throw new RangeError(`gammaQ needs a > 0 (got ${a})`);
  if (!(x > 0)) return 1;
  if (x === Infinity) return 0;
  return x < a + 1 ? 1 - gammaSeries(a, x) : gammaContinuedFraction(a, x);
}

/** P(a, x) = e^−x x^a / Γ(a+1) · Σ_k x^k / ((a+1)…(a+k)). */
function gammaSeries(a: number, x: number): number {
  let term = 1 / a, sum = term;
  for (let k = 1; k < 100_000; k++) {
    term *= x / (a + k);
    sum += term;
    if (Math.abs(term) < Math.abs(sum) * EPS) break;
  }
  return Math.min(1, sum * Math.exp(-x + a * Math.log(x) - logGamma(a)));
}

/** Q(a, x) by its continued fraction (modified Lentz), for x ≥ a + 1. */
function gammaContinuedFraction(a: number, x: number): number {
  let b = x + 1 - a, c = 1 / TINY, d = 1 / b, h = d;
  for (let i = 1; i < 100_000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b; if (Math.abs(d) < TINY) d = TINY;
    c = b + an / c; if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return Math.min(1, Math.exp(-x + a * Math.log(x) - logGamma(a)) * h);
}

/** Regularized incomplete beta I_x(a, b). */
export function betaI(x: number, a: number, b: number): number {
  if (!(a > 0 && b > 0)) throw new RangeError(`betaI needs a, b > 0 (got ${a}, ${b})`);
  if (!(x > 0)) return 0;
  if (!(x < 1)) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  // the continued fraction converges fast for x < (a+1)/(a+b+2); otherwise I_x(a,b) = 1 − I_{1−x}(b,a)
  if (x < (a + 1) / (a + b + 2)) return Math.min(1, (front * betaContinuedFraction(x, a, b)) / a);
  return Math.max(0, 1 - (front * betaContinuedFraction(1 - x, b, a)) / b);
}

/** The continued fraction of I_x(a, b) (modified Lentz): 1/(1+ d1/(1+ d2/(1+ …))) with
 * d(2m+1) = −(a+m)(a+b+m)x / ((a+2m)(a+2m+1)), d(2m) = m(b−m)x / ((a+2m−1)(a+2m)). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  let c = 1, d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m < 1_000_000; m++) {
    const m2 = 2 * m;
    let an = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + an * d; if (Math.abs(d) < TINY) d = TINY;
    c = 1 + an / c; if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    an = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + an * d; if (Math.abs(d) < TINY) d = TINY;
    c = 1 + an / c; if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < EPS) break;
  }
  return h;
}

/** Φ(z), the standard normal CDF (Φ(z) = ½ erfc(−z/√2), erfc(t) = Q(½, t²) for t ≥ 0). */
export function normalCdf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const t = z / SQRT2;
  return t < 0 ? 0.5 * gammaQ(0.5, t * t) : 1 - 0.5 * gammaQ(0.5, t * t);
}

/** Two-sided p-value of a standard normal statistic: 2Φ(−|z|). */
export function normalTwoSided(z: number): number {
  const t = Math.abs(z) / SQRT2;
  return Math.min(1, gammaQ(0.5, t * t));
}

/** Φ⁻¹(p): bisection to a bracket, then Newton steps on Φ itself. */
export function normalQuantile(p: number): number {
  if (!(p > 0 && p < 1)) {
    if (p === 0) return -Infinity;
    if (p === 1) return Infinity;
    throw new RangeError(`normalQuantile needs 0 ≤ p ≤ 1 (got ${p})`);
  }
  let lo = -40, hi = 40;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (normalCdf(mid) < p) lo = mid; else hi = mid;
  }
  let z = (lo + hi) / 2;
  for (let i = 0; i < 3; i++) {
    const density = Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
    if (density < 1e-300) break;
    z -= (normalCdf(z) - p) / density;
  }
  return z;
}

/** P(B ≤ k) for B ~ Binomial(n, p): I_{1−p}(n − k, k + 1). */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  return betaI(1 - p, n - k, k + 1);
}

/** ln P(B = k) for B ~ Binomial(n, p). */
export function binomialLogPmf(k: number, n: number, p: number): number {
  if (k < 0 || k > n) return -Infinity;
  if (p <= 0) return k === 0 ? 0 : -Infinity;
  if (p >= 1) return k === n ? 0 : -Infinity;
  return logGamma(n + 1) - logGamma(k + 1) - logGamma(n - k + 1) + k * Math.log(p) + (n - k) * Math.log1p(-p);
}

/** The x with P(a, x) = p (the gamma(a, 1) quantile): bisection on a bracket found by doubling. */
export function gammaQuantile(p: number, a: number): number {
  if (!(a > 0)) throw new RangeError(`gammaQuantile needs a > 0 (got ${a})`);
  if (!(p >= 0 && p <= 1)) throw new RangeError(`gammaQuantile needs 0 ≤ p ≤ 1 (got ${p})`);
  if (p === 0) return 0;
  if (p === 1) return Infinity;
  let lo = 0, hi = Math.max(1, a);
  while (gammaP(a, hi) < p) { lo = hi; hi *= 2; }
  for (let i = 0; i < 200 && hi - lo > 1e-14 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (gammaP(a, mid) < p) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

/** The χ² quantile with `df` degrees of freedom (df > 0, not necessarily whole): 2 × gamma(df/2) quantile. */
export function chiSquareQuantile(p: number, df: number): number {
  return 2 * gammaQuantile(p, df / 2);
}

// ---------------------------------------------------------------- quantiles from order statistics

/** The sample's resolution: the smallest gap between two distinct values (1 when there is none). */
export function resolution(sorted: ArrayLike<number>): number {
  let h = Infinity;
  for (let i = 1; i < sorted.length; i++) {
    const gap = sorted[i]! - sorted[i - 1]!;
    if (gap > 0 && gap < h) h = gap;
  }
  return Number.isFinite(h) ? h : 1;
}

/** Sorted values with every run of k equal values v spread evenly over v's resolution cell [v − h/2, v + h/2]:
 * the j-th of them (0-based) becomes v + h((j + ½)/k − ½). Latencies read from a clock of resolution h (ftrace's
 * microseconds) tie; a tied sample has a quantile that jumps by whole steps between two samples of one distribution,
 * which order-statistic standard errors cannot see. Spread, the quantile moves smoothly and the tests keep their
 * level (docs/compare.md). Values that do not tie are unchanged. */
export function spreadTies(sorted: Float64Array): Float64Array {
  const h = resolution(sorted);
  const out = new Float64Array(sorted.length);
  for (let i = 0; i < sorted.length;) {
    let j = i + 1;
    while (j < sorted.length && sorted[j] === sorted[i]) j++;
    const k = j - i;
    for (let t = 0; t < k; t++) out[i + t] = k === 1 ? sorted[i]! : sorted[i]! + h * ((t + 0.5) / k - 0.5);
    i = j;
  }
  return out;
}

/** 1-based rank of the nearest-rank q-quantile of n values: ceil(q·n) (services/report/percentiles.ts). */
export function nearestRankIndex(n: number, q: number): number {
  return Math.min(n, Math.max(1, Math.ceil(q * n - 1e-9)));
}

export interface OrderInterval {
  /** 1-based ranks of the bounds; undefined where no order statistic reaches the confidence (too few values). */
  lowerRank?: number;
  upperRank?: number;
  /** P(X(lower) ≤ ξq ≤ X(upper)) for any continuous distribution: ≥ 1 − α. */
  coverage: number;
}

/** Distribution-free confidence interval for the q-quantile ξq of n values: ranks l and u with
 * P(B ≤ l − 1) ≤ α/2 and P(B ≥ u) ≤ α/2, B ~ Binomial(n, q) the count of values at or below ξq, so
 * [X(l), X(u)] covers ξq with probability ≥ 1 − α whatever the distribution (equal-tailed, exact). */
export function quantileInterval(n: number, q: number, alpha: number): OrderInterval {
  if (n <= 0) return { coverage: 0 };
  const half = alpha / 2;
  // lower: the largest l ≥ 1 with P(B ≤ l − 1) ≤ α/2
  let lowerRank: number | undefined;
  if (binomialCdf(0, n, q) <= half) {
    let lo = 1, hi = n; // invariant: cdf(lo − 1) ≤ half
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      if (binomialCdf(mid - 1, n, q) <= half) lo = mid; else hi = mid - 1;
    }
    lowerRank = lo;
  }
  // upper: the smallest u ≤ n with P(B ≥ u) = 1 − P(B ≤ u − 1) ≤ α/2
  let upperRank: number | undefined;
  if (1 - binomialCdf(n - 1, n, q) <= half) {
    let lo = 1, hi = n; // invariant: 1 − cdf(hi − 1) ≤ half
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (1 - binomialCdf(mid - 1, n, q) <= half) hi = mid; else lo = mid + 1;
    }
    upperRank = hi;
  }
  const below = lowerRank === undefined ? 0 : binomialCdf(lowerRank - 1, n, q);
  const above = upperRank === undefined ? 0 : 1 - binomialCdf(upperRank - 1, n, q);
  return { lowerRank, upperRank, coverage: 1 - below - above };
}

/** z of the ranks the slope of a quantile is measured over (McKean–Schrader: ±1.96 σ in rank). */
export const SPREAD_Z = 1.959963984540054;

export interface LogQuantileTerm {
  /** 1-based rank of the nearest-rank quantile, and its value. */
  rank: number;
  value: number;
  /** 1-based ranks floor(qn − c) and ceil(qn + c), c = 1.96·√(nq(1−q)), the slope is read between. */
  lowerRank: number;
  upperRank: number;
  /** d ln x / d rank near the quantile: (ln X(u) − ln X(l)) / (u − l) (values below 1 ns count as 1 ns). */
  slope: number;
}

/** The pieces of the linearized (Woodruff) variance of the log of the nearest-rank q-quantile of `sorted`
 * (ascending): ln X(k) − ln ξq ≈ −slope × Σᵢ (1{xᵢ ≤ ξq} − q), where slope = 1/(n f(ln ξq)) is read from the order
 * statistics ±1.96 σ_rank around k (McKean & Schrader 1984 for the median, Price & Bonett 2002 for ratios of
 * medians). With independent values the variance is slope² · nq(1−q); with values clustered by host it is
 * slope² × the between-host variance of the per-host sums of (1{xᵢ ≤ X(k)} − q) (clusterVariance).
 * Undefined when those ranks fall outside the sample (too few values for this quantile). */
export function logQuantileTerm(sorted: ArrayLike<number>, q: number): LogQuantileTerm | undefined {
  const n = sorted.length;
  const c = SPREAD_Z * Math.sqrt(n * q * (1 - q));
  const lowerRank = Math.floor(n * q - c + 1e-9);
  const upperRank = Math.ceil(n * q + c - 1e-9);
  if (lowerRank < 1 || upperRank > n || upperRank <= lowerRank) return undefined;
  const ln = (x: number): number => Math.log(Math.max(1, x));
  const rank = nearestRankIndex(n, q);
  return { rank, value: sorted[rank - 1]!, lowerRank, upperRank,
    slope: (ln(sorted[upperRank - 1]!) - ln(sorted[lowerRank - 1]!)) / (upperRank - lowerRank) };
}

/** Variance of a sum of per-cluster contributions tᶜ, clusters drawn independently (the with-replacement estimator
 * C/(C−1) Σ (tᶜ − t̄)²), and its degrees of freedom C − 1. Undefined with fewer than two clusters. */
export function clusterVariance(totals: ArrayLike<number>): { variance: number; df: number } | undefined {
  const C = totals.length;
  if (C < 2) return undefined;
  let mean = 0;
  for (let i = 0; i < C; i++) mean += totals[i]!;
  mean /= C;
  let ss = 0;
  for (let i = 0; i < C; i++) ss += (totals[i]! - mean) ** 2;
  return { variance: (C / (C - 1)) * ss, df: C - 1 };
}

/** Welch–Satterthwaite degrees of freedom of a sum of independent variance estimates. */
export function satterthwaite(parts: readonly { variance: number; df: number }[]): number {
  let num = 0, den = 0;
  for (const p of parts) {
    num += p.variance;
    if (p.variance > 0) den += (p.variance * p.variance) / p.df;
  }
  return den > 0 ? (num * num) / den : Infinity;
}

/** Two-sided p of Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, ½) (normal for df = ∞). */
export function studentTwoSided(t: number, df: number): number {
  if (!(df > 0)) throw new RangeError(`studentTwoSided needs df > 0 (got ${df})`);
  if (!Number.isFinite(df) || df > 1e7) return normalTwoSided(t);
  if (!Number.isFinite(t)) return 0;
  return Math.min(1, betaI(df / (df + t * t), df / 2, 0.5));
}

/** The t with two-sided p = α (the 1 − α/2 quantile of Student's t): bisection on studentTwoSided. */
export function studentQuantile(alpha: number, df: number): number {
  if (!Number.isFinite(df) || df > 1e7) return normalQuantile(1 - alpha / 2);
  let lo = 0, hi = 1;
  while (studentTwoSided(hi, df) > alpha) { lo = hi; hi *= 2; }
  for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
    const mid = (lo + hi) / 2;
    if (studentTwoSided(mid, df) > alpha) lo = mid; else hi = mid;
  }
  return (lo + hi) / 2;
}

// ---------------------------------------------------------------- counts

export interface RateInterval { lower: number; upper: number }

/** Exact (Garwood) interval for a Poisson mean from an observed count k: [χ²(α/2, 2k)/2, χ²(1−α/2, 2k+2)/2]. */
export function poissonInterval(k: number, alpha: number): RateInterval {
  return {
    lower: k === 0 ? 0 : chiSquareQuantile(alpha / 2, 2 * k) / 2,
    upper: chiSquareQuantile(1 - alpha / 2, 2 * k + 2) / 2,
  };
}

export interface StratumCount { count: number; exposure: number; weight: number }

/** A directly standardized rate y = Σ wᵢ kᵢ/nᵢ (weights sum to 1) and its gamma interval (Fay & Feuer 1997):
 * lower = v/(2y) χ²(α/2; 2y²/v), upper = (v+w²)/(2(y+w)) χ²(1−α/2; 2(y+w)²/(v+w²)), with v = Σ (wᵢ/nᵢ)² kᵢ
 * and w = max wᵢ/nᵢ. With one stratum it is the exact Poisson interval divided by n. `dispersion` φ ≥ 1 scales the
 * variances (counts clustered by host vary more than Poisson: the quasi-Poisson interval). */
export function standardizedRate(strata: readonly StratumCount[], alpha: number, dispersion = 1): { rate: number; variance: number } & RateInterval {
  let y = 0, v = 0, wMax = 0;
  for (const s of strata) {
    if (!(s.exposure > 0) || s.weight === 0) continue;
    const wn = s.weight / s.exposure;
    y += wn * s.count;
    v += wn * wn * s.count;
    wMax = Math.max(wMax, wn);
  }
  if (wMax === 0) return { rate: 0, variance: 0, lower: 0, upper: 0 };
  const phi = Math.max(1, dispersion);
  const vp = phi * v;
  const lower = y === 0 || vp === 0 ? 0 : (vp / (2 * y)) * chiSquareQuantile(alpha / 2, (2 * y * y) / vp);
  const yw = y + wMax, vw = phi * (v + wMax * wMax);
  const upper = (vw / (2 * yw)) * chiSquareQuantile(1 - alpha / 2, (2 * yw * yw) / vw);
  return { rate: y, variance: v, lower, upper };
}

/** Largest total count for which the conditional count test is computed exactly (a convolution of binomials,
 * O(total²)); above it the normal approximation with a continuity correction is exact enough. */
const EXACT_COUNT_LIMIT = 4000;

export interface CountTest { p: number; expected: number; observed: number }

/** Test of equal rates per stratum between two groups (H0: in every stratum the candidate's rate is the
 * baseline's). Conditional on each stratum's total kₛ = aₛ + bₛ, the candidate's count bₛ is Binomial(kₛ, πₛ)
 * with πₛ = its share of the stratum's exposure; the statistic Σ bₛ has the convolution of those binomials as its
 * exact distribution. Two-sided p = min(1, 2 × the smaller tail). With one stratum it is the classical exact
 * comparison of two Poisson rates. */
export function conditionalCountTest(strata: readonly { baseline: number; baselineExposure: number; candidate: number; candidateExposure: number }[]): CountTest {
  const parts: { k: number; pi: number }[] = [];
  let observed = 0, expected = 0, variance = 0, total = 0;
  for (const s of strata) {
    const k = s.baseline + s.candidate;
    if (k === 0 || !(s.baselineExposure > 0) || !(s.candidateExposure > 0)) continue;
    const pi = s.candidateExposure / (s.baselineExposure + s.candidateExposure);
    parts.push({ k, pi });
    observed += s.candidate;
    expected += k * pi;
    variance += k * pi * (1 - pi);
    total += k;
  }
  if (total === 0) return { p: 1, expected: 0, observed: 0 };
  if (total <= EXACT_COUNT_LIMIT) {
    // the exact distribution of Σ bₛ
    let dist = new Float64Array([1]);
    for (const { k, pi } of parts) {
      const pmf = new Float64Array(k + 1);
      for (let j = 0; j <= k; j++) pmf[j] = Math.exp(binomialLogPmf(j, k, pi));
      const next = new Float64Array(dist.length + k);
      for (let i = 0; i < dist.length; i++) {
        const di = dist[i]!;
        if (di === 0) continue;
        for (let j = 0; j <= k; j++) next[i + j]! += di * pmf[j]!;
      }
      dist = next;
    }
    let lower = 0, upper = 0;
    for (let t = 0; t < dist.length; t++) {
      if (t <= observed) lower += dist[t]!;
      if (t >= observed) upper += dist[t]!;
    }
    return { p: Math.min(1, 2 * Math.min(lower, upper)), expected, observed };
  }
  if (variance === 0) return { p: observed === expected ? 1 : 0, expected, observed };
  const z = Math.max(0, Math.abs(observed - expected) - 0.5) / Math.sqrt(variance);
  return { p: normalTwoSided(z), expected, observed };
}

// ---------------------------------------------------------------- multiple tests

/** Holm's step-down adjustment: controls the family-wise error rate at α for any dependence between the tests.
 * Undefined p-values (tests not run) stay undefined and do not count in the family. */
export function holm(ps: readonly (number | undefined)[]): (number | undefined)[] {
  const order = ps.map((p, i) => ({ p, i })).filter((x): x is { p: number; i: number } => x.p !== undefined)
    .sort((a, b) => a.p - b.p || a.i - b.i);
  const m = order.length;
  const out: (number | undefined)[] = ps.map(() => undefined);
  let running = 0;
  order.forEach(({ p, i }, j) => {
    running = Math.max(running, Math.min(1, (m - j) * p));
    out[i] = running;
  });
  return out;
}
