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

  it('samples lag as given (its partition\'s), and once more when the partition has caught up', () => {
    let now = 1_000;
    const t = new HostHealthTracker(() => now);
    t.observeScan(read({ host: host('a'), firstSeq: 0, events: [{ tsNs: 4e9, device: '0000:3b:00.0', lockRelease: {} }] }));
    t.observeScan(read({ host: host('b'), firstSeq: 0, events: [] }));
    expect(t.rows(102).map((r) => [r.hostname, r.lag])).toEqual([['a', 102], ['b', 102]]);
    // no batch since, the partition still behind: silent
    now = 2_000;
    expect(t.rows(40)).toEqual([]);
    // b sends again while the partition is behind; a stays silent
    t.observeScan(read({ host: host('b'), firstSeq: 0, events: [] }));
    expect(t.rows(7).map((r) => [r.hostname, r.lag])).toEqual([['b', 7]]);
    // caught up: one last sample for each boot whose last one reported lag, with the same counters
    now = 3_000;
    expect(t.rows(0).map((r) => [r.hostname, r.lag, r.events, r.observedAtMs])).toEqual([['a', 0, 1, 3_000], ['b', 0, 0, 3_000]]);
    now = 4_000;
    expect(t.rows(0)).toEqual([]); // and then silent again
    expect(t.rows(5)).toEqual([]);
    // restored from a checkpoint written before samples kept their lag: nothing owed
    const old = HostHealthTracker.fromState(t.toState().map(({ reportedLag: _, ...b }) => b as never), () => now);
    expect(old.rows(0)).toEqual([]);
  });
});
