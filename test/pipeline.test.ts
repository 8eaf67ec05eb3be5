// The embedded pipeline end to end (source → protobuf → bus → correlator → chDB) and the bus contract.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBatches } from '../services/core/analysis.js';
import { FindingKind, Severity, type EventBatch } from '../services/core/model.js';
import { runEmbedded } from '../services/pipeline/embedded.js';
import { toAsyncIterable } from '../services/pipeline/sources.js';
import type { OpenStore } from '../services/store/index.js';
import { InProcessBus } from '../services/transport/bus.js';
import type { SourceHandler, TransportMessage } from '../services/transport/types.js';

/** A handler that only takes deliveries (partition 0 from offset 0, as the bus assigns it). */
const deliverTo = (deliver: SourceHandler['deliver']): SourceHandler => ({ assign: async () => new Map([[0, 0]]), deliver });
import { fleetTrace, openTemp, tempDir } from './store-fixtures.js';

describe('in-process bus', () => {
  it('applies backpressure: a full queue makes send() wait; nothing is dropped, order is kept', async () => {
    const bus = new InProcessBus({ capacity: 4, maxDelivery: 3 });
    const received: string[] = [];
    let maxDepth = 0;
    const consumer = bus.run(deliverTo(async (msgs) => {
      maxDepth = Math.max(maxDepth, bus.depth);
      await new Promise((r) => setTimeout(r, 2));
      for (const m of msgs) received.push(Buffer.from(m.value).toString());
    }));
    let sent = 0;
    const producer = (async () => {
      for (let i = 0; i < 200; i++) {
        await bus.send([{ key: `h${i % 3}`, value: Buffer.from(String(i)) }]);
        sent++;
        // the producer can never get more than `capacity` messages ahead of the consumer
        expect(sent - received.length).toBeLessThanOrEqual(4 + 3);
      }
      await bus.close();
    })();
    await Promise.all([producer, consumer]);
    expect(received).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
    expect(maxDepth).toBeLessThanOrEqual(4);
    expect(bus.delivered).toBe(200);
  });

  it('stop() refuses waiting senders instead of dropping their messages silently', async () => {
    const bus = new InProcessBus({ capacity: 1 });
    await bus.send([{ key: 'a', value: new Uint8Array([1]) }]);
    const blocked = bus.send([{ key: 'a', value: new Uint8Array([2]) }]);
    await bus.stop();
    await expect(blocked).rejects.toThrow(/not accepted/);
  });

  it('delivers offsets in order', async () => {
    const bus = new InProcessBus();
    await bus.send([{ key: 'a', value: new Uint8Array() }, { key: 'b', value: new Uint8Array() }]);
    await bus.close();
    const got: TransportMessage[] = [];
    await bus.run(deliverTo(async (m) => { got.push(...m); }));
    expect(got.map((m) => [m.key, m.offset, m.partition])).toEqual([['a', '0', 0], ['b', '1', 0]]);
  });
});

describe('embedded pipeline on chDB', () => {
  const tmp = tempDir('revokescope-pipeline-');
  let s: OpenStore;
  const trace: EventBatch[] = fleetTrace(6, 120, 11);

  beforeAll(async () => { s = await openTemp(tmp.dir); });
  afterAll(async () => { await s?.store.close(); tmp.remove(); });

  async function ingest(batches: EventBatch[], extra: Uint8Array[] = []) {
    const bus = new InProcessBus({ capacity: 8 });
    if (extra.length) {
      // corrupt messages straight onto the bus: counted, skipped, never fatal
      for (const v of extra) await bus.send([{ key: 'bad', value: v }]);
    }
    return runEmbedded({ source: toAsyncIterable(batches), store: s.store, bus }).done;
  }

  it("stores exactly the correlator's episodes and findings for the trace", async () => {
    const expected = analyzeBatches(trace);
    expect(expected.findings.length).toBeGreaterThan(0);
    const stats = await ingest(trace, [new Uint8Array([0xff, 0xff, 0xff, 0x0f])]);
    expect(stats.deadLettered).toBe(1);
    expect(stats.deadLetterReasons).toEqual({ 'corrupt protobuf': 1 });
    expect(stats.episodes).toBe(expected.episodes.length);
    expect(stats.findingsBySeverity.CRITICAL).toBe(expected.findings.filter((f) => f.severity === Severity.CRITICAL).length);
    const eps = await s.reader.episodes({ limit: 10_000 });
    expect(eps.items.map((e) => e.episodeId).sort()).toEqual(expected.episodes.map((e) => e.episodeId).sort());
    const fs = await s.reader.findings({ limit: 10_000 });
    const key = (f: { findingId: unknown; kind: unknown; severity: unknown; episodeId: unknown; inconclusive: unknown; evidence: unknown }) =>
      JSON.stringify([f.findingId, f.kind, f.severity, f.episodeId, f.inconclusive, f.evidence]);
    // the store returns evidence as the object the correlator's JSON text holds
    expect(fs.items.map(key).sort()).toEqual(expected.findings.map((f) => key({
      ...f, kind: FindingKind[f.kind], severity: Severity[f.severity], evidence: JSON.parse(f.evidence) })).sort());
    const counts = await s.reader.counts();
    expect(counts.events).toBe(trace.reduce((n, b) => n + b.events!.length, 0));
    expect(counts.latencyEpisodes).toBe(expected.episodes.length);
    const health = await (await s.connection.client.query({ query: 'SELECT uniqExact(hostname) AS n FROM revokescope.host_health', format: 'JSONEachRow' })).json<{ n: string }>();
    expect(Number(health[0]!.n)).toBe(6);
  });

  it('ingesting the same trace again leaves deduplicated counts and rollups unchanged', async () => {
    const before = { counts: await s.reader.counts(), latency: await s.reader.latency({ metric: 'revoke', groupBy: ['host', 'kernel'] }) };
    await ingest(trace);
    expect({ counts: await s.reader.counts(), latency: await s.reader.latency({ metric: 'revoke', groupBy: ['host', 'kernel'] }) }).toEqual(before);
  });
});
