// Fleet transport settings (docs/design.md §2, §7, §8): the commands resolve them from flags and REVOKESCOPE_KAFKA_*
// variables (services/cli/settings.ts); below that they are plain values over these defaults.
export type CompressionName = 'zstd' | 'gzip' | 'none';

export interface KafkaSettings {
  brokers: string[];
  clientId: string;
  /** Collector batches, keyed by hostname. */
  eventsTopic: string;
  /** Correlator findings (protobuf Finding), keyed by hostname. */
  findingsTopic: string;
  /** Messages the correlator could not use, with a `reason` header. */
  dlqTopic: string;
  /** Partitions for topics this process creates; existing topics keep theirs. */
  partitions: number;
  replicationFactor: number;
  compression: CompressionName;
  groupId: string;
  /** Log kafkajs at info level (REVOKESCOPE_KAFKA_DEBUG). */
  debug?: boolean;
}

export const defaultKafkaSettings: Omit<KafkaSettings, 'brokers'> = {
  clientId: 'revokescope',
  eventsTopic: 'revokescope.events',
  findingsTopic: 'revokescope.findings',
  dlqTopic: 'revokescope.dlq',
  partitions: 12,
  replicationFactor: 1,
  compression: 'zstd',
  groupId: 'revokescope-correlator',
};

/** host:port[,host:port...] (the brokers a client bootstraps from). */
export function parseBrokers(v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const b of list) if (!/^[^\s:]+:\d+$/.test(b)) throw new Error(`broker '${b}' is not host:port`);
  if (list.length === 0) throw new Error('no Kafka brokers given');
  return list;
}

/** Programmatic options over the defaults (no environment). */
export function withDefaults(opts: Partial<KafkaSettings> & { brokers: string[] }): KafkaSettings {
  const out: KafkaSettings = { ...defaultKafkaSettings, brokers: opts.brokers };
  for (const k of Object.keys(defaultKafkaSettings) as (keyof typeof defaultKafkaSettings)[]) {
    if (opts[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = opts[k];
  }
  return out;
}
