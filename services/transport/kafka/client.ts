// kafkajs plumbing shared by the producer and the consumer: the client, the zstd codec and topic creation.
import { createRequire } from 'node:module';
import kafkajs, { type Admin, type ITopicConfig, type Kafka as KafkaClient } from 'kafkajs';
import { retry } from '../../lib/retry.js';
import type { CompressionName, KafkaSettings } from './config.js';

const require = createRequire(import.meta.url);
// kafkajs is CommonJS: named imports of its values do not resolve under Node's ESM loader
const { CompressionCodecs, CompressionTypes, Kafka, logLevel } = kafkajs;

let zstdRegistered = false;

/** kafkajs ships gzip only; zstd (Kafka codec id 4) comes from @mongodb-js/zstd (libzstd, off the event loop). */
export function registerZstd(): void {
  if (zstdRegistered) return;
  const zstd = require('@mongodb-js/zstd') as { compress(b: Buffer, level?: number): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> };
  (CompressionCodecs as Record<number, unknown>)[CompressionTypes.ZSTD] = () => ({
    async compress(encoder: { buffer: Buffer }) { return zstd.compress(encoder.buffer, 3); },
    async decompress(buffer: Buffer) { return zstd.decompress(buffer); },
  });
  zstdRegistered = true;
}

export function compressionType(name: CompressionName): number {
  switch (name) {
    case 'zstd': registerZstd(); return CompressionTypes.ZSTD;
    case 'gzip': return CompressionTypes.GZIP;
    default: return CompressionTypes.None;
  }
}

export function kafkaClient(s: Pick<KafkaSettings, 'brokers' | 'clientId' | 'debug'>, level: number = logLevel.NOTHING): KafkaClient {
  registerZstd(); // consumers must read zstd batches whatever this process produces
  // kafkajs logs every retried request as ERROR; failures that matter surface as rejected calls
  const debug = s.debug ? logLevel.INFO : level;
  return new Kafka({
    clientId: s.clientId, brokers: s.brokers, logLevel: debug,
    retry: { initialRetryTime: 100, retries: 8, maxRetryTime: 5_000 },
    connectionTimeout: 3_000,
  });
}

/** Create the events, findings and DLQ topics when missing. An existing topic keeps its partition count:
 * growing it would move hostnames to other partitions and break per-host order. */
export async function ensureTopics(admin: Admin, s: KafkaSettings): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const want: ITopicConfig[] = [s.eventsTopic, s.findingsTopic, s.dlqTopic]
    .filter((t) => !existing.has(t))
    .map((topic) => ({ topic, numPartitions: s.partitions, replicationFactor: s.replicationFactor }));
  if (want.length === 0) return;
  try {
    await admin.createTopics({ topics: want, waitForLeaders: false });
  } catch (err) {
    // another process may have created it between listTopics and createTopics
    if (!/already exists/i.test(String((err as Error).message))) throw err;
  }
  // Until every partition has a leader. A KRaft broker under load answers UNKNOWN_TOPIC_OR_PARTITION for a moment
  // after creating a topic, which kafkajs' own wait (LEADER_NOT_AVAILABLE only) does not retry.
  await retry(async () => {
    const { topics } = await admin.fetchTopicMetadata({ topics: want.map((t) => t.topic) });
    const waiting = topics.filter((t) => t.partitions.length === 0 || t.partitions.some((p) => p.leader < 0)).map((t) => t.name);
    if (waiting.length > 0) throw new TopicsNotReady(waiting);
  }, { tries: 120, baseMs: 250, maxMs: 1_000, retriable: (err) => err instanceof TopicsNotReady || NOT_READY.has((err as { type?: string }).type ?? '') });
}

const NOT_READY = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'LEADER_NOT_AVAILABLE']);

class TopicsNotReady extends Error {
  constructor(topics: string[]) { super(`topics without a leader yet: ${topics.join(', ')}`); }
}
