// Feeds a TimelineBuilder from what the trace readers give: decoded batches (.jsonl) or the wire reader's checked
// scans (.pb, the path analyze takes). Pure adapter: reads each event once and keeps nothing of it.
import type { EventBatch } from '../core/model.js';
import { NameTable, WireEvent, type BatchScan } from '../core/wire.js';
import type { TimelineBuilder } from './timeline.js';

export class TimelineFeed {
  private readonly wire = new WireEvent();
  private readonly deviceNames = new NameTable();

  constructor(readonly builder: TimelineBuilder) {}

  batch(b: EventBatch): void {
    const host = b.host ?? {};
    const events = b.events ?? [];
    const firstSeq = Number(b.firstSeq ?? 0);
    this.builder.batch(host, firstSeq, events.length, Number(b.dropped ?? 0), Number(events[0]?.tsNs ?? 0), Number(b.nowNs ?? 0));
    for (let i = 0; i < events.length; i++) this.builder.event(host, events[i]!, firstSeq + i);
  }

  /** A scan as the trace reader yields it (read it before the reader reuses it for the next record). */
  scan(s: BatchScan): void {
    const host = s.host ?? {};
    this.builder.batch(host, s.firstSeq, s.count, s.dropped, s.count > 0 ? s.ts[0]! : 0, s.nowNs);
    for (let i = 0; i < s.count; i++) {
      const device = this.deviceNames.get(s.frame, s.devStart[i]!, s.devEnd[i]!);
      const ev = this.wire.load(s.frame, s.start[i]!, s.end[i]!, s.bodyAt[i]!, s.ts[i]!, s.tid[i]!, s.cpu[i]!, device);
      this.builder.event(host, ev, s.firstSeq + i);
    }
  }
}
