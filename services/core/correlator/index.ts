// The correlator (docs/rules.md): EventBatches in, Episodes and Findings out. Pure and I/O-free; sources, the
// transport and the store are adapters around it.
import type { Episode, Event, EventBatch, Finding } from '../model.js';
import { BatchScan, WireEvent } from '../wire.js';
import type { DeviceTracker } from './device.js';
import { HostTracker, type HostOutputs, type HostState } from './host.js';
import { defaultCorrelatorOptions, type CorrelatorOptions } from './options.js';
import { emptyStats, type CorrelatorStats } from './stats.js';

export type { CorrelatorOptions } from './options.js';
export type { CorrelatorStats } from './stats.js';
export type { DeviceTracker } from './device.js';
export { defaultCorrelatorOptions } from './options.js';

interface CorrelatorCheckpoint { version: number; opts: CorrelatorOptions; stats: CorrelatorStats; hosts: HostState[] }

/** Version 2: rules v2 (device knowledge, waiting episodes). A checkpoint of another version cannot be resumed. */
export const CHECKPOINT_VERSION = 2;

/** An episode still holding memory_lock at the end of the input (listed in the summary). */
export interface OpenLock {
  hostname: string; bootId: string; device: string; episodeId: string; acquireTsNs: number; tid: number; comm: string;
  trigger: number; heldNs: number;
}

export class Correlator {
  readonly opts: CorrelatorOptions;
  readonly stats: CorrelatorStats = emptyStats();
  /** hostname → boot_id → tracker (a reboot is a new key: seq and CLOCK_MONOTONIC restart). */
  private readonly hosts = new Map<string, Map<string, HostTracker>>();
  private episodes: Episode[] = [];
  private findings: Finding[] = [];
  private readonly outputs: HostOutputs = {
    episode: (e: Episode) => { this.episodes.push(e); },
    finding: (f: Finding) => { this.findings.push(f); },
  };

  constructor(opts: Partial<CorrelatorOptions> = {}) {
    this.opts = { ...defaultCorrelatorOptions, ...opts };
  }

  /** Watch every event as its device applied it (the device's state is read in the callback, not kept): explain's
   * replay of a finding's events. Not part of checkpoints. */
  observe(applied: (device: DeviceTracker, ev: Event, ts: number) => void): void {
    this.outputs.applied = applied;
  }

  /** One collector batch. Batches of a host must come in the order the collector sent them. */
  ingest(batch: EventBatch): void {
    this.stats.batches++;
    this.tracker(batch.host?.hostname ?? '', batch.host?.bootId ?? '').ingest(batch);
  }

  /** One collector batch as its protobuf bytes (an encoded EventBatch): the same result as `ingest` of the
   * decoded batch, without decoding events into objects up front (wire.ts). Throws on malformed bytes, before
   * any state changes. */
  ingestBytes(frame: Uint8Array): void {
    this.ingestScan(this.scan.read(frame));
  }

  /** ingestBytes for a frame the caller scanned already (the embedded pipeline shares one scan with the store). */
  ingestScan(scan: BatchScan): void {
    this.stats.batches++;
    this.tracker(scan.host?.hostname ?? '', scan.host?.bootId ?? '').ingestScan(scan);
  }

  private readonly scan = new BatchScan();
  /** The event every host's reorder buffer releases events from bytes into. */
  private readonly wire = new WireEvent();

  private tracker(hostname: string, bootId: string): HostTracker {
    let boots = this.hosts.get(hostname);
    if (!boots) this.hosts.set(hostname, (boots = new Map()));
    let h = boots.get(bootId);
    if (!h) boots.set(bootId, (h = new HostTracker(hostname, bootId, this.opts, this.outputs, this.stats, this.wire)));
    return h;
  }

  /** End of input: everything buffered is processed; open locks are judged at each host's newest ts. */
  finish(): void {
    for (const h of this.trackers()) h.finish();
  }

  /** Episodes still holding memory_lock (after finish(): at the end of the input), with how long they were held
   * by each host's last time seen. */
  openLocks(): OpenLock[] {
    const out: OpenLock[] = [];
    for (const h of this.trackers()) {
      for (const { device, episode: e } of h.openEpisodes()) {
        out.push({ hostname: h.hostname, bootId: h.bootId, device, episodeId: e.id, acquireTsNs: e.acquireTs, tid: e.tid,
          comm: e.comm, trigger: e.trigger, heldNs: Math.max(0, h.lastTime - e.acquireTs) });
      }
    }
    return out;
  }

  takeEpisodes(): Episode[] {
    const out = this.episodes;
    this.episodes = [];
    return out;
  }

  takeFindings(): Finding[] {
    const out = this.findings;
    this.findings = [];
    return out;
  }

  /** All state as JSON (±Infinity kept): with the input position it was taken at, a restart resumes exactly.
   * Outputs not yet taken are not part of it: take them first. */
  snapshot(): string {
    const state: CorrelatorCheckpoint = { version: CHECKPOINT_VERSION, opts: this.opts, stats: this.stats,
      hosts: [...this.trackers()].map((h) => h.toState()) };
    return JSON.stringify(state, (_k, v) => (v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v));
  }

  static restore(json: string, opts: Partial<CorrelatorOptions> = {}): Correlator {
    const s = JSON.parse(json, (_k, v) => (v === 'Infinity' ? Infinity : v === '-Infinity' ? -Infinity : v)) as CorrelatorCheckpoint;
    if (s.version !== CHECKPOINT_VERSION) throw new Error(`unsupported correlator checkpoint version ${String(s.version)}`);
    const c = new Correlator({ ...s.opts, ...opts });
    Object.assign(c.stats, s.stats);
    for (const hs of s.hosts) {
      let boots = c.hosts.get(hs.hostname);
      if (!boots) c.hosts.set(hs.hostname, (boots = new Map()));
      boots.set(hs.bootId, HostTracker.fromState(hs, c.opts, c.outputs, c.stats, c.wire));
    }
    return c;
  }

  private *trackers(): Generator<HostTracker> {
    for (const boots of this.hosts.values()) yield* boots.values();
  }

  /** Tracked (hostname, boot_id) keys. */
  get hostCount(): number { return [...this.trackers()].length; }

  get deviceCount(): number {
    let n = 0;
    for (const h of this.trackers()) n += h.devices.size;
    return n;
  }
}
