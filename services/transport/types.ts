// The transport contract shared by the in-process bus (embedded mode) and Kafka (fleet mode).
// Payloads are encoded protobuf EventBatch bytes keyed by hostname, so both paths exercise the codec.
//
// Acknowledgement flows from sink to source (as Vector's sources commit through finalizers): the pipeline acks an
// offset once everything derived from the messages before it is durable in the store; only then may the source
// forget them (Kafka: commit the offset).

export interface TransportMessage {
  /** Partitioning key: the hostname (per-host order). */
  key: string;
  /** Encoded revokescope.v1.EventBatch. */
  value: Uint8Array;
  /** Transport position (Kafka offset / bus sequence), set by the consumer side. */
  offset?: string;
  partition?: number;
  /** When the message was produced (Kafka CreateTime, ms), if the transport knows. */
  timestampMs?: number;
}

/** Producer side: resolves when the message is accepted (backpressure: awaits while full). */
export interface EventSink {
  send(messages: TransportMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** A partition handed to this consumer: its committed offset (−1: none) and the offsets it holds now. */
export interface Assignment { partition: number; committed: number; low: number; high: number }

/** What a source drives: where to start each assigned partition, then deliveries in order per partition. */
export interface SourceHandler {
  /** New partitions: resolve the offset each one starts at (a checkpoint's, or `low`). */
  assign(partitions: Assignment[]): Promise<Map<number, number>>;
  /** Partitions taken away (a rebalance): forget them. */
  revoke?(partitions: number[]): void;
  /** Messages of one partition, in order; the next delivery of that partition waits for this one. */
  deliver(messages: TransportMessage[], partition: number): Promise<void>;
}

/** Consumer side. */
export interface EventSource {
  /** Deliver until the input ends (bus closed, Kafka drained) or stop(); rejects on a fatal transport error. */
  run(handler: SourceHandler): Promise<void>;
  /** Everything of `partition` before `offset` is durable downstream: the source may commit it. */
  ack(partition: number, offset: number): Promise<void>;
  /** Stop delivering after the deliveries in progress. */
  stop(): Promise<void>;
  /** After the last acks: commit them and release the transport. */
  close(): Promise<void>;
  /** Messages not yet delivered, over the assigned partitions (as far as the source knows). */
  readonly lag: number;
  /** The offset after the newest message of an assigned partition the source knows of (Kafka: the high watermark of
   * its latest fetch; 0 for a partition it does not hold). With the offset a stage has handled up to, the lag of every
   * host keyed to that partition (host health). */
  endOf(partition: number): number;
}
