// Embedded mode (`revokescope run`, what `npm start` runs): the source is fed into the in-process bus while the
// pipeline (pipeline.ts, the same one fleet mode runs over Kafka) consumes it, in one process, no servers.
import type { CorrelatorOptions } from '../core/correlator/index.js';
import type { EventBatch } from '../core/model.js';
import type { EventStore } from '../store/types.js';
import { InProcessBus } from '../transport/bus.js';
import { feed, type FeedStats } from './feed.js';
import { Pipeline, type PipelineStats } from './pipeline.js';
import type { EncodedSource } from './sources.js';

export interface EmbeddedOptions {
  source: AsyncIterable<EventBatch> | (AsyncIterable<EventBatch> & EncodedSource);
  store: EventStore;
  correlator?: Partial<CorrelatorOptions>;
  /** Default: a bus of 256 messages. */
  bus?: InProcessBus;
  /** Aborting stops reading the source; what was read is still processed, flushed and written. */
  signal?: AbortSignal;
  healthIntervalMs?: number;
  log?: (line: string) => void;
  now?: () => number;
}

export interface EmbeddedRun {
  /** What the source produced. */
  readonly produced: FeedStats;
  readonly pipeline: Pipeline;
  readonly bus: InProcessBus;
  /** Resolves when everything read was correlated and written. */
  readonly done: Promise<PipelineStats>;
}

export function runEmbedded(o: EmbeddedOptions): EmbeddedRun {
  const bus = o.bus ?? new InProcessBus({ capacity: 256 });
  const produced: FeedStats = { batches: 0, events: 0 };
  // No signal for the pipeline: on abort the feed stops reading and closes the bus, and the pipeline still correlates
  // and writes everything that was read (then the correlators finish as at the end of any input).
  const pipeline = new Pipeline({ source: bus, store: o.store, correlator: o.correlator, healthIntervalMs: o.healthIntervalMs,
    log: o.log, now: o.now });
  let failed = false;
  const consuming = pipeline.run().catch(async (err: unknown) => { failed = true; await bus.stop(); throw err; });
  // The pipeline stops on the signal after the bus is drained of what was read: the feed stops reading, closes.
  const producing = feed(o.source, bus, produced, { stop: () => failed || (o.signal?.aborted ?? false) });
  const done = Promise.allSettled([producing, consuming]).then(([p, c]) => {
    if (c.status === 'rejected') throw c.reason;
    if (p.status === 'rejected') throw p.reason;
    return c.value;
  });
  return { produced, pipeline, bus, done };
}
