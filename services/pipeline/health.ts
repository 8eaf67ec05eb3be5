// Collector health as the pipeline sees it, per host boot: events, drops the collector reported, losses
// (reported drops + sequence gaps: events[i] has seq first_seq + i) and the newest ts. Bounded by hosts.
import { Capability, type EventBatch, type HostInfo } from '../core/model.js';
import type { BatchScan } from '../core/wire.js';
import type { HostHealth } from '../store/types.js';

const capabilityName = new Map<number, string>(Object.entries(Capability).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

interface Boot {
  hostname: string; bootId: string; kernelRelease: string; collectorVersion: string; capabilities: string[];
  events: number; dropped: number; lost: number; lastTsNs: number; nextSeq: number | undefined;
}

export class HostHealthTracker {
  private readonly boots = new Map<string, Boot>();

  constructor(private readonly now: () => number = Date.now) {}

  observe(batch: EventBatch): void {
    const events = batch.events ?? [];
    let last = 0;
    for (const ev of events) if ((ev.tsNs ?? 0) > last) last = ev.tsNs ?? 0;
    this.note(batch.host, batch.firstSeq ?? 0, batch.dropped ?? 0, events.length, last);
  }

  /** observe() for a batch read by the wire scan. */
  observeScan(scan: BatchScan): void {
    let last = 0;
    for (let i = 0; i < scan.count; i++) if (scan.ts[i]! > last) last = scan.ts[i]!;
    this.note(scan.host, scan.firstSeq, scan.dropped, scan.count, last);
  }

  private note(host: HostInfo | null | undefined, first: number, dropped: number, count: number, lastTsNs: number): void {
    const h = host ?? {};
    const key = `${h.hostname ?? ''}\u0000${h.bootId ?? ''}`;
    let b = this.boots.get(key);
    if (!b) {
      b = { hostname: h.hostname ?? '', bootId: h.bootId ?? '', kernelRelease: '', collectorVersion: '', capabilities: [],
        events: 0, dropped: 0, lost: 0, lastTsNs: 0, nextSeq: undefined };
      this.boots.set(key, b);
    }
    b.kernelRelease = h.kernelRelease ?? b.kernelRelease;
    b.collectorVersion = h.collectorVersion ?? b.collectorVersion;
    if (h.capabilities?.length) b.capabilities = h.capabilities.map((c) => capabilityName.get(c as number) ?? String(c));
    b.dropped += dropped;
    b.lost += dropped;
    if (b.nextSeq !== undefined && first > b.nextSeq) b.lost += first - b.nextSeq;
    b.nextSeq = Math.max(b.nextSeq ?? 0, first + count);
    b.events += count;
    if (lastTsNs > b.lastTsNs) b.lastTsNs = lastTsNs;
  }

  rows(): HostHealth[] {
    const at = this.now();
    return [...this.boots.values()].map((b) => ({
      hostname: b.hostname, bootId: b.bootId, kernelRelease: b.kernelRelease, collectorVersion: b.collectorVersion,
      capabilities: b.capabilities, observedAtMs: at, events: b.events, dropped: b.dropped, lost: b.lost, lag: 0,
      lastTsNs: b.lastTsNs,
    }));
  }
}
