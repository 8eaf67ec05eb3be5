// Collector health as the pipeline sees it, per host boot: events, drops the collector reported, losses
// (reported drops + sequence gaps: events[i] has seq first_seq + i), the newest ts and the collector's clock
// (EventBatch.now_ns, heartbeats included). A sample is written only for a boot that sent a batch since the last
// one (as the fleet consumer does): a host whose batches and heartbeats stop is silent, but for one last sample when its
// partition has caught up (its lag falls to 0 after a sample that reported lag). Bounded by hosts.
//
// `lag` is per host: the messages of the host's partition not yet read when the sample was taken (every batch of a
// host is in one partition, key = hostname). It is not the host's own backlog (the consumer cannot know that without
// reading the messages) but the wait its next batch faces; a host that stopped keeps the lag of its last sample until
// its partition catches up.
import { Capability, type HostInfo } from '../core/model.js';
import type { BatchScan } from '../core/wire.js';
import type { HostHealth } from '../store/types.js';

const capabilityName = new Map<number, string>(Object.entries(Capability).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]));

interface Boot {
  hostname: string; bootId: string; kernelRelease: string; collectorVersion: string; capabilities: string[];
  events: number; dropped: number; lost: number; lastTsNs: number; nowNs: number; nextSeq: number | undefined;
  /** A batch arrived since the last sample. */
  dirty: boolean;
  /** The lag of the last sample (absent in checkpoints written before it existed). */
  reportedLag?: number;
}

export class HostHealthTracker {
  private readonly boots = new Map<string, Boot>();

  constructor(private readonly now: () => number = Date.now) {}

  /** One batch, as the wire scan read it (core/wire.ts). */
  observeScan(scan: BatchScan): void {
    const h: HostInfo = scan.host ?? {};
    const first = scan.firstSeq, dropped = scan.dropped, count = scan.count;
    const key = `${h.hostname ?? ''}\u0000${h.bootId ?? ''}`;
    let b = this.boots.get(key);
    if (!b) {
      b = { hostname: h.hostname ?? '', bootId: h.bootId ?? '', kernelRelease: '', collectorVersion: '', capabilities: [],
        events: 0, dropped: 0, lost: 0, lastTsNs: 0, nowNs: 0, nextSeq: undefined, dirty: false };
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
    for (let i = 0; i < count; i++) if (scan.ts[i]! > b.lastTsNs) b.lastTsNs = scan.ts[i]!;
    if (scan.nowNs > b.nowNs) b.nowNs = scan.nowNs;
    b.dirty = true;
  }

  /** A sample of every boot that sent a batch (events or a heartbeat) since the previous call, and of every boot whose
   * last sample reported lag when `lag` is now 0 (caught up); `lag`: messages of this tracker's partition not yet
   * read (0 when the transport does not know). */
  rows(lag = 0): HostHealth[] {
    const at = this.now();
    const out: HostHealth[] = [];
    for (const b of this.boots.values()) {
      if (!b.dirty && !(lag === 0 && (b.reportedLag ?? 0) > 0)) continue;
      b.dirty = false;
      b.reportedLag = lag;
      out.push({
        hostname: b.hostname, bootId: b.bootId, kernelRelease: b.kernelRelease, collectorVersion: b.collectorVersion,
        capabilities: b.capabilities, observedAtMs: at, events: b.events, dropped: b.dropped, lost: b.lost, lag,
        lastTsNs: b.lastTsNs, nowNs: b.nowNs,
      });
    }
    return out;
  }

  /** The counters as plain data (pipeline checkpoints). */
  toState(): Boot[] { return [...this.boots.values()].map((b) => ({ ...b, capabilities: [...b.capabilities] })); }

  static fromState(boots: Boot[], now: () => number = Date.now): HostHealthTracker {
    const t = new HostHealthTracker(now);
    for (const b of boots) t.boots.set(`${b.hostname}\u0000${b.bootId}`, { ...b, capabilities: [...b.capabilities] });
    return t;
  }
}
