// Simulated fleets for the kernel A/B tests (compare, the latency_regression rule, the kernel-rollout dashboard): a
// fleet from the simulator's public API (FleetSimulator options only) correlated by the real correlator, and copies
// of it as another kernel on other hosts, with revoke latency scaled by a known amount.
import { FleetSimulator } from '../../collectors/simulator/index.js';
import { analyzeBatches } from '../../services/core/analysis.js';
import type { Episode, Finding } from '../../services/core/model.js';
import { StrataBuilder, type KernelInput } from '../../services/report/compare.js';
import type { ClickHouseStore } from '../../services/store/clickhouse-store.js';

export interface Correlated { episodes: Episode[]; findings: Finding[] }

export function correlatedFleet(opts: { hosts: number; durationNs: number; seed: number }): Correlated {
  const { episodes, findings } = analyzeBatches(new FleetSimulator(opts).batches());
  return { episodes, findings };
}

/** The same episodes and findings as kernel `prefix + release` on hosts `prefix + hostname` (so one store holds
 * both fleets), with every revoke latency × scale; `release` renames the kernel releases first. */
export function asKernel(c: Correlated, prefix: string, scale = 1, release = (r: string): string => r): Correlated {
  const id = (s: string): string => (s ? `${prefix}${s}` : s);
  return {
    episodes: c.episodes.map((e) => ({ ...e, episodeId: id(e.episodeId), hostname: prefix + e.hostname, kernelRelease: prefix + release(e.kernelRelease),
      revokeNs: Math.round(Number(e.revokeNs) * scale) })),
    findings: c.findings.map((f) => ({ ...f, findingId: id(f.findingId), episodeId: id(f.episodeId), hostname: prefix + f.hostname,
      kernelRelease: prefix + release(f.kernelRelease) })),
  };
}

/** The trace path's view of a kernel selection (what the store path must read back). */
export function strataOf(c: Correlated, kernel: string): KernelInput {
  const b = new StrataBuilder(kernel);
  for (const e of c.episodes) b.addEpisode(e);
  for (const f of c.findings) b.addFinding(f);
  return b.build();
}

export async function writeFleets(store: ClickHouseStore, fleets: Correlated[]): Promise<void> {
  for (const c of fleets) {
    await store.writeEpisodes(c.episodes);
    await store.writeFindings(c.findings);
  }
  await store.flush();
}
