// Property: any arrival order within the lateness window gives the same episodes and findings (docs/rules.md).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { analyzeBatches } from '../services/core/analysis.js';
import { Correlator } from '../services/core/correlator/index.js';
import type { Event } from '../services/core/model.js';
import { Backing, TraceBuilder, TriggerKind, ZapTarget, cut } from './support/trace-builder.js';

const LATENESS_NS = 2_000_000_000;

/** A host with several devices exercising every rule, events close together in time. */
function richTrace(): TraceBuilder {
  const b = new TraceBuilder('series');
  const devs = ['0000:01:00.0', '0000:02:00.0', '0000:03:00.0', '0000:04:00.0'];
  b.info(0, devs[0]!, 'nvgrace-gpu', false).mmap(1, devs[0]!, 1, { snapshot: true, backing: Backing.CUSTOM_VM_OPS });
  b.info(0, devs[1]!, 'hisi_acc_vfio_pci', true).mmap(1, devs[1]!, 2, { snapshot: true, backing: Backing.DMABUF });
  b.info(0, devs[2]!, 'vfio-pci', true).mmap(1, devs[2]!, 3, { snapshot: true, backing: Backing.DMABUF });
  for (let round = 0; round < 6; round++) {
    const t = 1000 + round * 700_000;
    // skipped zap (forgot to opt in), fault then remap
    b.trigger(t, devs[0]!, TriggerKind.RESET, 11).acquire(t + 5, devs[0]!, 11).revoke(t + 10, devs[0]!, true, { tid: 11 })
      .revoke(t + 300, devs[0]!, false, { tid: 11 }).release(t + 400, devs[0]!, 11).fault(t + 500, devs[0]!, 1);
    // redundant zap (did not opt out) + a double zap
    b.trigger(t + 20, devs[1]!, TriggerKind.FLR, 12).acquire(t + 25, devs[1]!, 12).zap(t + 30, devs[1]!, { tid: 12 })
      .zap(t + 35, devs[1]!, { tid: 12 }).revoke(t + 40, devs[1]!, true, { tid: 12 })
      .zap(t + 42, devs[1]!, { target: ZapTarget.DMABUF, tid: 12 }).revoke(t + 300, devs[1]!, false, { tid: 12 }).release(t + 310, devs[1]!, 12);
    // missing unrevoke, then unrevoke without revoke, slow revoke
    b.trigger(t + 50, devs[2]!, TriggerKind.RESET, 13).acquire(t + 55, devs[2]!, 13).revoke(t + 60, devs[2]!, true, { tid: 13, durationNs: round === 2 ? 70_000_000 : 10_000 })
      .move(t + 61, devs[2]!, 5000).release(t + 80_000, devs[2]!, 13);
    b.acquire(t + 100_000, devs[2]!, 14).revoke(t + 100_010, devs[2]!, false, { tid: 14 }).revoke(t + 100_020, devs[2]!, false, { tid: 14 })
      .release(t + 100_030, devs[2]!, 14);
    // zap outside the lock; unknown device with a revoke episode
    b.zap(t + 200_000, devs[1]!, { tid: 15 });
    b.trigger(t + 300_000, devs[3]!, TriggerKind.D3HOT, 16).acquire(t + 300_010, devs[3]!, 16).revoke(t + 300_020, devs[3]!, true, { tid: 16 })
      .release(t + 300_100, devs[3]!, 16);
  }
  b.acquire(5_000_000, devs[0]!, 17); // stuck
  for (let t = 5_100_000; t < 12_000_000; t += 400_000) b.trigger(t, devs[2]!, TriggerKind.MEM_ENABLE, 18);
  return b;
}

function canonical(r: ReturnType<typeof analyzeBatches>) {
  return {
    episodes: [...r.episodes].sort((a, b) => a.episodeId.localeCompare(b.episodeId)),
    findings: [...r.findings].sort((a, b) => a.findingId.localeCompare(b.findingId)),
  };
}

describe('order independence within the lateness window', () => {
  const b = richTrace();
  const reference = canonical(analyzeBatches(b.batches(32)));

  it('the reference trace exercises the rules', () => {
    const kinds = new Set(reference.findings.map((f) => f.kind));
    expect(kinds.size).toBeGreaterThanOrEqual(6);
    expect(reference.episodes.length).toBeGreaterThan(20);
  });

  it('any permutation that keeps each event within the window gives the same output', () => {
    const sorted = [...b.events].sort((x, y) => (x.tsNs ?? 0) - (y.tsNs ?? 0));
    fc.assert(fc.property(
      fc.array(fc.integer({ min: 0, max: LATENESS_NS - 1 }), { minLength: sorted.length, maxLength: sorted.length }),
      fc.integer({ min: 1, max: 200 }),
      (jitter, batchSize) => {
        // Arrival order = ts + jitter (< lateness): no event arrives after one more than the window newer.
        const arrival: Event[] = sorted.map((ev, i) => ({ ev, key: (ev.tsNs ?? 0) + jitter[i]! }))
          .sort((x, y) => x.key - y.key).map((x) => x.ev);
        const got = canonical(analyzeBatches(cut(b.host, arrival, batchSize)));
        expect(got).toEqual(reference);
      },
    ), { numRuns: 60 });
  });
});

describe('checkpoints', () => {
  it('snapshot after any batch + restore + the rest gives the same output as one uninterrupted run', () => {
    const batches = richTrace().batches(16);
    const reference = canonical(analyzeBatches(batches));
    for (const cutAt of [1, 5, Math.floor(batches.length / 2), batches.length - 1]) {
      const first = new Correlator();
      const episodes = [], findings = [];
      for (const b of batches.slice(0, cutAt)) first.ingest(b);
      episodes.push(...first.takeEpisodes()); findings.push(...first.takeFindings());
      const json = first.snapshot();
      const second = Correlator.restore(json);
      for (const b of batches.slice(cutAt)) second.ingest(b);
      second.finish();
      episodes.push(...second.takeEpisodes()); findings.push(...second.takeFindings());
      expect(canonical({ episodes, findings, stats: second.stats })).toEqual(reference);
      expect(second.stats.events).toBe(batches.reduce((n, b) => n + (b.events?.length ?? 0), 0));
    }
  });
});
