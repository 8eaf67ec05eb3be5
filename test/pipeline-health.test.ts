// Collector health as the pipeline records it (services/pipeline/health.ts): the collector's clock from
// EventBatch.now_ns (heartbeat batches carry no events), and a sample only for hosts that sent a batch since the
// last one, so a host whose batches stop goes silent while one that only sends heartbeats stays alive.
import { describe, expect, it } from 'vitest';
import { v1, type EventBatch } from '../services/core/model.js';
import { BatchScan } from '../services/core/wire.js';
import { HostHealthTracker } from '../services/pipeline/health.js';

const scan = new BatchScan();
const read = (b: EventBatch): BatchScan => scan.read(v1.EventBatch.encode(b).finish());
const host = (hostname: string) => ({ hostname, bootId: `boot-${hostname}`, kernelRelease: '6.19', collectorVersion: 'v2' });

describe('HostHealthTracker', () => {
  it('keeps the collector clock of heartbeats and samples only the hosts that sent a batch', () => {
    let now = 1_000;
    const t = new HostHealthTracker(() => now);
    t.observeScan(read({ host: host('busy'), firstSeq: 0, nowNs: 5e9, events: [{ tsNs: 4e9, device: '0000:3b:00.0', lockRelease: {} }] }));
    t.observeScan(read({ host: host('idle'), firstSeq: 0, nowNs: 7e9, events: [] })); // a heartbeat
    expect(t.rows().map((r) => [r.hostname, r.events, r.lastTsNs, r.nowNs, r.observedAtMs])).toEqual([
      ['busy', 1, 4e9, 5e9, 1_000], ['idle', 0, 0, 7e9, 1_000]]);
    // only the idle host's heartbeats go on: the busy host gets no sample (it is silent), the idle one does
    now = 2_000;
    t.observeScan(read({ host: host('idle'), firstSeq: 0, nowNs: 8e9, events: [] }));
    expect(t.rows().map((r) => [r.hostname, r.events, r.nowNs, r.observedAtMs])).toEqual([['idle', 0, 8e9, 2_000]]);
    now = 3_000;
    expect(t.rows()).toEqual([]);
    // an older collector sends no now_ns: 0, and the clock never goes back
    t.observeScan(read({ host: host('idle'), firstSeq: 0, events: [] }));
    expect(t.rows().map((r) => r.nowNs)).toEqual([8e9]);
  });
});
