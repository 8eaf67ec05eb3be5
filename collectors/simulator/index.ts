// Fleet simulator (docs/design.md §1, §7; issues 2 and 13): a pure, deterministic generator of EventBatches for a fleet
// mixing kernel eras, drivers, collector versions and workloads, with injected faults and field conditions. It
// models the kernel from its own tables (kernel.ts) and judges its own ground truth (judge.ts, docs/rules.md): it
// imports nothing from the correlator. No I/O: `revokescope simulate` writes what this yields.
import type { EventBatch } from '../../services/core/model.js';
import { DRIVER_NAMES, ERA_NAMES, FLAVORS, type CollectorKind, type EraName } from './eras.js';
import { FAULTS, FAULT_NAMES } from './faults.js';
import { EPOCH_NS, HostSim } from './host.js';
import { Rng } from './rng.js';
import { applyLossWindows, declaredForm, type FaultName, type FleetStats, type FleetTruth, type InjectedFault } from './truth.js';

export type {
  FaultName, FleetStats, FleetTruth, InjectedFault, LossWindow, TruthDevice, TruthEpisode, TruthFinding, TruthHost, TruthComparison,
} from './truth.js';
export { applyLossWindows, compareFindings, compareEpisodes, declaredForm } from './truth.js';
export { ERA_NAMES, DRIVER_NAMES, FLAVORS };
export { FAULT_NAMES };

export interface SimulateOptions {
  hosts: number;
  durationNs: number;
  seed: number;
  /** Inject faults (default true). Off: a correct fleet that must yield no finding at all. */
  faults?: boolean;
  /** Extra fault scenarios per host per minute, beyond one of each kind (default 0.1). */
  faultRate?: number;
  /** Workload devices per host, inclusive range (default [2, 6]); fault scenarios add their own. */
  devicesPerHost?: [number, number];
  /** Events per EventBatch at most (default 256). */
  batchSize?: number;
  /** A collector flushes a non-empty batch at least this often (default 500 ms). */
  flushIntervalNs?: number;
  /** Only these faults (default: all). */
  faultKinds?: FaultName[];
  /** Before 6.11 the kernel zaps only VMAs that were faulted (vfio_pci_zap_and_vma_lock walks
   * vdev->vma_list, filled by vfio_pci_mmap_fault). By default simulated guests touch every BAR before a
   * revoke so each live mapping gets a zap; with this on, correct pre-6.11 revokes also leave unpopulated
   * mappings unzapped (nothing to zap: no PTEs), which a correlator must not flag. Default false. */
  unpopulatedPre611Revokes?: boolean;
  /** Judge the ground truth while generating (default true). Off, truth() has no findings and no scenario episodes
   * (judged: false): for consumers of the batches alone, such as the pipeline's simulator source. */
  truth?: boolean;
}

const MS = 1_000_000, S = 1_000_000_000;

interface Normalized extends Required<Omit<SimulateOptions, 'faultKinds'>> { faultKinds: FaultName[] }

function normalize(o: SimulateOptions): Normalized {
  const hosts = Math.floor(o.hosts);
  if (!(hosts >= 1)) throw new RangeError(`hosts must be >= 1 (got ${String(o.hosts)})`);
  if (!(o.durationNs > 0) || !Number.isFinite(o.durationNs)) throw new RangeError(`durationNs must be > 0 (got ${String(o.durationNs)})`);
  if (!Number.isFinite(o.seed)) throw new RangeError(`seed must be a number (got ${String(o.seed)})`);
  const dph = o.devicesPerHost ?? [2, 6];
  if (!(dph[0] >= 1 && dph[1] >= dph[0])) throw new RangeError(`devicesPerHost must be [min >= 1, max >= min] (got ${JSON.stringify(dph)})`);
  const batchSize = Math.floor(o.batchSize ?? 256);
  if (!(batchSize >= 1)) throw new RangeError(`batchSize must be >= 1 (got ${String(o.batchSize)})`);
  const faultRate = o.faultRate ?? 0.1;
  if (!(faultRate >= 0)) throw new RangeError(`faultRate must be >= 0 (got ${String(o.faultRate)})`);
  return {
    hosts, durationNs: Math.floor(o.durationNs), seed: Math.floor(o.seed), faults: o.faults ?? true, faultRate,
    devicesPerHost: [Math.floor(dph[0]), Math.floor(dph[1])], batchSize,
    flushIntervalNs: o.flushIntervalNs ?? 500 * MS, faultKinds: o.faultKinds ?? FAULT_NAMES,
    unpopulatedPre611Revokes: o.unpopulatedPre611Revokes ?? false, truth: o.truth ?? true,
  };
}

/** The streaming simulator: iterate batches() (memory stays bounded by one epoch of events per host),
 * then read truth(). */
export class FleetSimulator {
  readonly opts: Normalized;
  private readonly hosts: HostSim[] = [];
  private readonly faults: InjectedFault[] = [];
  private readonly skipped: { fault: FaultName; reason: string }[] = [];
  private readonly stats: FleetStats = {
    batches: 0, events: 0, episodes: 0, lostEvents: 0, heartbeats: 0, episodesByEra: {}, episodesByDriver: {}, triggers: {},
  };
  private started = false;

  constructor(opts: SimulateOptions) {
    this.opts = normalize(opts);
    const o = this.opts;
    for (let i = 0; i < o.hosts; i++) {
      // Eras rotate fastest, then flavours, then whether probes can read i_mmap: every combination appears. Every
      // other block of 15 hosts runs an older collector (no TriggerEnd, no DeviceInfo state fields).
      const era: EraName = ERA_NAMES[i % ERA_NAMES.length]!;
      const k = Math.floor(i / ERA_NAMES.length);
      const collector: CollectorKind = Math.floor(i / (ERA_NAMES.length * FLAVORS.length)) % 2 === 1 ? 'older' : 'current';
      this.hosts.push(new HostSim({
        index: i, seed: o.seed, durationNs: o.durationNs, batchSize: o.batchSize, flushIntervalNs: o.flushIntervalNs,
        devicesPerHost: o.devicesPerHost, era, flavor: FLAVORS[k % FLAVORS.length]!, readsVmas: k % 2 === 1, collector, truth: o.truth,
        unpopulatedPre611Revokes: o.unpopulatedPre611Revokes,
      }, this.stats));
    }
    if (o.faults) this.planFaults();
  }

  private planFaults(): void {
    const o = this.opts;
    const rng = new Rng(o.seed, 0xfa17);
    const kinds = o.faultKinds;
    if (kinds.length === 0) return;
    const list: FaultName[] = [...kinds];
    const extra = Math.round(o.faultRate * o.hosts * (o.durationNs / (60 * S)));
    for (let i = 0; i < extra; i++) list.push(kinds[i % kinds.length]!);
    const used = new Map<FaultName, number>();
    list.forEach((fault) => {
      const spec = FAULTS[fault];
      const fit = this.hosts.filter((h) => spec.eras.includes(h.era.name) && (spec.fits?.(h) ?? true));
      if (fit.length === 0) { this.skipped.push({ fault, reason: `no host of era ${spec.eras.join('/')}${spec.fits ? ' with the required probes' : ''}` }); return; }
      const preferred = spec.prefer ? [...fit.filter(spec.prefer), ...fit.filter((h) => !spec.prefer!(h))] : fit;
      const n = used.get(fault) ?? 0;
      used.set(fault, n + 1);
      // Loss touches every episode of the host in its window: no other scenario may come near it.
      const guard = spec.hostWide ? 5 * S : 1 * S;
      const minRel = spec.lead + 1 * S;
      // Leave 3 s after the scenario: the correlator's watermark (2 s lateness) must pass it before the end.
      const maxRel = o.durationNs - spec.span - 3 * S;
      if (!spec.atStart && maxRel < minRel) { this.skipped.push({ fault, reason: `run too short (needs ${((minRel + spec.span + 3 * S) / S).toFixed(1)} s)` }); return; }
      if (spec.atStart && o.durationNs < spec.span + 3 * S) { this.skipped.push({ fault, reason: 'run too short' }); return; }
      for (let attempt = 0; attempt < 4 * preferred.length + 8; attempt++) {
        const h = preferred[(n + attempt) % preferred.length]!;
        const at = spec.atStart ? h.t0 + 3_000_000 : h.t0 + rng.int(minRel, maxRel);
        const from = spec.atStart ? -Infinity : at - spec.lead - guard;
        if (!h.reserve(from, spec.untilEnd ? Infinity : at + spec.span + guard)) continue;
        const id = `${fault}#${n + 1}`;
        const { dev, declared } = spec.install(h, id, at, { rng, instance: n });
        this.faults.push({ scenario: id, fault, hostname: h.hostname, bootId: h.bootId, device: dev.addr, driver: dev.driver,
          kernelRelease: h.release, era: h.era.name, collector: h.collector.kind, atTsNs: at, declared: [...declared].sort(),
          expectedFindings: 0 });
        return;
      }
      this.skipped.push({ fault, reason: 'no free time slot on a fitting host' });
    });
  }

  /** EventBatches, each host's in seq order, hosts interleaved round-robin by simulated time. */
  *batches(): Generator<EventBatch> {
    if (this.started) throw new Error('FleetSimulator.batches() can run only once');
    this.started = true;
    const out: EventBatch[] = [];
    const hosts = this.hosts, n = hosts.length;
    // Per host, HostSim's own dueAt/closeAt after its last advance(), kept here so that hosts with nothing
    // to do are passed over without touching them.
    const t0 = Float64Array.from(hosts, (h) => h.t0);
    const due = new Float64Array(n).fill(-Infinity), close = new Float64Array(n).fill(Infinity);
    for (let k = 1; ; k++) {
      const rel = k * EPOCH_NS;
      const final = rel >= this.opts.durationNs;
      let alive = false;
      for (let i = 0; i < n; i++) {
        const absEnd = t0[i]! + rel; // advance()'s end on the host clock
        if (!final && absEnd <= due[i]! && absEnd < close[i]!) { alive = true; continue; }
        const h = hosts[i]!;
        if (h.done) continue;
        h.advance(rel, final, out);
        for (const b of out) yield b;
        out.length = 0;
        due[i] = h.dueAt; close[i] = h.closeAt;
        if (!h.done) alive = true;
      }
      if (!alive) break;
    }
  }

  /** Ground truth. Complete once batches() is exhausted (findings are recorded as their events are generated). */
  truth(): FleetTruth {
    const findings = this.hosts.flatMap((h) => h.findings.map((f) => ({ ...f })));
    const lossWindows = this.hosts.flatMap((h) => h.lossWindows);
    findings.sort((a, b) => a.hostname.localeCompare(b.hostname) || a.tsNs - b.tsNs || a.device.localeCompare(b.device) || a.kind.localeCompare(b.kind));
    const episodes = this.hosts.flatMap((h) => h.episodes.map((e) => ({ ...e })));
    applyLossWindows(findings, episodes, lossWindows);
    const faults = this.faults.map((f) => ({ ...f, declared: [...f.declared],
      expectedFindings: findings.filter((x) => x.scenario === f.scenario).length }));
    return {
      seed: this.opts.seed,
      judged: this.opts.truth,
      hosts: this.hosts.map((h) => h.truthHost()),
      faults,
      skippedFaults: [...this.skipped],
      findings,
      episodes,
      lossWindows: [...lossWindows],
      stats: structuredClone(this.stats),
    };
  }

  /** Per injected scenario, the judge's findings in declared form, sorted (compare with InjectedFault.declared). */
  judged(): Map<string, string[]> {
    const out = new Map<string, string[]>(this.faults.map((f) => [f.scenario, []]));
    for (const h of this.hosts) for (const f of h.findings) if (f.scenario) out.get(f.scenario)?.push(declaredForm(f));
    for (const l of out.values()) l.sort();
    return out;
  }
}

/** Streaming form: yields EventBatches; memory stays bounded for long durations. */
export function* simulateFleet(opts: SimulateOptions): Generator<EventBatch, FleetTruth> {
  const sim = new FleetSimulator(opts);
  yield* sim.batches();
  return sim.truth();
}

/** Convenience: everything in memory. */
export function simulate(opts: SimulateOptions): { batches: EventBatch[]; truth: FleetTruth } {
  const sim = new FleetSimulator(opts);
  const batches = [...sim.batches()];
  return { batches, truth: sim.truth() };
}
