// The transport contract shared by the in-process bus (embedded mode) and Kafka (fleet mode).
// Payloads are encoded protobuf EventBatch bytes keyed by hostname, so both paths exercise the codec.

export interface TransportMessage {
  /** Partitioning key: the hostname (per-host order). */
  key: string;
  /** Encoded revokescope.v1.EventBatch. */
  value: Uint8Array;
  /** Transport position (Kafka offset / bus sequence), set by the consumer side. */
  offset?: string;
  partition?: number;
}

/** Producer side: resolves when the message is accepted (backpressure: awaits while full). */
export interface EventSink {
  send(messages: TransportMessage[]): Promise<void>;
  close(): Promise<void>;
}

/** Consumer side: delivers batches of messages per partition, in order; `commit` after durable processing. */
export interface EventSource {
  run(handler: (messages: TransportMessage[], partition: number) => Promise<void>): Promise<void>;
  stop(): Promise<void>;
}
