// Fleet mode (`revokescope correlate`): the pipeline (pipeline.ts) over Kafka. The source is a consumer-group member
// of "revokescope.events"; findings and dead letters go back to Kafka; correlator checkpoints and dead-letter counts
// to the store's bookkeeping tables.
import type { CorrelatorOptions } from '../core/correlator/index.js';
import type { Finding } from '../core/model.js';
import type { EventStore } from '../store/types.js';
import type { ConsumerBookkeeping } from '../transport/kafka/bookkeeping.js';
import type { KafkaSettings } from '../transport/kafka/config.js';
import { KafkaPublisher } from '../transport/kafka/publisher.js';
import { KafkaEventSource } from '../transport/kafka/source.js';
import { Pipeline, type CheckpointStore, type PipelineStats } from './pipeline.js';

/** Each acknowledgement flushes the store, so this is also the insert cadence: 2 s, like the store's own maximum
 * delay (writer.ts), makes inserts twice as large as 1 s did, at the cost of a replay window of up to 2 s. */
export const DEFAULT_ACK_INTERVAL_MS = 2_000;

export interface FleetOptions extends Partial<KafkaSettings> {
  brokers: string[];
  store: EventStore;
  correlator?: Partial<CorrelatorOptions>;
  bookkeeping?: ConsumerBookkeeping;
  /** End at the end of the topic as seen at start: finish open state, acknowledge, stop. */
  drain?: boolean;
  drainIdleMs?: number;
  publishFindings?: boolean;
  createTopics?: boolean;
  concurrency?: number;
  ackIntervalMs?: number;
  checkpointIntervalMs?: number;
  checkpointMessages?: number;
  signal?: AbortSignal;
  onFindings?: (findings: Finding[], producedAtMs: number) => void;
  log?: (line: string) => void;
}

export interface FleetRun {
  readonly pipeline: Pipeline;
  readonly source: KafkaEventSource;
  /** Resolves when drained or stopped (signal), with everything acknowledged; rejects on a fatal error. */
  readonly done: Promise<PipelineStats>;
}

export function runFleet(o: FleetOptions): FleetRun {
  const source = new KafkaEventSource({ ...o, log: o.log });
  const publisher = new KafkaPublisher(o, o.publishFindings ?? true);
  const s = source.settings;
  const checkpoints: CheckpointStore | undefined = o.bookkeeping && {
    latest: (parts) => o.bookkeeping!.latest(s.groupId, s.eventsTopic, parts),
    write: (cps) => o.bookkeeping!.write(s.groupId, s.eventsTopic, cps),
    writeDeadLetters: (rows) => o.bookkeeping!.writeDlq(rows.map((r) => ({ ...r, topic: s.eventsTopic }))),
  };
  const pipeline = new Pipeline({ source, store: o.store, correlator: o.correlator, checkpoints, publisher,
    ackIntervalMs: o.ackIntervalMs ?? DEFAULT_ACK_INTERVAL_MS, checkpointIntervalMs: o.checkpointIntervalMs,
    checkpointMessages: o.checkpointMessages, signal: o.signal, onFindings: o.onFindings, log: o.log });
  const done = (async () => {
    await publisher.start();
    try { return await pipeline.run(); } finally { await publisher.close(); }
  })();
  return { pipeline, source, done };
}
