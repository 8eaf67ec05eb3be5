// The analyze summary: exact nearest-rank percentiles, groupings, worst devices, histogram, table units.
import { describe, expect, it } from 'vitest';
import { FindingKind, Severity, TriggerKind, type Episode, type Finding } from '../services/core/model.js';
import { bar, formatNs, latencyStats, nearestRank, renderTable, summarize } from '../services/report/index.js';

function episode(p: Partial<Episode>): Episode {
  return {
    episodeId: 'e', hostname: 'h', bootId: 'b', device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.12.1',
    trigger: TriggerKind.RESET, groupId: 0, acquireTsNs: 1, releaseTsNs: 2, revoke: true, lockWaitNs: 0, holdNs: 1,
    revokeNs: 0, zapNs: 0, dmabufRevokeNs: 0, moveNs: 0, zapCount: 1, dmabufCount: 0, importerCount: 0,
    legacyMappings: 1, dmabufMappings: 0, complete: true, pid: 0, comm: '', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0,
    cgroupId: 0, vm: '', podUid: '', podName: '', containerId: '', acquireStackId: 0, ...p,
  };
}

function finding(p: Partial<Finding>): Finding {
  return {
    findingId: 'f', kind: FindingKind.SKIPPED_ZAP, severity: Severity.CRITICAL, hostname: 'h', bootId: 'b',
    device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.12.1', episodeId: 'e', tsNs: 1, inconclusive: false,
    evidence: '{}', ...p,
  };
}

describe('nearest-rank percentiles', () => {
  it('are observed values at rank ceil(p·n)', () => {
    const v = Array.from({ length: 100 }, (_, i) => (i + 1) * 10); // 10..1000
    expect(latencyStats(v)).toEqual({ count: 100, p50Ns: 500, p90Ns: 900, p99Ns: 990, maxNs: 1000 });
    expect(latencyStats([7])).toEqual({ count: 1, p50Ns: 7, p90Ns: 7, p99Ns: 7, maxNs: 7 });
    expect(latencyStats([])).toEqual({ count: 0, p50Ns: 0, p90Ns: 0, p99Ns: 0, maxNs: 0 });
    expect(nearestRank([1, 2, 3, 4], 50)).toBe(2); // rank ceil(2) = 2
    expect(nearestRank([1, 2, 3, 4, 5], 50)).toBe(3);
    expect(latencyStats([3e6, 1e3, 2e9, 5e4]).p50Ns).toBe(5e4); // numeric, not lexicographic, sort
  });
});

describe('summarize', () => {
  const episodes = [
    episode({ revokeNs: 100_000 }), episode({ revokeNs: 300_000, driver: 'nvgrace-gpu', kernelRelease: '7.2.0' }),
    episode({ revokeNs: 2_000_000 }), episode({ revoke: false }), episode({ revoke: true, revokeNs: 0 }),
    // not measured: loss inside the episode, and one that began before observation
    episode({ revokeNs: 9_000_000, complete: false }), episode({ acquireTsNs: 0, revokeNs: 8_000_000, complete: false }),
  ];
  const findings = [
    finding({}), finding({ severity: Severity.WARNING, inconclusive: true }),
    finding({ device: '0000:af:00.0', hostname: 'h2' }),
    finding({ kind: FindingKind.REDUNDANT_ZAP, severity: Severity.INFO }),
  ];
  const s = summarize(episodes, findings, { batches: 3, events: 40, lostEvents: 2, skippedInput: 1 });

  it('counts', () => {
    expect(s).toMatchObject({ events: 40, episodes: 7, revokeEpisodes: 6, incompleteEpisodes: 2,
      input: { batches: 3, events: 40, lostEvents: 2, skippedInput: 1, lateEvents: 0 } });
    expect(s.findings).toEqual({
      total: 4, inconclusive: 1, bySeverity: { CRITICAL: 2, WARNING: 1, INFO: 1 },
      byKind: { SKIPPED_ZAP: 3, REDUNDANT_ZAP: 1, UNPAIRED_REVOKE: 0, UNREVOKE_WITHOUT_REVOKE: 0, LOCK_NOT_HELD: 0, LOCK_HELD_OPEN: 0, SLOW_REVOKE: 0,
        FAULT_WHILE_REVOKED: 0 },
    });
  });

  it('revoke latency only over episodes that revoked something and were measured, by kernel and by driver', () => {
    expect(s.revokeLatency.all).toEqual({ count: 3, p50Ns: 300_000, p90Ns: 2_000_000, p99Ns: 2_000_000, maxNs: 2_000_000 });
    expect(Object.keys(s.revokeLatency.byKernel)).toEqual(['6.12.1', '7.2.0']);
    expect(s.revokeLatency.byKernel['6.12.1']!.count).toBe(2);
    expect(s.revokeLatency.byDriver['nvgrace-gpu']).toEqual({ count: 1, p50Ns: 300_000, p90Ns: 300_000, p99Ns: 300_000, maxNs: 300_000 });
  });

  it('worst devices per kind: most findings first, then worst severity', () => {
    expect(s.worstDevices.SKIPPED_ZAP).toEqual([
      { hostname: 'h', device: '0000:3b:00.0', driver: 'vfio-pci', count: 2, worstSeverity: 'CRITICAL' },
      { hostname: 'h2', device: '0000:af:00.0', driver: 'vfio-pci', count: 1, worstSeverity: 'CRITICAL' },
    ]);
    expect(s.worstDevices.SLOW_REVOKE).toBeUndefined();
  });

  it('histogram: half-decade buckets covering every value', () => {
    const h = s.revokeLatency.histogram;
    expect(h[0]).toEqual({ loNs: 100_000, hiNs: 316_228, count: 2 }); // 100 µs and 300 µs
    expect(h.at(-1)).toEqual({ loNs: 1_000_000, hiNs: 3_162_278, count: 1 });
    expect(h.reduce((n, b) => n + b.count, 0)).toBe(3);
  });
});

describe('table', () => {
  it('units and bars', () => {
    expect(formatNs(850)).toBe('850 ns');
    expect(formatNs(12_345)).toBe('12.3 µs');
    expect(formatNs(4_560_000)).toBe('4.56 ms');
    expect(formatNs(1_234_000_000)).toBe('1.23 s');
    expect(bar(1, 4)).toBe('████');
    expect(bar(0.5, 3)).toBe('█▌');
    expect(bar(0.001, 10)).toBe('▏');
    expect(bar(0, 10)).toBe('');
  });

  it('renders every section, and says so when there is no revoke', () => {
    const t = renderTable(summarize([episode({ revokeNs: 100_000 })], [finding({})]), { title: 'x.pb' });
    for (const s of ['revokescope analyze: x.pb', 'Revoke latency', 'by kernel', 'by driver', 'Findings by kind', 'Revoke latency histogram']) {
      expect(t).toContain(s);
    }
    expect(renderTable(summarize([], []))).toContain('no revoke episodes that revoked something');
  });
});
