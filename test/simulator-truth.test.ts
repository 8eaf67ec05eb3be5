// Simulator ground truth against the correlator (issue 2): on simulated fleets the correlator must report
// exactly the injected findings (precision and recall 100%, same severity, ts and inconclusive flag), and
// nothing at all on a correct fleet.
import { describe, expect, it } from 'vitest';
import { compareFindings, simulate, type SimulateOptions, type TruthComparison } from '../collectors/simulator/index.js';
import { analyzeBatches } from '../services/core/analysis.js';
import type { EventBatch } from '../services/core/model.js';

const S = 1_000_000_000;

function describeMisses(c: TruthComparison): string[] {
  return [
    ...c.missing.map((m) => `missing ${m.kind}/${m.severity} ${m.fault} ${m.hostname} ${m.device} acquire=${m.acquireTsNs}`),
    ...c.unexpected.map((u) => `unexpected kind=${u.kind} ${u.hostname} ${u.device} ts=${u.tsNs} ${u.evidence}`),
    ...c.mismatched.map((m) => `mismatch ${m.truth.fault} ${m.truth.kind}: ${m.why}`),
  ];
}

function check(opts: SimulateOptions, order: (b: EventBatch[]) => EventBatch[] = (b) => b): { truth: number; reported: number } {
  const { batches, truth } = simulate(opts);
  const a = analyzeBatches(order(batches));
  const cmp = compareFindings(truth, a.findings, a.episodes);
  expect(describeMisses(cmp), `seed ${opts.seed}`).toEqual([]);
  expect(cmp.matched.length).toBe(truth.findings.length);
  return { truth: truth.findings.length, reported: a.findings.length };
}

describe('simulator truth vs correlator', () => {
  it('a correct fleet yields no finding', () => {
    for (const seed of [1, 2, 3, 4]) {
      const { batches } = simulate({ hosts: 25, durationNs: 40 * S, seed, faults: false });
      const a = analyzeBatches(batches);
      expect(a.findings.map((f) => `${f.kind} ${f.hostname} ${f.device} ${f.evidence}`)).toEqual([]);
      expect(a.episodes.every((e) => e.complete)).toBe(true);
    }
  });

  it('pre-6.11: revokes while mappings were never faulted (not on vma_list) yield no finding', () => {
    const { batches } = simulate({ hosts: 20, durationNs: 30 * S, seed: 9, faults: false, unpopulatedPre611Revokes: true });
    expect(analyzeBatches(batches).findings.map((f) => `${f.kind} ${f.hostname} ${f.device}`)).toEqual([]);
  });

  it('marks inconclusive exactly the findings whose episodes loss touched', () => {
    const { batches, truth } = simulate({ hosts: 20, durationNs: 40 * S, seed: 21, faultRate: 1, faultKinds: ['ring_loss', 'forgot_opt_in', 'unknown_device'] });
    const a = analyzeBatches(batches);
    const cmp = compareFindings(truth, a.findings, a.episodes);
    expect(describeMisses(cmp)).toEqual([]);
    expect(truth.findings.some((f) => f.fault === 'ring_loss' && f.inconclusive)).toBe(true);
    expect(a.findings.filter((f) => f.inconclusive).length).toBe(truth.findings.filter((f) => f.inconclusive).length);
  });

  it('finds exactly the injected faults over many seeds', () => {
    let total = 0;
    for (let seed = 10; seed < 16; seed++) total += check({ hosts: 20, durationNs: 45 * S, seed, faultRate: 1 }).truth;
    expect(total).toBeGreaterThan(6 * 20);
  });

  it('finds exactly the injected faults in a 50-host minute', () => {
    const r = check({ hosts: 50, durationNs: 60 * S, seed: 1 });
    expect(r.truth).toBeGreaterThanOrEqual(17);
  });

  it('does not depend on how hosts interleave (each host in turn instead of round-robin)', () => {
    const byHost = (bs: EventBatch[]) => [...bs].sort((x, y) => x.host!.hostname!.localeCompare(y.host!.hostname!));
    check({ hosts: 15, durationNs: 30 * S, seed: 77, faultRate: 1 }, byHost);
  });

  it('holds with tiny batches and many devices', () => {
    check({ hosts: 10, durationNs: 30 * S, seed: 5, batchSize: 8, devicesPerHost: [6, 10], faultRate: 2 });
  });
});
