// The summary of an analysis: counts, revoke latency percentiles by kernel and by driver, findings by
// kind and severity, the worst devices per finding kind and a log-scale latency histogram. Pure.
// SummaryBuilder takes episodes and findings one at a time (analyze streams them); summarize() is
// the same over arrays. Revoke latency counts revoke episodes that revoked something (revoke_ns > 0,
// docs/rules.md: "only defined for revoke episodes that revoked something") and where it was measured, as the store's
// rollups do (LATENCY_METRICS.revoke): a complete episode whose acquire was seen (one that began before
// observation has no acquire to measure from; loss inside one can hide its last revoking step).
import type { OpenLock } from '../core/correlator/index.js';
import { FindingKind, Severity, TriggerKind, type Episode, type Finding } from '../core/model.js';
import { latencyStats, type LatencyStats } from './percentiles.js';

export type { LatencyStats } from './percentiles.js';

export interface SummaryStats {
  batches?: number;
  events?: number;
  duplicateEvents?: number;
  lostEvents?: number;
  lateEvents?: number;
  invalidEvents?: number;
  /** Bad trace lines/records skipped with --lenient. */
  skippedInput?: number;
}

export interface DeviceFindings {
  hostname: string;
  device: string;
  driver: string;
  count: number;
  /** Highest severity among them, by name. */
  worstSeverity: string;
}

export interface HistogramBucket { loNs: number; hiNs: number; count: number }

/** An episode still holding memory_lock at the end of the input (docs/rules.md: listed as open). */
export interface OpenLockSummary {
  hostname: string; device: string; episodeId: string; acquireTsNs: number; tid: number; comm: string; trigger: string;
  /** Host's last time seen (event or heartbeat) − acquire. */
  heldNs: number;
}

export interface Summary {
  input: Required<SummaryStats>;
  /** Events the correlator accepted. */
  events: number;
  episodes: number;
  revokeEpisodes: number;
  /** Episodes touched by loss or begun before observation (complete = false); not in the latency. */
  incompleteEpisodes: number;
  findings: {
    total: number;
    /** Every finding kind by name, zero included. */
    byKind: Record<string, number>;
    bySeverity: Record<string, number>;
    inconclusive: number;
  };
  /** Nearest-rank percentiles of revoke_ns, in ns. */
  revokeLatency: {
    all: LatencyStats;
    byKernel: Record<string, LatencyStats>;
    byDriver: Record<string, LatencyStats>;
    /** Half-decade buckets [loNs, hiNs), from the first to the last non-empty one. */
    histogram: HistogramBucket[];
  };
  /** Per finding kind that occurred: devices with the most findings of that kind (at most 5). */
  worstDevices: Record<string, DeviceFindings[]>;
  /** Episodes still holding memory_lock at the end of the input, longest held first. */
  openLocks: OpenLockSummary[];
}

const WORST_DEVICES = 5;

/** The correlator's open locks (Correlator.openLocks() after finish()) as the summary lists them. */
export function openLockSummaries(locks: readonly OpenLock[]): OpenLockSummary[] {
  return locks.map((o) => ({ hostname: o.hostname, device: o.device, episodeId: o.episodeId, acquireTsNs: o.acquireTsNs, tid: o.tid,
    comm: o.comm, trigger: TriggerKind[o.trigger] ?? String(o.trigger), heldNs: o.heldNs }));
}
const severityRank = Severity as unknown as Record<string, number>;
export const UNKNOWN = '(unknown)';

function enumName(values: object, n: number): string {
  const name = (values as Record<number, string | undefined>)[n];
  return typeof name === 'string' ? name : String(n);
}

export const findingKindNames: string[] = Object.keys(FindingKind).filter((k) => k !== 'FINDING_KIND_UNSPECIFIED');
export const severityNames: string[] = ['CRITICAL', 'WARNING', 'INFO'];

/** Bucket edges 10^(k/2) ns: 1 ns, 3.16 ns, 10 ns, ... */
function bucketIndex(ns: number): number {
  return ns < 1 ? 0 : Math.floor(2 * Math.log10(ns) + 1e-9);
}

export class SummaryBuilder {
  private episodes = 0;
  private revokeEpisodes = 0;
  private incomplete = 0;
  private all: number[] = [];
  private byKernel = new Map<string, number[]>();
  private byDriver = new Map<string, number[]>();
  private findingsTotal = 0;
  private inconclusive = 0;
  private byKind = new Map<string, number>();
  private bySeverity = new Map<string, number>();
  private devices = new Map<string, Map<string, DeviceFindings>>();

  addEpisode(e: Episode): void {
    this.episodes++;
    if (!e.complete) this.incomplete++;
    if (!e.revoke) return;
    this.revokeEpisodes++;
    const ns = Number(e.revokeNs);
    if (!(ns > 0) || !e.complete || !(Number(e.acquireTsNs) > 0)) return;
    this.all.push(ns);
    push(this.byKernel, e.kernelRelease || UNKNOWN, ns);
    push(this.byDriver, e.driver || UNKNOWN, ns);
  }

  addFinding(f: Finding): void {
    this.findingsTotal++;
    if (f.inconclusive) this.inconclusive++;
    const kind = enumName(FindingKind, f.kind ?? 0);
    const severity = enumName(Severity, f.severity ?? 0);
    this.byKind.set(kind, (this.byKind.get(kind) ?? 0) + 1);
    this.bySeverity.set(severity, (this.bySeverity.get(severity) ?? 0) + 1);
    let perKind = this.devices.get(kind);
    if (!perKind) this.devices.set(kind, perKind = new Map());
    const key = `${f.hostname}\u0000${f.device}`;
    const d = perKind.get(key);
    if (d) {
      d.count++;
      if ((f.severity ?? 0) > severityRank[d.worstSeverity]!) d.worstSeverity = severity;
      if (!d.driver && f.driver) d.driver = f.driver;
    } else {
      perKind.set(key, { hostname: f.hostname ?? '', device: f.device ?? '', driver: f.driver ?? '', count: 1, worstSeverity: severity });
    }
  }

  /** Revoke latency histograms per kernel and per driver over the overall histogram's buckets. */
  histograms(): GroupHistograms {
    if (this.all.length === 0) return { byKernel: {}, byDriver: {} };
    let lo = Infinity, hi = -Infinity;
    for (const v of this.all) { const i = bucketIndex(v); if (i < lo) lo = i; if (i > hi) hi = i; }
    const per = (m: Map<string, number[]>): Record<string, HistogramBucket[]> => {
      const out: Record<string, HistogramBucket[]> = {};
      for (const key of [...m.keys()].sort()) out[key] = histogramOf(m.get(key)!, { lo, hi });
      return out;
    };
    return { byKernel: per(this.byKernel), byDriver: per(this.byDriver) };
  }

  build(stats: SummaryStats = {}, openLocks: OpenLockSummary[] = []): Summary {
    const byKind: Record<string, number> = {};
    for (const k of findingKindNames) byKind[k] = this.byKind.get(k) ?? 0;
    for (const [k, n] of this.byKind) if (!(k in byKind)) byKind[k] = n;
    const bySeverity: Record<string, number> = {};
    for (const s of severityNames) bySeverity[s] = this.bySeverity.get(s) ?? 0;
    for (const [s, n] of this.bySeverity) if (!(s in bySeverity)) bySeverity[s] = n;
    const worstDevices: Record<string, DeviceFindings[]> = {};
    for (const kind of Object.keys(byKind)) {
      const perKind = this.devices.get(kind);
      if (!perKind) continue;
      worstDevices[kind] = [...perKind.values()].sort((a, b) =>
        b.count - a.count
        || severityRank[b.worstSeverity]! - severityRank[a.worstSeverity]!
        || a.hostname.localeCompare(b.hostname) || a.device.localeCompare(b.device)).slice(0, WORST_DEVICES);
    }
    const histogram = histogramOf(this.all);
    return {
      input: {
        batches: stats.batches ?? 0, events: stats.events ?? 0, duplicateEvents: stats.duplicateEvents ?? 0,
        lostEvents: stats.lostEvents ?? 0, lateEvents: stats.lateEvents ?? 0, invalidEvents: stats.invalidEvents ?? 0,
        skippedInput: stats.skippedInput ?? 0,
      },
      events: stats.events ?? 0,
      episodes: this.episodes,
      revokeEpisodes: this.revokeEpisodes,
      incompleteEpisodes: this.incomplete,
      findings: { total: this.findingsTotal, byKind, bySeverity, inconclusive: this.inconclusive },
      revokeLatency: { all: latencyStats(this.all), byKernel: groupStats(this.byKernel), byDriver: groupStats(this.byDriver), histogram },
      worstDevices,
      openLocks: [...openLocks].sort((a, b) => b.heldNs - a.heldNs || a.hostname.localeCompare(b.hostname) || a.device.localeCompare(b.device)),
    };
  }
}

/** Revoke latency histograms per kernel and per driver, all on the edges of the overall histogram (the HTML report
 * draws them side by side). */
export interface GroupHistograms { byKernel: Record<string, HistogramBucket[]>; byDriver: Record<string, HistogramBucket[]> }

function push(m: Map<string, number[]>, key: string, v: number): void {
  const a = m.get(key);
  if (a) a.push(v);
  else m.set(key, [v]);
}

function groupStats(m: Map<string, number[]>): Record<string, LatencyStats> {
  const out: Record<string, LatencyStats> = {};
  for (const key of [...m.keys()].sort()) out[key] = latencyStats(m.get(key)!);
  return out;
}

/** Half-decade buckets of `values` from the first to the last non-empty one, or over [lo, hi] (bucket indexes) when
 * given, so several histograms share their edges. */
function histogramOf(values: number[], range?: { lo: number; hi: number }): HistogramBucket[] {
  if (values.length === 0 && !range) return [];
  const counts = new Map<number, number>();
  let lo = range?.lo ?? Infinity;
  let hi = range?.hi ?? -Infinity;
  for (const v of values) {
    const i = bucketIndex(v);
    counts.set(i, (counts.get(i) ?? 0) + 1);
    if (!range && i < lo) lo = i;
    if (!range && i > hi) hi = i;
  }
  const out: HistogramBucket[] = [];
  for (let i = lo; i <= hi; i++) {
    out.push({ loNs: Math.round(10 ** (i / 2)), hiNs: Math.round(10 ** ((i + 1) / 2)), count: counts.get(i) ?? 0 });
  }
  return out;
}

/** Summary of complete arrays of episodes and findings (same as feeding a SummaryBuilder). */
export function summarize(episodes: Iterable<Episode>, findings: Iterable<Finding>, stats: SummaryStats = {}): Summary {
  const b = new SummaryBuilder();
  for (const e of episodes) b.addEpisode(e);
  for (const f of findings) b.addFinding(f);
  return b.build(stats);
}
