// The producing side of a pipeline run in one process: batches from a source (the simulator, a trace) encoded
// and sent to an EventSink (the in-process bus, or Kafka like collectors do), with the sink's backpressure.
import { v1, type EventBatch } from '../core/model.js';
import type { EventSink, TransportMessage } from '../transport/types.js';
import { isEncodedSource, type EncodedSource } from './sources.js';

export interface FeedStats { batches: number; events: number }

/** Send every batch of `source` to `sink` (a source that is also an EncodedSource hands over bytes), then close the
 * sink. Stops early when `signal` aborts or `stop()` returns true. */
export async function feed(source: AsyncIterable<EventBatch> | (AsyncIterable<EventBatch> & EncodedSource), sink: EventSink,
  stats: FeedStats, o: { signal?: AbortSignal; stop?: () => boolean; chunk?: number } = {}): Promise<void> {
  const stopped = () => (o.signal?.aborted ?? false) || (o.stop?.() ?? false);
  try {
    if (isEncodedSource(source)) {
      for await (const c of source.encoded()) {
        if (stopped()) break;
        stats.batches += c.messages.length;
        stats.events += c.events;
        await sink.send(c.messages);
      }
      return;
    }
    let pending: TransportMessage[] = [];
    for await (const b of source) {
      if (stopped()) break;
      stats.batches++;
      stats.events += b.events?.length ?? 0;
      pending.push({ key: b.host?.hostname ?? '', value: v1.EventBatch.encode(b).finish() });
      if (pending.length >= (o.chunk ?? 1)) { await sink.send(pending); pending = []; }
    }
    if (pending.length > 0) await sink.send(pending);
  } finally {
    await sink.close();
  }
}
