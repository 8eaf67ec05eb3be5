// The statistics under `revokescope compare` (services/report/stats.ts) against values computed independently here
// (direct sums, closed forms) or published in tables, and the properties each method promises.
import { describe, expect, it } from 'vitest';
import {
  betaI, binomialCdf, binomialLogPmf, chiSquareQuantile, clusterVariance, conditionalCountTest, gammaP, gammaQ, holm, logGamma,
  logQuantileTerm, nearestRankIndex, normalCdf, normalQuantile, normalTwoSided, poissonInterval, quantileInterval, resolution,
  satterthwaite, spreadTies, standardizedRate, studentQuantile, studentTwoSided,
} from '../services/report/stats.js';
import { Prng } from './support/prng.js';

/** P(B ≤ k), B ~ Binomial(n, p), by summing the probabilities (small n only). */
function directBinomialCdf(k: number, n: number, p: number): number {
  let sum = 0, c = 1;
  for (let i = 0; i <= n; i++) {
    if (i <= k) sum += c * p ** i * (1 - p) ** (n - i);
    c = (c * (n - i)) / (i + 1);
  }
  return sum;
}

describe('special functions', () => {
  it('log Γ matches factorials and Γ(½) = √π', () => {
    let f = 1;
    for (let n = 1; n <= 30; n++) {
      expect(logGamma(n)).toBeCloseTo(Math.log(f), 10);
      f *= n;
    }
    expect(logGamma(0.5)).toBeCloseTo(0.5 * Math.log(Math.PI), 12);
    expect(logGamma(1e6)).toBeCloseTo(1e6 * Math.log(1e6) - 1e6 - 0.5 * Math.log(1e6) + 0.5 * Math.log(2 * Math.PI) + 1 / 12e6, 6);
    expect(() => logGamma(0)).toThrow(RangeError);
  });

  it('regularized incomplete gamma: P(1, x) = 1 − e^−x, P + Q = 1, P(½, x) = erf(√x)', () => {
    for (const x of [0.01, 0.5, 1, 3, 10, 40]) {
      expect(gammaP(1, x)).toBeCloseTo(1 - Math.exp(-x), 12);
      for (const a of [0.3, 2, 7.5, 50]) expect(gammaP(a, x) + gammaQ(a, x)).toBeCloseTo(1, 12);
    }
    // erf(1) = 0.8427007929497149
    expect(gammaP(0.5, 1)).toBeCloseTo(0.8427007929497149, 12);
    expect(gammaQ(3, 200)).toBeGreaterThan(0); // tiny, not 0 − ε
    expect(gammaQ(3, 200)).toBeLessThan(1e-80);
  });

  it('regularized incomplete beta gives binomial tails equal to direct sums', () => {
    for (const n of [1, 5, 20, 60]) {
      for (const p of [0.01, 0.3, 0.5, 0.9, 0.99]) {
        for (let k = -1; k <= n; k++) expect(binomialCdf(k, n, p)).toBeCloseTo(k < 0 ? 0 : directBinomialCdf(k, n, p), 12);
      }
    }
    expect(betaI(0.5, 3, 3)).toBeCloseTo(0.5, 14); // symmetric
    expect(binomialLogPmf(3, 10, 0.5)).toBeCloseTo(Math.log(120 / 1024), 12);
  });

  it('normal CDF and quantile: table values, tails, inverse', () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 15);
    expect(normalCdf(1.959963984540054)).toBeCloseTo(0.975, 12);
    expect(normalCdf(-3)).toBeCloseTo(0.0013498980316301, 14);
    expect(normalCdf(-10) / 7.61985302416047e-24).toBeCloseTo(1, 8);
    expect(normalTwoSided(1.959963984540054)).toBeCloseTo(0.05, 12);
    for (const p of [1e-12, 1e-4, 0.025, 0.3, 0.5, 0.8, 0.975, 1 - 1e-9]) expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, 13);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959963984540054, 10);
  });

  it('χ² quantiles match the table (df 1, 2, 10, 100) and work for fractional df', () => {
    expect(chiSquareQuantile(0.975, 1)).toBeCloseTo(5.023886, 5);
    expect(chiSquareQuantile(0.95, 2)).toBeCloseTo(5.991465, 5);
    expect(chiSquareQuantile(0.025, 10)).toBeCloseTo(3.246973, 5);
    expect(chiSquareQuantile(0.5, 100)).toBeCloseTo(99.33412, 4);
    const x = chiSquareQuantile(0.3, 2.7);
    expect(gammaP(1.35, x / 2)).toBeCloseTo(0.3, 10);
  });

  it("Student's t: table values, large df tends to the normal", () => {
    expect(studentQuantile(0.05, 1)).toBeCloseTo(12.7062, 3);
    expect(studentQuantile(0.05, 10)).toBeCloseTo(2.228139, 5);
    expect(studentQuantile(0.01, 30)).toBeCloseTo(2.749996, 5);
    expect(studentTwoSided(2.228139, 10)).toBeCloseTo(0.05, 6);
    expect(studentTwoSided(1.96, 1e9)).toBeCloseTo(normalTwoSided(1.96), 12);
    expect(studentQuantile(0.05, Infinity)).toBeCloseTo(1.959964, 6);
  });
});

describe('quantiles from order statistics', () => {
  it('nearest rank is ceil(q·n), never 0, never past n', () => {
    expect([nearestRankIndex(100, 0.5), nearestRankIndex(100, 0.99), nearestRankIndex(101, 0.5), nearestRankIndex(1, 0.99),
      nearestRankIndex(1000, 0.9)]).toEqual([50, 99, 51, 1, 900]);
  });

  it('the exact interval covers with probability ≥ 1 − α for every n, and no tighter pair of ranks would', () => {
    for (const q of [0.5, 0.9, 0.99]) {
      for (let n = 1; n <= 400; n += n < 40 ? 1 : 17) {
        const ci = quantileInterval(n, q, 0.05);
        const below = ci.lowerRank === undefined ? 0 : directBinomialCdf(ci.lowerRank - 1, n, q);
        const above = ci.upperRank === undefined ? 0 : 1 - directBinomialCdf(ci.upperRank - 1, n, q);
        expect(below).toBeLessThanOrEqual(0.025 + 1e-12);
        expect(above).toBeLessThanOrEqual(0.025 + 1e-12);
        expect(ci.coverage).toBeCloseTo(1 - below - above, 10);
        // one rank further in would break its tail's bound; a missing bound means even rank 1 (n) does not reach it
        if (ci.lowerRank !== undefined && ci.lowerRank < n) expect(directBinomialCdf(ci.lowerRank, n, q)).toBeGreaterThan(0.025);
        if (ci.lowerRank === undefined) expect(directBinomialCdf(0, n, q)).toBeGreaterThan(0.025);
        if (ci.upperRank !== undefined && ci.upperRank > 1) expect(1 - directBinomialCdf(ci.upperRank - 2, n, q)).toBeGreaterThan(0.025);
        if (ci.upperRank === undefined) expect(q ** n).toBeGreaterThan(0.025);
      }
    }
    // the textbook median interval for n = 100: X(40) … X(61)
    expect(quantileInterval(100, 0.5, 0.05)).toMatchObject({ lowerRank: 40, upperRank: 61 });
  });

  it('tiny samples: no p99 bound above until 0.99^n ≤ α/2 (n ≥ 368); 5 values have no 95% median interval', () => {
    expect(quantileInterval(367, 0.99, 0.05).upperRank).toBeUndefined();
    expect(quantileInterval(368, 0.99, 0.05).upperRank).toBe(368);
    expect(quantileInterval(5, 0.5, 0.05)).toEqual({ lowerRank: undefined, upperRank: undefined, coverage: 1 });
    expect(quantileInterval(6, 0.5, 0.05)).toMatchObject({ lowerRank: 1, upperRank: 6 });
    expect(quantileInterval(0, 0.5, 0.05).coverage).toBe(0);
  });

  it('log-quantile slope: exact on a geometric sequence, undefined where the ranks leave the sample', () => {
    // x_i = 1000·1.01^i: ln x rises by ln 1.01 per rank everywhere
    const xs = Array.from({ length: 2000 }, (_, i) => 1000 * 1.01 ** (i + 1));
    const t = logQuantileTerm(xs, 0.9)!;
    expect(t.slope).toBeCloseTo(Math.log(1.01), 10);
    expect(t.rank).toBe(1800);
    expect(t.value).toBeCloseTo(xs[1799]!, 6);
    expect(t.lowerRank).toBeLessThan(1800);
    expect(t.upperRank).toBeGreaterThan(1800);
    expect(logQuantileTerm(xs.slice(0, 300), 0.99)).toBeUndefined();
    expect(logQuantileTerm(xs.slice(0, 400), 0.99)).toBeDefined();
    expect(logQuantileTerm([5], 0.5)).toBeUndefined();
  });

  it('ties are spread over the resolution cell; untied values stay', () => {
    const sorted = Float64Array.from([1000, 2000, 2000, 2000, 2000, 3000, 5000]);
    expect(resolution(sorted)).toBe(1000);
    const s = spreadTies(sorted);
    expect([...s]).toEqual([1000, 1625, 1875, 2125, 2375, 3000, 5000]);
    expect(s.slice(1, 5).reduce((a, b) => a + b) / 4).toBe(2000); // the tie's mean is kept
    expect(resolution([7, 7, 7])).toBe(1);
    expect([...spreadTies(Float64Array.from([7, 7]))]).toEqual([6.75, 7.25]);
  });
});

describe('counts', () => {
  it('Garwood intervals match the published 95% limits', () => {
    expect(poissonInterval(0, 0.05).upper).toBeCloseTo(3.688879, 5);
    expect(poissonInterval(0, 0.05).lower).toBe(0);
    const ten = poissonInterval(10, 0.05);
    expect(ten.lower).toBeCloseTo(4.795389, 5);
    expect(ten.upper).toBeCloseTo(18.390356, 5);
  });

  it('a standardized rate over one stratum is the exact Poisson interval ÷ n; dispersion widens it', () => {
    const one = standardizedRate([{ count: 10, exposure: 2000, weight: 1 }], 0.05);
    expect(one.rate).toBeCloseTo(0.005, 15);
    expect(one.lower).toBeCloseTo(4.795389 / 2000, 8);
    expect(one.upper).toBeCloseTo(18.390356 / 2000, 8);
    const wide = standardizedRate([{ count: 10, exposure: 2000, weight: 1 }], 0.05, 3);
    expect(wide.lower).toBeLessThan(one.lower);
    expect(wide.upper).toBeGreaterThan(one.upper);
    // two strata, weights ½ each: the rate is the mean of the stratum rates
    const two = standardizedRate([{ count: 1, exposure: 100, weight: 0.5 }, { count: 30, exposure: 1000, weight: 0.5 }], 0.05);
    expect(two.rate).toBeCloseTo(0.5 * 0.01 + 0.5 * 0.03, 15);
    expect(two.lower).toBeLessThan(two.rate);
    expect(two.upper).toBeGreaterThan(two.rate);
  });

  it('the conditional count test is the exact binomial test for one stratum, and its normal form agrees for large counts', () => {
    // 25 candidate vs 10 baseline findings, equal exposure: 2 · P(Bin(35, ½) ≥ 25)
    const exact = 2 * (1 - directBinomialCdf(24, 35, 0.5));
    expect(conditionalCountTest([{ baseline: 10, baselineExposure: 1000, candidate: 25, candidateExposure: 1000 }]).p).toBeCloseTo(exact, 12);
    expect(conditionalCountTest([{ baseline: 0, baselineExposure: 10, candidate: 0, candidateExposure: 10 }]).p).toBe(1);
    // above the exact limit: the normal approximation with a continuity correction
    const big = conditionalCountTest([{ baseline: 2000, baselineExposure: 1e6, candidate: 2150, candidateExposure: 1e6 }]);
    const z = (Math.abs(2150 - 2075) - 0.5) / Math.sqrt(4150 * 0.25);
    expect(big.p).toBeCloseTo(normalTwoSided(z), 12);
    // two strata: the exposures differ, the test conditions on each stratum's total
    const two = conditionalCountTest([
      { baseline: 5, baselineExposure: 1000, candidate: 5, candidateExposure: 1000 },
      { baseline: 0, baselineExposure: 100, candidate: 9, candidateExposure: 900 },
    ]);
    expect(two.expected).toBeCloseTo(5 + 9 * 0.9, 12);
    expect(two.p).toBeGreaterThan(0.5);
  });

  it('Holm: step-down, monotone, untested entries left out', () => {
    expect(holm([0.01, 0.04, 0.03, undefined, 0.005])).toEqual([0.03, 0.06, 0.06, undefined, 0.02]);
    expect(holm([0.5, 0.2])).toEqual([0.5, 0.4]);
    expect(holm([])).toEqual([]);
  });

  it('cluster variance and Satterthwaite df', () => {
    expect(clusterVariance([1])).toBeUndefined();
    const v = clusterVariance([1, -1, 2, -2])!;
    expect(v.variance).toBeCloseTo((4 / 3) * 10, 12);
    expect(v.df).toBe(3);
    expect(satterthwaite([{ variance: 1, df: 9 }, { variance: 1, df: 9 }])).toBeCloseTo(18, 12);
    expect(satterthwaite([{ variance: 1, df: 4 }, { variance: 0, df: 1 }])).toBeCloseTo(4, 12);
    expect(satterthwaite([{ variance: 0, df: 4 }])).toBe(Infinity);
  });
});

describe('calibration of the log-quantile test (independent values, 1200 draws per row, fixed seed)', () => {
  // The per-stratum test compares ln X(k) of two samples with the variance slope² · nq(1 − q) on each side (what
  // the between-host variance reduces to when every value is its own host). Under H0 it must reject about α.
  const rng = new Prng(17);
  const draws: Record<string, () => number> = {
    lognormal: () => rng.lognormal(50_000, 1),
    'heavy tail (Pareto 2.5)': () => 20_000 * rng.next() ** (-1 / 2.5),
    'microsecond clock (ties)': () => 1000 * Math.round(rng.lognormal(40, 0.6)),
  };
  const test = (a: Float64Array, b: Float64Array, q: number): { d: number; se: number } | undefined => {
    const sa = logQuantileTerm(a, q), sb = logQuantileTerm(b, q);
    if (!sa || !sb) return undefined;
    const v = (t: NonNullable<typeof sa>, n: number): number => t.slope ** 2 * n * q * (1 - q);
    return { d: Math.log(sb.value) - Math.log(sa.value), se: Math.sqrt(v(sa, a.length) + v(sb, b.length)) };
  };
  for (const [name, draw] of Object.entries(draws)) {
    for (const [q, n] of [[0.5, 200], [0.9, 400], [0.99, 1500]] as const) {
      it(`${name}, p${q * 100}, n = ${n}: false positives ≤ 8% at α = 5%, and a ×1.2 shift is covered ≥ 90%`, () => {
        let rejected = 0, covered = 0, runs = 0;
        for (let i = 0; i < 1200; i++) {
          const a = spreadTies(Float64Array.from({ length: n }, draw).sort());
          const b = spreadTies(Float64Array.from({ length: n }, draw).sort());
          const slow = spreadTies(Float64Array.from({ length: n }, () => 1.2 * draw()).sort());
          const h0 = test(a, b, q), h1 = test(a, slow, q);
          if (!h0 || !h1) continue;
          runs++;
          if (normalTwoSided(h0.d / h0.se) < 0.05) rejected++;
          if (Math.abs(h1.d - Math.log(1.2)) <= 1.959964 * h1.se) covered++;
        }
        expect(runs).toBe(1200);
        expect(rejected / runs).toBeLessThanOrEqual(0.08);
        expect(covered / runs).toBeGreaterThanOrEqual(0.9);
      });
    }
  }
});
