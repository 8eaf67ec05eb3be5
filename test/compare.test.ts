// The kernel A/B comparison (services/report/compare.ts) on fleets built here with known distributions: it finds a
// known slowdown (its interval holds the true ratio), stays quiet on identical fleets with the false-positive rate
// the level promises even when hosts differ from each other, does not move when only the workload mix differs, and
// says so when strata are too small. Also the trace-path builder (StrataBuilder) on hand-made episodes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FindingKind, Severity, TriggerKind, type Episode, type Finding } from '../services/core/model.js';
import {
  compareKernels, kernelMatcher, measuredLatency, StrataBuilder, type HostInput, type KernelInput, type StratumInput,
} from '../services/report/compare.js';
import { renderComparison } from '../services/report/compare-table.js';
import { Prng } from './support/prng.js';

interface StratumPlan {
  trigger: string; driver: string;
  /** Hosts running this stratum, episodes per host, latency median (ns) and spread. */
  hosts: number; perHost: number; median: number; sigma: number;
  /** Certain and inconclusive findings per episode. */
  certainRate?: number; inconclusiveRate?: number;
}

interface FleetPlan {
  label: string; seed: number; strata: StratumPlan[];
  /** Each host is this much slower or faster than the median, lognormally (shared by all its strata). */
  hostSigma?: number;
  /** Multiplies every revoke latency (hold latency stays). */
  revokeScale?: number;
  /** Every value its own host (what ignoring hosts amounts to). */
  noHosts?: boolean;
}

/** A kernel selection drawn from the plan: host h of a fleet is `${label}-h${h}` in every stratum it runs. */
function fleet(p: FleetPlan): KernelInput {
  const rng = new Prng(p.seed);
  const hostEffect = new Map<number, number>();
  const effect = (h: number): number => {
    if (!hostEffect.has(h)) hostEffect.set(h, Math.exp((p.hostSigma ?? 0) * rng.normal()));
    return hostEffect.get(h)!;
  };
  const strata: StratumInput[] = p.strata.map((s) => {
    const hosts: HostInput[] = [];
    for (let h = 0; h < s.hosts; h++) {
      const k = effect(h);
      const revoke: number[] = [], hold: number[] = [];
      let certain = 0, inconclusive = 0;
      for (let i = 0; i < s.perHost; i++) {
        const base = k * rng.lognormal(s.median, s.sigma);
        revoke.push(Math.round(base * (p.revokeScale ?? 1)));
        hold.push(Math.round(base * 3));
        if (rng.next() < (s.certainRate ?? 0)) certain++;
        if (rng.next() < (s.inconclusiveRate ?? 0)) inconclusive++;
      }
      if (p.noHosts) {
        revoke.forEach((v, i) => hosts.push({ host: `${p.label}-h${h}-${i}`, episodes: 1, certain: i === 0 ? certain : 0, inconclusive: i === 0 ? inconclusive : 0,
          latency: { revoke: { count: 1, values: [v] }, hold: { count: 1, values: [hold[i]!] } } }));
      } else {
        hosts.push({ host: `${p.label}-h${h}`, episodes: s.perHost, certain, inconclusive,
          latency: { revoke: { count: s.perHost, values: revoke }, hold: { count: s.perHost, values: hold } } });
      }
    }
    return { trigger: s.trigger, driver: s.driver, hosts };
  });
  return { label: p.label, kernels: [p.label], strata, unattributed: { certain: 0, inconclusive: 0 } };
}

const MIX: StratumPlan[] = [
  { trigger: 'RESET', driver: 'vfio-pci', hosts: 60, perHost: 60, median: 40_000, sigma: 0.5 },
  { trigger: 'MEM_DISABLE', driver: 'vfio-pci', hosts: 60, perHost: 40, median: 25_000, sigma: 0.6 },
  { trigger: 'RESET', driver: 'nvgrace-gpu', hosts: 30, perHost: 50, median: 900_000, sigma: 0.8 },
];

const overall = (c: ReturnType<typeof compareKernels>, metric: 'revoke' | 'hold', q: number) =>
  c.overall.latency.find((l) => l.metric === metric && l.q === q)!;

describe('a known slowdown', () => {
  const base = fleet({ label: 'A', seed: 1, strata: MIX, hostSigma: 0.2 });
  const slow = fleet({ label: 'B', seed: 2, strata: MIX, hostSigma: 0.2, revokeScale: 1.2 });
  const c = compareKernels(base, slow);

  it('is found at every quantile, its interval holds ×1.2, and the verdict is a regression', () => {
    for (const q of [0.5, 0.9, 0.99]) {
      const l = overall(c, 'revoke', q);
      expect(l.strata, `p${q * 100}`).toBe(3);
      expect(l.coverage).toBe(1);
      expect(l.lower!, `p${q * 100}`).toBeLessThanOrEqual(1.2);
      expect(l.upper!, `p${q * 100}`).toBeGreaterThanOrEqual(1.2);
      expect(l.verdict).toBe('regression');
    }
    expect(c.verdict).toBe('regression');
    expect(c.reasons.some((r) => r.startsWith('regression: revoke p99'))).toBe(true);
  });

  it('the unchanged hold time is not flagged', () => {
    for (const q of [0.5, 0.9, 0.99]) {
      const l = overall(c, 'hold', q);
      expect(l.lower!).toBeLessThanOrEqual(1);
      expect(l.upper!).toBeGreaterThanOrEqual(1);
      expect(l.verdict).toBe('no significant difference');
    }
  });

  it('an improvement is an improvement, not a regression (exit 0 for CI)', () => {
    const r = compareKernels(slow, base);
    expect(r.verdict).toBe('improvement');
    expect(overall(r, 'revoke', 0.5).ratio!).toBeLessThan(1);
  });

  it('renders a table with the verdict, the overall rows and every stratum', () => {
    const text = renderComparison(c);
    expect(text).toContain('Verdict: REGRESSION');
    expect(text).toMatch(/revoke p99\s+3\s+100\.0%/);
    for (const s of MIX) expect(text).toContain(s.driver);
  });
});

describe('identical fleets', () => {
  // 300 pairs of fleets drawn from one plan, hosts 25% apart from each other (lognormal σ 0.25)
  const TRIALS = 300;
  const plan = (seed: number, extra: Partial<FleetPlan> = {}): FleetPlan =>
    ({ label: `F${seed}`, seed, strata: MIX.map((s) => ({ ...s, hosts: Math.round(s.hosts / 2), perHost: 30 })), hostSigma: 0.25, ...extra });

  it('the verdict is a regression or an improvement in at most α of the pairs (measured: ≤ 6% over 300 pairs)', () => {
    let flagged = 0, covered = 0, coveredRuns = 0;
    for (let i = 0; i < TRIALS; i++) {
      const a = fleet(plan(1000 + 2 * i)), b = fleet(plan(1001 + 2 * i));
      const c = compareKernels(a, b, { minEffect: 0 });
      if (c.verdict === 'regression' || c.verdict === 'improvement') flagged++;
      const slow = compareKernels(a, fleet(plan(1001 + 2 * i, { revokeScale: 1.2 })), { minEffect: 0 });
      const p99 = overall(slow, 'revoke', 0.99);
      if (p99.ratio !== undefined) {
        coveredRuns++;
        if (p99.lower! <= 1.2 && 1.2 <= p99.upper!) covered++;
      }
    }
    expect(flagged / TRIALS).toBeLessThanOrEqual(0.06);
    expect(coveredRuns).toBe(TRIALS);
    expect(covered / coveredRuns).toBeGreaterThanOrEqual(0.9);
  });

  it('why the variance is taken between hosts: treating episodes as independent flags most identical pairs', () => {
    let flagged = 0;
    for (let i = 0; i < 40; i++) {
      const c = compareKernels(fleet(plan(5000 + 2 * i, { noHosts: true })), fleet(plan(5001 + 2 * i, { noHosts: true })), { minEffect: 0 });
      if (c.verdict !== 'no significant difference') flagged++;
    }
    expect(flagged / 40).toBeGreaterThan(0.3);
  });
});

describe('the workload mix', () => {
  const base = fleet({ label: 'A', seed: 7, strata: MIX, hostSigma: 0.1 });

  it('changing only the candidate\'s mix (counts, an extra stratum) changes no overall number', () => {
    const same = compareKernels(base, { ...base, label: 'B' });
    expect(same.verdict).toBe('no significant difference');
    for (const l of same.overall.latency) expect(l.ratio).toBe(1);
    // the candidate ran the slow nvgrace stratum ten times as often, and a stratum the baseline never ran
    const remixed: KernelInput = {
      ...base, label: 'B',
      strata: [...base.strata.map((s) => (s.driver !== 'nvgrace-gpu' ? s : { ...s, hosts: s.hosts.map((h) => ({ ...h, episodes: h.episodes * 10,
        latency: { revoke: { ...h.latency.revoke, count: h.latency.revoke.count * 10 }, hold: { ...h.latency.hold, count: h.latency.hold.count * 10 } } })) })),
      fleet({ label: 'B', seed: 8, strata: [{ trigger: 'FLR', driver: 'mlx5_vfio_pci', hosts: 20, perHost: 50, median: 5e6, sigma: 1 }] }).strata[0]!],
    };
    const c = compareKernels(base, remixed);
    expect(c.overall.latency.map((l) => [l.ratio, l.lower, l.upper, l.p])).toEqual(same.overall.latency.map((l) => [l.ratio, l.lower, l.upper, l.p]));
    expect(c.verdict).toBe('no significant difference');
    expect(c.strata.find((s) => s.driver === 'mlx5_vfio_pci')!.weight).toBe(0);
  });

  it('a fleet with the same strata in another mix is no regression, where a pooled comparison would call one', () => {
    // the candidate's episodes are mostly the slow nvgrace resets (the baseline's are mostly fast vfio-pci ones)
    const mix = MIX.map((s) => (s.driver === 'nvgrace-gpu' ? { ...s, hosts: 60, perHost: 150 } : { ...s, perHost: 10 }));
    const other = fleet({ label: 'B', seed: 9, strata: mix, hostSigma: 0.1 });
    const c = compareKernels(base, other);
    expect(c.verdict).toBe('no significant difference');
    const pooled = (k: KernelInput): KernelInput => ({ ...k, strata: [{ trigger: 'ALL', driver: 'all', hosts: k.strata.flatMap((s) => s.hosts) }] });
    const naive = compareKernels(pooled(base), pooled(other));
    expect(overall(naive, 'revoke', 0.5).ratio!).toBeGreaterThan(3);
    expect(naive.verdict).toBe('regression');
  });
});

describe('small and odd inputs', () => {
  const tiny = (label: string, values: number[], hosts = values.length): KernelInput => ({
    label, kernels: [label], unattributed: { certain: 0, inconclusive: 0 },
    strata: [{ trigger: 'RESET', driver: 'vfio-pci', hosts: Array.from({ length: hosts }, (_, h) => {
      const vs = values.filter((_, i) => i % hosts === h);
      return { host: `${label}${h}`, episodes: vs.length, certain: 0, inconclusive: 0, latency: { revoke: { count: vs.length, values: vs }, hold: { count: vs.length, values: vs } } };
    }) }],
  });

  it('three values a side: quantiles without intervals, no ratio, insufficient data', () => {
    const c = compareKernels(tiny('A', [10_000, 20_000, 30_000]), tiny('B', [11_000, 21_000, 90_000]));
    const p50 = c.strata[0]!.latency.find((l) => l.metric === 'revoke' && l.q === 0.5)!;
    expect(p50.baseline).toEqual({ n: 3, hosts: 3, value: 20_000 });
    expect(p50.ratio).toBeUndefined();
    expect(c.verdict).toBe('insufficient data');
    expect(c.overall.latency.every((l) => l.strata === 0 && l.verdict === 'insufficient data')).toBe(true);
  });

  it('one host a side: quantiles with intervals, but no between-host variance, so no ratio', () => {
    const values = Array.from({ length: 500 }, (_, i) => 1000 + i);
    const c = compareKernels(tiny('A', values, 1), tiny('B', values.map((v) => 2 * v), 1));
    const p50 = c.strata[0]!.latency.find((l) => l.metric === 'revoke' && l.q === 0.5)!;
    expect(p50.baseline.lower).toBeDefined();
    expect(p50.ratio).toBeUndefined();
    expect(c.verdict).toBe('insufficient data');
  });

  it('every value tied (a coarse clock): ties are spread, equal samples compare equal', () => {
    const values = Array.from({ length: 800 }, (_, i) => 1000 * (20 + (i % 3)));
    const c = compareKernels(tiny('A', values, 8), tiny('B', [...values].reverse(), 8));
    const l = overall(c, 'revoke', 0.5);
    expect(l.ratio).toBe(1);
    expect(l.p).toBe(1);
    expect(c.verdict).toBe('no significant difference');
  });

  it('a stratum only one side has counts in the table but not in the overall', () => {
    const a = fleet({ label: 'A', seed: 3, strata: MIX.slice(0, 2) });
    const b = fleet({ label: 'B', seed: 4, strata: MIX });
    const c = compareKernels(a, b);
    expect(c.strata).toHaveLength(3);
    const only = c.strata.find((s) => s.driver === 'nvgrace-gpu')!;
    expect([only.baselineEpisodes, only.weight]).toEqual([0, 0]);
    expect(only.latency.every((l) => l.ratio === undefined)).toBe(true);
    expect(overall(c, 'revoke', 0.5).strata).toBe(2);
  });

  it('rejects a nonsense α or effect size', () => {
    const a = tiny('A', [1, 2, 3]);
    expect(() => compareKernels(a, a, { alpha: 0 })).toThrow(RangeError);
    expect(() => compareKernels(a, a, { minEffect: -1 })).toThrow(RangeError);
  });
});

describe('finding rates', () => {
  const strata = (certain: number, inconclusive: number): StratumPlan[] =>
    MIX.map((s) => ({ ...s, certainRate: certain, inconclusiveRate: inconclusive }));

  it('more certain findings on the candidate is a regression, with rates per 1000 and intervals', () => {
    const c = compareKernels(fleet({ label: 'A', seed: 11, strata: strata(0.002, 0.01) }), fleet({ label: 'B', seed: 12, strata: strata(0.02, 0.01) }));
    const certain = c.overall.rates.find((r) => r.kind === 'certain')!;
    expect(certain.baseline.per1k).toBeGreaterThan(0.5);
    expect(certain.baseline.per1k).toBeLessThan(4);
    expect(certain.candidate.per1k).toBeGreaterThan(12);
    expect(certain.candidate.lower).toBeLessThan(certain.candidate.per1k);
    expect(certain.candidate.upper).toBeGreaterThan(certain.candidate.per1k);
    expect(certain.verdict).toBe('regression');
    expect(c.verdict).toBe('regression');
    expect(c.reasons.some((r) => r.includes('certain findings'))).toBe(true);
  });

  it('more inconclusive findings are shown, but are no regression of the kernel', () => {
    const c = compareKernels(fleet({ label: 'A', seed: 13, strata: strata(0, 0.002) }), fleet({ label: 'B', seed: 14, strata: strata(0, 0.05) }));
    const inconclusive = c.overall.rates.find((r) => r.kind === 'inconclusive')!;
    expect(inconclusive.verdict).toBe('regression');
    expect(c.verdict).toBe('no significant difference');
  });

  it('findings piled on one host widen the interval (dispersion) instead of making a verdict', () => {
    const piled = (label: string, seed: number, host: number): KernelInput => {
      const k = fleet({ label, seed, strata: MIX });
      k.strata[0]!.hosts[host]!.certain = 40;
      return k;
    };
    const c = compareKernels(piled('A', 21, 3), piled('B', 22, 5));
    const certain = c.overall.rates.find((r) => r.kind === 'certain')!;
    expect(certain.baseline.dispersion).toBeGreaterThan(5);
    expect(certain.verdict).toBe('no significant difference');
  });
});

// ---------------------------------------------------------------- the trace path

let n = 0;
function episode(o: Partial<Episode>): Episode {
  n++;
  return {
    episodeId: `e${n}`, hostname: 'h1', bootId: 'b', device: '0000:01:00.0', driver: 'vfio-pci', kernelRelease: '6.12.57+deb13-amd64',
    trigger: TriggerKind.RESET, groupId: 0, acquireTsNs: 1000 * n, releaseTsNs: 1000 * n + 500, revoke: true, lockWaitNs: 0, holdNs: 500,
    revokeNs: 300, zapNs: 0, dmabufRevokeNs: 0, moveNs: 0, zapCount: 1, dmabufCount: 0, importerCount: 0, legacyMappings: 0, dmabufMappings: 0,
    complete: true, pid: 1, comm: 'qemu', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0,
    cgroupId: 0, vm: '', podUid: '', podName: '', containerId: '', acquireStackId: 0, ...o,
  };
}
function finding(o: Partial<Finding>): Finding {
  return { findingId: `f${n++}`, kind: FindingKind.SKIPPED_ZAP, severity: Severity.CRITICAL, hostname: 'h1', bootId: 'b', device: '0000:01:00.0',
    driver: 'vfio-pci', kernelRelease: '6.12.57+deb13-amd64', episodeId: '', tsNs: 0, inconclusive: false, evidence: '{}', ...o };
}

describe('StrataBuilder (trace path)', () => {
  it('measures latency only where the episode measured it', () => {
    expect(measuredLatency(episode({}), 'revoke')).toBe(300);
    expect(measuredLatency(episode({}), 'hold')).toBe(500);
    expect(measuredLatency(episode({ complete: false }), 'revoke')).toBeUndefined();
    expect(measuredLatency(episode({ acquireTsNs: 0 }), 'hold')).toBeUndefined(); // began before observation
    expect(measuredLatency(episode({ revoke: false }), 'revoke')).toBeUndefined();
    expect(measuredLatency(episode({ revokeNs: 0 }), 'revoke')).toBeUndefined();
    expect(measuredLatency(episode({ releaseTsNs: 0 }), 'hold')).toBeUndefined();
  });

  it('kernel globs: * and ? only, everything else literal', () => {
    const m = kernelMatcher('6.12.*');
    expect(['6.12.57+deb13-amd64', '6.12.', '6.1.0-27-amd64', '6.129'].map(m)).toEqual([true, true, false, false]);
    expect(kernelMatcher('7.?.0')('7.1.0')).toBe(true);
    expect(kernelMatcher('a+b(c)')('a+b(c)')).toBe(true);
    expect(kernelMatcher('a+b(c)')('aab(c)')).toBe(false);
    expect(kernelMatcher('*')('')).toBe(true);
    expect(kernelMatcher('?')('')).toBe(false);
    expect(kernelMatcher('**a*')('xxa')).toBe(true);
  });

  it('kernel globs agree with a reference regular expression on random globs and releases', () => {
    const reference = (p: string) => new RegExp(`^${[...p].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&'))).join('')}$`, 's');
    fc.assert(fc.property(fc.stringMatching(/^[6.1*?a-]{0,12}$/), fc.stringMatching(/^[6.1a-]{0,16}$/), (glob, release) => {
      expect(kernelMatcher(glob)(release)).toBe(reference(glob).test(release));
    }), { numRuns: 5000 });
  });

  it('a glob of many stars against a long release that does not match is answered (no backtracking regex)', () => {
    // a regular expression /^(.*a){40}b$/-like pattern backtracks exponentially; the walk is pattern × release
    expect(kernelMatcher('*a'.repeat(40) + 'b')('a'.repeat(4000))).toBe(false);
  });

  it('strata by trigger × driver and host, findings by their episode, the rest unattributed', () => {
    const b = new StrataBuilder('6.12.*');
    const e1 = episode({ hostname: 'h1' }), e2 = episode({ hostname: 'h2', driver: 'mlx5_vfio_pci', trigger: TriggerKind.FLR });
    const e3 = episode({ hostname: 'h1', complete: false }), other = episode({ kernelRelease: '6.19.0-1-amd64' });
    for (const e of [e1, e2, e3, other]) b.addEpisode(e);
    b.addFinding(finding({ episodeId: e1.episodeId }));
    b.addFinding(finding({ episodeId: e2.episodeId, inconclusive: true }));
    b.addFinding(finding({ episodeId: 'not-an-episode' }));
    b.addFinding(finding({ episodeId: other.episodeId, kernelRelease: '6.19.0-1-amd64' })); // another kernel: not ours
    const k = b.build();
    expect(k.kernels).toEqual(['6.12.57+deb13-amd64']);
    expect(k.unattributed).toEqual({ certain: 1, inconclusive: 0 });
    const reset = k.strata.find((s) => s.trigger === 'RESET')!;
    expect(reset.hosts).toEqual([{ host: 'h1', episodes: 2, certain: 1, inconclusive: 0,
      latency: { revoke: { count: 1, values: [300] }, hold: { count: 1, values: [500] } } }]);
    const flr = k.strata.find((s) => s.trigger === 'FLR')!;
    expect([flr.driver, flr.hosts[0]!.host, flr.hosts[0]!.inconclusive]).toEqual(['mlx5_vfio_pci', 'h2', 1]);
    expect(b.build()).toEqual(k); // building twice counts once
  });

  it('caps the values of a stratum at a uniform subsample that does not depend on the order episodes arrive in', () => {
    const eps = Array.from({ length: 1000 }, (_, i) => episode({ hostname: `h${i % 7}`, revokeNs: 100 + i }));
    const build = (list: Episode[]): KernelInput => { const b = new StrataBuilder('*', 200); for (const e of list) b.addEpisode(e); return b.build(); };
    const forward = build(eps), backward = build([...eps].reverse());
    const values = (k: KernelInput): number[] => k.strata[0]!.hosts.flatMap((h) => Array.from(h.latency.revoke.values)).sort((x, y) => x - y);
    expect(values(forward)).toHaveLength(200);
    expect(values(forward)).toEqual(values(backward));
    expect(forward.strata[0]!.hosts.reduce((s, h) => s + h.latency.revoke.count, 0)).toBe(1000); // counts stay whole
    const mean = values(forward).reduce((s, v) => s + v, 0) / 200;
    expect(mean).toBeGreaterThan(500); // all of 100 … 1099, not the first 200 (mean ≈ 600 ± 20)
    expect(mean).toBeLessThan(700);
  });
});
