// Simulator ground truth against the correlator (issues 2 and 13, docs/rules.md §5): the simulator models the kernel
// from its own tables and judges its own truth (collectors/simulator/judge.ts). On simulated fleets the correlator's
// certain findings must equal the truth's exactly (precision and recall 100%, same severity and ts), its
// inconclusive ones too, and the injected scenarios' episodes must carry the truth's trigger, task, completeness,
// trigger_ret, stale_triggers and intended_empty_zaps. A correct fleet yields nothing at all.
import { describe, expect, it } from 'vitest';
import {
  compareEpisodes, compareFindings, simulate, type FleetTruth, type SimulateOptions, type TruthComparison,
} from '../collectors/simulator/index.js';
import { analyzeBatches } from '../services/core/analysis.js';
import type { EventBatch } from '../services/core/model.js';

const S = 1_000_000_000;

function describeMisses(c: TruthComparison): string[] {
  return [
    ...c.missing.map((m) => `missing ${m.kind}/${m.severity}${m.inconclusive ? ' (inconclusive)' : ''} ${m.scenario || 'workload'} ${m.hostname} ${m.device} ts=${m.tsNs}: ${m.why}`),
    ...c.unexpected.map((u) => `unexpected kind=${u.kind} severity=${u.severity} inconclusive=${String(u.inconclusive)} ${u.hostname} ${u.device} ts=${u.tsNs} ${String(u.evidence)}`),
    ...c.mismatched.map((m) => `mismatch ${m.truth.scenario || 'workload'} ${m.truth.kind}: ${m.why} (truth: ${m.truth.why})`),
  ];
}

interface Checked { truth: FleetTruth; certain: number; inconclusive: number; reported: number }

/** Runs the correlator on a simulated fleet and holds it to the truth, findings and scenario episodes. */
function check(opts: SimulateOptions, order: (b: EventBatch[]) => EventBatch[] = (b) => b): Checked {
  const { batches, truth } = simulate(opts);
  const a = analyzeBatches(order(batches));
  const cmp = compareFindings(truth, a.findings, a.episodes);
  expect(describeMisses(cmp), `seed ${opts.seed}`).toEqual([]);
  expect(cmp.matched.length).toBe(truth.findings.length);
  expect(compareEpisodes(truth, a.episodes), `seed ${opts.seed}`).toEqual([]);
  const certain = truth.findings.filter((f) => !f.inconclusive).length;
  return { truth, certain, inconclusive: truth.findings.length - certain, reported: a.findings.length };
}

describe('simulator truth vs correlator', () => {
  it('a correct fleet yields no finding, certain or inconclusive', () => {
    for (const seed of [1, 2, 3, 4]) {
      const { batches } = simulate({ hosts: 32, durationNs: 40 * S, seed, faults: false });
      const a = analyzeBatches(batches);
      expect(a.findings.map((f) => `${f.kind} ${f.hostname} ${f.device} ${String(f.evidence)}`)).toEqual([]);
      expect(a.episodes.every((e) => e.complete)).toBe(true);
      expect(a.episodes.length).toBeGreaterThan(2000);
    }
  });

  it('pre-6.11: revokes while mappings were never faulted (not on vma_list) yield no finding', () => {
    const { batches } = simulate({ hosts: 20, durationNs: 30 * S, seed: 9, faults: false, unpopulatedPre611Revokes: true });
    expect(analyzeBatches(batches).findings.map((f) => `${f.kind} ${f.hostname} ${f.device}`)).toEqual([]);
  });

  it('finds exactly the truth over many seeds, certain and inconclusive (precision and recall 100%)', () => {
    let certain = 0, inconclusive = 0, scenarios = 0, episodes = 0;
    for (let seed = 10; seed < 18; seed++) {
      const r = check({ hosts: 30, durationNs: 45 * S, seed, faultRate: 1 });
      certain += r.certain; inconclusive += r.inconclusive; scenarios += r.truth.faults.length; episodes += r.truth.episodes.length;
    }
    console.log(`truth: 8 seeds, ${scenarios} scenarios, ${certain} certain and ${inconclusive} inconclusive findings matched, ` +
      `${episodes} scenario episodes matched field by field`);
    expect(certain).toBeGreaterThan(8 * 25);
    expect(inconclusive).toBeGreaterThan(8 * 3);
  });

  it('finds exactly the truth in a 60-host minute', () => {
    const r = check({ hosts: 60, durationNs: 60 * S, seed: 1 });
    expect(r.certain).toBeGreaterThanOrEqual(20);
  });

  it('does not depend on how hosts interleave (each host in turn instead of round-robin)', () => {
    const byHost = (bs: EventBatch[]) => [...bs].sort((x, y) => x.host!.hostname!.localeCompare(y.host!.hostname!));
    check({ hosts: 30, durationNs: 30 * S, seed: 77, faultRate: 1 }, byHost);
  });

  it('holds with tiny batches and many devices', () => {
    check({ hosts: 30, durationNs: 30 * S, seed: 5, batchSize: 8, devicesPerHost: [6, 10], faultRate: 2 });
  });

  it('holds for the field conditions alone, each many times', () => {
    const fieldConditions = ['late_start_in_window', 'late_start_memory_off', 'failed_ioctl', 'failed_ioctl_older_collector',
      'other_task_config_write', 'unopened_sibling', 'vf_memory_off', 'vf_older_collector', 'loss_long_before',
      'nvgrace_empty_zaps', 'hung_reset'] as const;
    const r = check({ hosts: 40, durationNs: 60 * S, seed: 31, faultRate: 3, faultKinds: [...fieldConditions] });
    // Each field condition is injected more than once (its variants), and none of them yields a certain finding.
    for (const f of fieldConditions) expect(r.truth.faults.filter((x) => x.fault === f).length, f).toBeGreaterThanOrEqual(2);
    const certain = r.truth.findings.filter((f) => !f.inconclusive).map((f) => `${f.scenario} ${f.kind}`);
    expect(certain.every((c) => /^hung_reset#/.test(c))).toBe(true);
  });
});
