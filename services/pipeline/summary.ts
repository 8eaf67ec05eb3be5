// The end-of-run summary, read back from the store (deduplicated, bounded memory however long the run):
// the same Summary shape `analyze` prints, so services/report renders it. Percentiles here are merged
// from the rollups' t-digest states (approximate), where `analyze` computes them exactly.
import type { OpenLockSummary, Summary, SummaryStats } from '../report/index.js';
import type { LatencyRow, StoreReader } from '../store/queries.js';

const stats = (r: LatencyRow | undefined) =>
  ({ count: r?.count ?? 0, p50Ns: r?.p50 ?? 0, p90Ns: r?.p90 ?? 0, p99Ns: r?.p99 ?? 0, maxNs: r?.max ?? 0 });

/** `openLocks`: the correlator's locks still held at the end (the store has no record of an unreleased episode). */
export async function storeSummary(reader: StoreReader, input: SummaryStats, openLocks: OpenLockSummary[] = []): Promise<Summary> {
  const [counts, byFinding, all, byKernel, byDriver, histogram, worst] = await Promise.all([
    reader.counts(), reader.findingCounts(),
    reader.latency({ metric: 'revoke', groupBy: [] }),
    reader.latency({ metric: 'revoke', groupBy: ['kernel'] }),
    reader.latency({ metric: 'revoke', groupBy: ['driver'] }),
    reader.revokeHistogram(), reader.worstDevices(5),
  ]);
  const byKind: Record<string, number> = {};
  const bySeverity: Record<string, number> = { CRITICAL: 0, WARNING: 0, INFO: 0 };
  let inconclusive = 0;
  for (const f of byFinding) {
    byKind[f.kind] = (byKind[f.kind] ?? 0) + f.count;
    bySeverity[f.severity] = (bySeverity[f.severity] ?? 0) + f.count;
    if (f.inconclusive) inconclusive += f.count;
  }
  const worstDevices: Summary['worstDevices'] = {};
  for (const w of worst) (worstDevices[w.kind] ??= []).push({ hostname: w.hostname, device: w.device, driver: w.driver, count: w.count, worstSeverity: w.worstSeverity });
  const group = (rows: LatencyRow[], key: 'kernel' | 'driver') =>
    Object.fromEntries(rows.filter((r) => r.count > 0).map((r) => [r.group[key] || '(unknown)', stats(r)]));
  return {
    input: {
      batches: input.batches ?? 0, events: input.events ?? 0, duplicateEvents: input.duplicateEvents ?? 0,
      lostEvents: input.lostEvents ?? 0, lateEvents: input.lateEvents ?? 0, invalidEvents: input.invalidEvents ?? 0,
      skippedInput: input.skippedInput ?? 0,
    },
    events: input.events ?? counts.events,
    episodes: counts.episodes,
    revokeEpisodes: counts.revokeEpisodes,
    incompleteEpisodes: counts.incompleteEpisodes,
    findings: { total: counts.findings, byKind, bySeverity, inconclusive },
    revokeLatency: { all: stats(all[0]), byKernel: group(byKernel, 'kernel'), byDriver: group(byDriver, 'driver'), histogram },
    worstDevices,
    openLocks,
  };
}
