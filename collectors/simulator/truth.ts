// Ground truth of a simulated fleet: what was injected and exactly which findings the correlator must
// report (DESIGN §4). Plain JSON-able data, written beside a trace as FILE.truth.json.
import type { Episode, Finding } from '../../services/core/model.js';
import { FindingKind, Severity } from '../../services/core/model.js';

export type FaultName =
  | 'forgot_opt_in' | 'forgot_opt_in_unpopulated' | 'forgot_opt_in_unseen' | 'no_opt_out' | 'double_zap'
  | 'missing_unrevoke' | 'unrevoke_without_revoke' | 'zap_outside_lock' | 'slow_importer' | 'stuck_lock'
  | 'ring_loss' | 'unknown_device';

export interface TruthFinding {
  /** FindingKind name, e.g. 'SKIPPED_ZAP'. */
  kind: string;
  /** Severity name, e.g. 'CRITICAL'. */
  severity: string;
  hostname: string;
  bootId: string;
  device: string;
  driver: string;
  kernelRelease: string;
  /** LockAcquire ts of the episode the finding belongs to; 0 for findings outside any episode (LOCK_NOT_HELD). */
  acquireTsNs: number;
  /** LockRelease ts of that episode; 0 outside an episode. */
  releaseTsNs: number;
  /** The ts the finding is about: the zap (REDUNDANT_ZAP, LOCK_NOT_HELD), the unrevoke (UNREVOKE_WITHOUT_REVOKE),
   * acquire + 5 s (LOCK_HELD_OPEN), the end of the last revoking step (SLOW_REVOKE), else the release. Match on acquireTsNs when it is non-zero. */
  tsNs: number;
  inconclusive: boolean;
  /** Which injected fault caused it. */
  fault: FaultName;
  /** Id of the injected scenario (one device each). */
  scenario: string;
}

export interface LossWindow {
  hostname: string; bootId: string;
  /** (max ts of the host's earlier batches) − 2 s. */
  fromTsNs: number;
  /** (min ts of the first batch after the loss) + 2 s. */
  toTsNs: number;
  /** Events lost. */
  lost: number;
  /** 'dropped': ring-buffer loss reported in EventBatch.dropped; 'seq_gap': first_seq jumps. */
  mode: 'dropped' | 'seq_gap';
  scenario: string;
}

export interface TruthDevice {
  device: string; driver: string;
  /** Hot-reset set: devices sharing it are reset together (0: none). */
  group: number;
  /** DeviceInfo and snapshot BarMmaps were emitted at collector start. */
  known: boolean;
  zapBarsOnRevoke: boolean; dmabufBarMmap: boolean;
  scenario?: string;
}

export interface TruthHost {
  hostname: string; bootId: string; kernelRelease: string; era: string; arch: string; flavor: string;
  /** The probes read i_mmap (BTF): Zap.had_vmas and DmaBufRevoke.device_has_vmas are set. */
  readsVmas: boolean;
  capabilities: string[];
  startTsNs: number;
  devices: TruthDevice[];
}

export interface InjectedFault {
  scenario: string; fault: FaultName; hostname: string; bootId: string; device: string; driver: string;
  kernelRelease: string; era: string; atTsNs: number; expectedFindings: number;
}

export interface FleetStats {
  batches: number; events: number; episodes: number; lostEvents: number;
  episodesByEra: Record<string, number>;
  episodesByDriver: Record<string, number>;
  triggers: Record<string, number>;
}

export interface FleetTruth {
  seed: number;
  hosts: TruthHost[];
  faults: InjectedFault[];
  /** Faults that could not be placed (no host of a fitting era, or the run is too short). */
  skippedFaults: { fault: FaultName; reason: string }[];
  findings: TruthFinding[];
  lossWindows: LossWindow[];
  stats: FleetStats;
}

export function kindName(k: number): string { return FindingKind[k] ?? String(k); }
export function severityName(s: number): string { return Severity[s] ?? String(s); }

/** Mark findings whose episode overlaps a loss window of its host as inconclusive (DESIGN §4: an episode
 * touched by loss is incomplete; all its findings are inconclusive). */
export function applyLossWindows(findings: TruthFinding[], windows: readonly LossWindow[]): void {
  for (const f of findings) {
    for (const w of windows) {
      if (w.hostname !== f.hostname || w.bootId !== f.bootId) continue;
      const overlaps = f.acquireTsNs > 0
        ? f.releaseTsNs > w.fromTsNs && f.acquireTsNs <= w.toTsNs
        : f.tsNs >= w.fromTsNs && f.tsNs <= w.toTsNs;
      if (overlaps) f.inconclusive = true;
    }
  }
}

export interface TruthComparison {
  matched: { truth: TruthFinding; finding: Finding }[];
  /** Injected but not reported (recall misses). */
  missing: TruthFinding[];
  /** Reported but not injected (precision misses). */
  unexpected: Finding[];
  /** Matched on kind/host/device/episode but severity, ts or inconclusive differ. */
  mismatched: { truth: TruthFinding; finding: Finding; why: string }[];
}

/** Compare correlator output with the truth: a finding matches on kind + hostname + boot_id + device and
 * either its episode's acquire ts (findings inside an episode) or its ts (findings outside one). */
export function compareFindings(truth: Pick<FleetTruth, 'findings'>, findings: readonly Finding[], episodes: readonly Episode[]): TruthComparison {
  const acquireOf = new Map<string, number>();
  for (const e of episodes) acquireOf.set(e.episodeId ?? '', Number(e.acquireTsNs ?? 0));
  const key = (kind: string, host: string, boot: string, dev: string, at: number) => `${kind}|${host}|${boot}|${dev}|${at}`;
  const pool = new Map<string, TruthFinding[]>();
  for (const t of truth.findings) {
    const k = key(t.kind, t.hostname, t.bootId, t.device, t.acquireTsNs > 0 ? t.acquireTsNs : t.tsNs);
    const l = pool.get(k); if (l) l.push(t); else pool.set(k, [t]);
  }
  const out: TruthComparison = { matched: [], missing: [], unexpected: [], mismatched: [] };
  for (const f of findings) {
    const kind = kindName(Number(f.kind ?? 0));
    const ts = Number(f.tsNs ?? 0);
    const host = f.hostname ?? '', boot = f.bootId ?? '', dev = f.device ?? '';
    const acq = f.episodeId ? acquireOf.get(f.episodeId) : undefined;
    const candidates = [acq, ts].filter((x): x is number => x !== undefined && x > 0);
    let hit: TruthFinding | undefined;
    for (const at of candidates) {
      const l = pool.get(key(kind, host, boot, dev, at));
      if (!l || l.length === 0) continue;
      // REDUNDANT_ZAP is per zap: several can share an episode; take the one with the nearest ts.
      l.sort((a, b) => Math.abs(a.tsNs - ts) - Math.abs(b.tsNs - ts));
      hit = l.shift();
      break;
    }
    if (!hit) { out.unexpected.push(f); continue; }
    const sev = severityName(Number(f.severity ?? 0));
    const why: string[] = [];
    if (sev !== hit.severity) why.push(`severity ${sev} != ${hit.severity}`);
    if (ts !== hit.tsNs) why.push(`ts ${ts} != ${hit.tsNs}`);
    if (Boolean(f.inconclusive) !== hit.inconclusive) why.push(`inconclusive ${String(Boolean(f.inconclusive))} != ${String(hit.inconclusive)}`);
    if (why.length) out.mismatched.push({ truth: hit, finding: f, why: why.join(', ') });
    else out.matched.push({ truth: hit, finding: f });
  }
  for (const l of pool.values()) out.missing.push(...l);
  return out;
}
