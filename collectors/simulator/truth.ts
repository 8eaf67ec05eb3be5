// Ground truth of a simulated fleet: what was injected, which findings a correct correlator reports (docs/rules.md,
// judged on the simulator's own kernel model by judge.ts), certain or inconclusive, and the fields of the injected
// scenarios' episodes. Plain JSON-able data, written beside a trace as FILE.truth.json.
import type { Episode, Finding } from '../../services/core/model.js';
import { FindingKind, Severity, TriggerKind } from '../../services/core/model.js';

export type FaultName =
  | 'forgot_opt_in' | 'forgot_opt_in_unpopulated' | 'forgot_opt_in_unseen' | 'no_opt_out' | 'double_zap'
  | 'missing_unrevoke' | 'unrevoke_without_revoke' | 'zap_outside_lock' | 'slow_importer' | 'stuck_lock'
  | 'ring_loss' | 'unknown_device'
  // field conditions (docs/rules.md): most of them must yield nothing certain
  | 'late_start_in_window' | 'late_start_memory_off' | 'failed_ioctl' | 'failed_ioctl_older_collector'
  | 'other_task_config_write' | 'unopened_sibling' | 'vf_memory_off' | 'vf_older_collector' | 'loss_long_before'
  | 'fault_while_revoked' | 'repeated_memory_off' | 'nvgrace_empty_zaps' | 'hung_reset' | 'reset_from_d3hot'
  | 'zap_by_other_task' | 'skipped_zap_unconditional' | 'remap_after_unpaired' | 'late_start_before_acquire';

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
  /** LockAcquire ts of the episode the finding belongs to; 0 for findings outside any episode (LOCK_NOT_HELD,
   * FAULT_WHILE_REVOKED) or in an episode that began before observation. */
  acquireTsNs: number;
  /** LockRelease ts of that episode; 0 outside an episode or while it is still held. */
  releaseTsNs: number;
  /** The ts the finding is about (docs/rules.md §4): the zap, the unrevoke, the fault, acquire + 5 s, the end of
   * the last revoking step, else the release. */
  tsNs: number;
  inconclusive: boolean;
  /** The rule that fired and, when inconclusive, the pieces that were unknown. */
  why: string;
  /** Which injected scenario caused it ('workload' outside them: a correct workload whose state a loss made unknown). */
  fault: FaultName | 'workload';
  /** Id of the injected scenario (one device each); '' for the workload. */
  scenario: string;
}

/** An episode of a scenario device as a correct correlator reports it (compared field by field). */
export interface TruthEpisode {
  hostname: string; bootId: string; device: string; scenario: string;
  /** 0: began before observation. */
  acquireTsNs: number;
  /** 0: still held at the end. */
  releaseTsNs: number;
  /** TriggerKind name ('TRIGGER_UNSPECIFIED': none). */
  trigger: string;
  groupId: number;
  pid: number; comm: string;
  complete: boolean;
  triggerRet: number;
  staleTriggers: number;
  intendedEmptyZaps: number;
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
  /** What the collector sent at its start: 'full' DeviceInfo with the state fields, 'basic' (older collectors:
   * driver and flags), 'none' (never described). Snapshot BarMmaps follow any DeviceInfo. */
  described: 'full' | 'basic' | 'none';
  /** A virtual function (pdev->no_command_memory). */
  vf: boolean;
  zapBarsOnRevoke: boolean; dmabufBarMmap: boolean;
  scenario?: string;
}

export interface TruthHost {
  hostname: string; bootId: string; kernelRelease: string; era: string; arch: string; flavor: string;
  /** 'current' (TriggerEnd, DeviceInfo state fields, markers) or 'older'. */
  collector: string;
  /** The probes read i_mmap (BTF): Zap.had_vmas and DmaBufRevoke.device_has_vmas are set. */
  readsVmas: boolean;
  capabilities: string[];
  startTsNs: number;
  devices: TruthDevice[];
}

export interface InjectedFault {
  scenario: string; fault: FaultName; hostname: string; bootId: string; device: string; driver: string;
  kernelRelease: string; era: string; collector: string; atTsNs: number;
  /** What the scenario was written to produce ('KIND/SEVERITY/certain|inconclusive'), sorted; the judge's findings
   * for the scenario must be exactly these (test/simulator.test.ts). */
  declared: string[];
  /** How many findings the judge recorded for it. */
  expectedFindings: number;
}

export interface FleetStats {
  batches: number; events: number; episodes: number; lostEvents: number;
  /** Batches with no events (heartbeats: at least one a second from an idle collector). */
  heartbeats: number;
  episodesByEra: Record<string, number>;
  episodesByDriver: Record<string, number>;
  triggers: Record<string, number>;
}

export interface FleetTruth {
  seed: number;
  /** The truth was judged (SimulateOptions.truth): without it findings and episodes are empty. */
  judged: boolean;
  hosts: TruthHost[];
  faults: InjectedFault[];
  /** Faults that could not be placed (no host of a fitting era, or the run is too short). */
  skippedFaults: { fault: FaultName; reason: string }[];
  findings: TruthFinding[];
  /** Episodes of the scenario devices. */
  episodes: TruthEpisode[];
  lossWindows: LossWindow[];
  stats: FleetStats;
}

export function kindName(k: number): string { return FindingKind[k] ?? String(k); }
export function severityName(s: number): string { return Severity[s] ?? String(s); }

/** A finding's declared form: 'KIND/SEVERITY/certain' or '…/inconclusive'. */
export function declaredForm(f: Pick<TruthFinding, 'kind' | 'severity' | 'inconclusive'>): string {
  return `${f.kind}/${f.severity}/${f.inconclusive ? 'inconclusive' : 'certain'}`;
}

/** docs/rules.md §2: lost events lie somewhere in their window of ts, so an episode that overlaps a loss window of its
 * host is incomplete and its findings inconclusive, and so is a finding outside an episode whose moment lies in one.
 * (judge.ts has already made inconclusive what loss left unknown after it.) */
export function applyLossWindows(findings: TruthFinding[], episodes: TruthEpisode[], windows: readonly LossWindow[]): void {
  if (windows.length === 0) return;
  const touched = (host: string, boot: string, from: number, to: number) =>
    windows.some((w) => w.hostname === host && w.bootId === boot && to >= w.fromTsNs && from <= w.toTsNs);
  for (const f of findings) {
    const span = f.acquireTsNs > 0 ? [f.acquireTsNs, f.releaseTsNs || Infinity] : [f.tsNs, f.tsNs];
    if (touched(f.hostname, f.bootId, span[0]!, span[1]!)) f.inconclusive = true;
  }
  for (const e of episodes) {
    if (e.acquireTsNs > 0 && touched(e.hostname, e.bootId, e.acquireTsNs, e.releaseTsNs || Infinity)) e.complete = false;
  }
}

export interface TruthComparison {
  matched: { truth: TruthFinding; finding: Finding }[];
  /** In the truth but not reported (recall misses). */
  missing: TruthFinding[];
  /** Reported but not in the truth (precision misses). */
  unexpected: Finding[];
  /** Matched on kind/host/device/episode but severity, ts or inconclusive differ. */
  mismatched: { truth: TruthFinding; finding: Finding; why: string }[];
}

/** Compare correlator output with the truth: a finding matches on kind + hostname + boot_id + device and either its
 * episode's acquire ts or its own ts (findings outside an episode, episodes that began before observation, and
 * episodes still held at the end, which the correlator lists as open rather than emitting). */
export function compareFindings(truth: Pick<FleetTruth, 'findings'>, findings: readonly Finding[], episodes: readonly Episode[]): TruthComparison {
  const acquireOf = new Map<string, number>();
  for (const e of episodes) acquireOf.set(e.episodeId ?? '', Number(e.acquireTsNs ?? 0));
  const group = (kind: string, host: string, boot: string, dev: string) => `${kind}|${host}|${boot}|${dev}`;
  const pool = new Map<string, TruthFinding[]>();
  for (const t of truth.findings) {
    const k = group(t.kind, t.hostname, t.bootId, t.device);
    const l = pool.get(k); if (l) l.push(t); else pool.set(k, [t]);
  }
  const out: TruthComparison = { matched: [], missing: [], unexpected: [], mismatched: [] };
  for (const f of findings) {
    const kind = kindName(Number(f.kind ?? 0));
    const ts = Number(f.tsNs ?? 0);
    const l = pool.get(group(kind, f.hostname ?? '', f.bootId ?? '', f.device ?? ''));
    const acq = f.episodeId ? acquireOf.get(f.episodeId) : undefined;
    let best = -1;
    if (l) {
      // Same episode (by its acquire) first, nearest ts among those (REDUNDANT_ZAP: several per episode); else same ts.
      let bestD = Infinity;
      for (let i = 0; i < l.length; i++) {
        const t = l[i]!;
        const sameEpisode = acq !== undefined && acq > 0 && t.acquireTsNs === acq;
        if (!sameEpisode && t.tsNs !== ts) continue;
        const d = Math.abs(t.tsNs - ts) + (sameEpisode ? 0 : 0.5);
        if (d < bestD) { bestD = d; best = i; }
      }
    }
    if (best < 0) { out.unexpected.push(f); continue; }
    const hit = l!.splice(best, 1)[0]!;
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

/** Compare the scenario devices' episodes with the correlator's: each truth episode must be reported (matched by
 * host, device and acquire ts, or release ts for those that began before observation) with the same trigger,
 * group, task, completeness, trigger_ret, stale_triggers and intended_empty_zaps. Returns the differences. */
export function compareEpisodes(truth: Pick<FleetTruth, 'episodes'>, episodes: readonly Episode[]): string[] {
  const byKey = new Map<string, Episode>();
  const key = (host: string, boot: string, dev: string, what: string, ts: number) => `${host}|${boot}|${dev}|${what}|${ts}`;
  for (const e of episodes) {
    const acq = Number(e.acquireTsNs ?? 0);
    byKey.set(acq > 0 ? key(e.hostname, e.bootId, e.device, 'a', acq) : key(e.hostname, e.bootId, e.device, 'r', Number(e.releaseTsNs ?? 0)), e);
  }
  const out: string[] = [];
  for (const t of truth.episodes) {
    if (t.releaseTsNs === 0) continue; // still held at the end: listed as open, not emitted
    const e = t.acquireTsNs > 0 ? byKey.get(key(t.hostname, t.bootId, t.device, 'a', t.acquireTsNs))
      : byKey.get(key(t.hostname, t.bootId, t.device, 'r', t.releaseTsNs));
    const where = `${t.scenario} ${t.hostname} ${t.device} acquire=${t.acquireTsNs} release=${t.releaseTsNs}`;
    if (!e) { out.push(`${where}: episode not reported`); continue; }
    const got = {
      trigger: TriggerKind[Number(e.trigger ?? 0)] ?? String(e.trigger), groupId: Number(e.groupId ?? 0), pid: Number(e.pid ?? 0),
      comm: e.comm ?? '', complete: Boolean(e.complete), triggerRet: Number(e.triggerRet ?? 0),
      staleTriggers: Number(e.staleTriggers ?? 0), intendedEmptyZaps: Number(e.intendedEmptyZaps ?? 0),
    };
    const want = { trigger: t.trigger, groupId: t.groupId, pid: t.pid, comm: t.comm, complete: t.complete, triggerRet: t.triggerRet,
      staleTriggers: t.staleTriggers, intendedEmptyZaps: t.intendedEmptyZaps };
    if (t.acquireTsNs === 0) { got.pid = 0; got.comm = ''; want.pid = 0; want.comm = ''; } // no acquiring task seen
    for (const k of Object.keys(want) as (keyof typeof want)[]) {
      if (got[k] !== want[k]) out.push(`${where}: ${k} ${String(got[k])} != ${String(want[k])}`);
    }
  }
  return out;
}
