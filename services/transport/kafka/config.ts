// Fleet transport settings (DESIGN §2, §7, §8): flags win over REVOKESCOPE_* environment variables, which win
// over the defaults below.
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

function positiveInt(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'`);
  return n;
}

export function parseBrokers(v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const b of list) if (!/^[^\s:]+:\d+$/.test(b)) throw new Error(`broker '${b}' is not host:port`);
  if (list.length === 0) throw new Error('no Kafka brokers given');
  return list;
}

function compression(v: string | undefined): CompressionName | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 'zstd' || v === 'gzip' || v === 'none') return v;
  throw new Error(`compression must be zstd, gzip or none, got '${v}'`);
}

/** Settings from explicit values (flags) over REVOKESCOPE_KAFKA_* env vars over defaults. */
export function kafkaSettings(flags: Partial<Record<keyof KafkaSettings, string | undefined>> = {},
  env: NodeJS.ProcessEnv = process.env): KafkaSettings {
  const pick = (flag: string | undefined, envName: string) => flag ?? env[envName];
  const brokers = pick(flags.brokers as string | undefined, 'REVOKESCOPE_KAFKA_BROKERS');
  if (!brokers) throw new Error('Kafka brokers are required (--kafka HOST:PORT[,...] or REVOKESCOPE_KAFKA_BROKERS)');
  const d = defaultKafkaSettings;
  return {
    brokers: parseBrokers(brokers),
    clientId: pick(flags.clientId, 'REVOKESCOPE_KAFKA_CLIENT_ID') ?? d.clientId,
    eventsTopic: pick(flags.eventsTopic, 'REVOKESCOPE_KAFKA_EVENTS_TOPIC') ?? d.eventsTopic,
    findingsTopic: pick(flags.findingsTopic, 'REVOKESCOPE_KAFKA_FINDINGS_TOPIC') ?? d.findingsTopic,
    dlqTopic: pick(flags.dlqTopic, 'REVOKESCOPE_KAFKA_DLQ_TOPIC') ?? d.dlqTopic,
    partitions: positiveInt('partitions', pick(flags.partitions, 'REVOKESCOPE_KAFKA_PARTITIONS')) ?? d.partitions,
    replicationFactor: positiveInt('replication factor', pick(flags.replicationFactor, 'REVOKESCOPE_KAFKA_REPLICATION')) ?? d.replicationFactor,
    compression: compression(pick(flags.compression, 'REVOKESCOPE_KAFKA_COMPRESSION')) ?? d.compression,
    groupId: pick(flags.groupId, 'REVOKESCOPE_KAFKA_GROUP') ?? d.groupId,
  };
}

/** Programmatic options over the defaults (no environment). */
export function withDefaults(opts: Partial<KafkaSettings> & { brokers: string[] }): KafkaSettings {
  const out: KafkaSettings = { ...defaultKafkaSettings, brokers: opts.brokers };
  for (const k of Object.keys(defaultKafkaSettings) as (keyof typeof defaultKafkaSettings)[]) {
    if (opts[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = opts[k];
  }
  return out;
}
