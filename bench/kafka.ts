// End-to-end through a real Kafka broker (test/support/kafka/broker.sh): simulated fleet → KafkaEventSink (zstd,
// idempotent, acks=all) → broker → CorrelatorConsumer (correlator + chDB store) with p99 ingest→finding latency;
// then the same topic read back by kafkajs and by @platformatic/kafka in the same run (consume + decode).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import kafkajs from 'kafkajs';
import { simulate } from '../collectors/simulator/index.js';
import { v1 } from '../services/core/model.js';
import { openStore } from '../services/store/index.js';
import { CorrelatorConsumer } from '../services/transport/kafka/consumer.js';
import { createKafkaSink } from '../services/transport/kafka/producer.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
// source: bench/kafka.ts; compiled: dist/bench/kafka.js
const repo = here.includes(`${join('dist', 'bench')}`) ? resolve(here, '../..') : resolve(here, '..');
const script = join(repo, 'test/support/kafka/broker.sh');

function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

export async function benchKafka(opts: { hosts?: number; seconds?: number } = {}): Promise<Record<string, unknown>> {
  const stateDir = mkdtempSync(join(tmpdir(), 'rs-bench-kafka-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'rs-bench-kafka-store-'));
  const t0 = Date.now();
  const out = await run('bash', [script, 'start', '--state-dir', stateDir], { timeout: 300_000 });
  const bootstrap = /BOOTSTRAP=(\S+)/.exec(out.stdout)![1];
  const brokerStartMs = Date.now() - t0;
  const topic = `bench.${Date.now().toString(36)}`;
  const names = { eventsTopic: `${topic}.events`, findingsTopic: `${topic}.findings`, dlqTopic: `${topic}.dlq`, groupId: `${topic}.g`, partitions: 4 };
  try {
    const { batches } = simulate({ hosts: opts.hosts ?? 200, durationNs: (opts.seconds ?? 60) * 1e9, seed: 42 });
    const encoded = batches.map((b) => ({ key: b.host!.hostname!, value: v1.EventBatch.encode(b).finish() }));
    const events = batches.reduce((n, b) => n + (b.events?.length ?? 0), 0);
    const bytes = encoded.reduce((n, m) => n + m.value.byteLength, 0);

    // correlator consumer first (joined and waiting), then the producer
    const { store } = await openStore({ dataDir });
    const latencies: number[] = [];
    const consumer = new CorrelatorConsumer({ brokers: [bootstrap], store, ...names, commitIntervalMs: 1000,
      onFindings: (f, at) => { const now = Date.now(); for (let i = 0; i < f.length; i++) latencies.push(now - at); } });
    const sink = await createKafkaSink({ brokers: [bootstrap], ...names });
    await consumer.start();
    const p0 = Date.now();
    // one send per batch, as collectors do; the sink coalesces them (1 MiB / 5 ms linger) with backpressure
    await Promise.all(encoded.map((m) => sink.send([m])));
    const produceMs = Date.now() - p0;
    while (consumer.stats.events < events && Date.now() - p0 < 600_000) await new Promise((r) => setTimeout(r, 20));
    const e2eMs = Date.now() - p0;
    await consumer.stop();
    await store.close();
    await sink.close();
    // @platformatic/kafka 1.x has no zstd on Node 20: both clients read a gzip copy of the topic
    const gzipTopic = `${names.eventsTopic}.gzip`;
    const gz = await createKafkaSink({ brokers: [bootstrap], ...names, eventsTopic: gzipTopic, topic: gzipTopic, compression: 'gzip' });
    await Promise.all(encoded.map((m) => gz.send([m])));
    await gz.close();

    // the same topic, read back by both clients (consume + decode every batch)
    const readKafkajs = async () => {
      const kafka = new kafkajs.Kafka({ brokers: [bootstrap], logLevel: kafkajs.logLevel.NOTHING });
      const c = kafka.consumer({ groupId: `${topic}.kafkajs`, maxBytesPerPartition: 4 << 20 });
      await c.connect(); await c.subscribe({ topic: gzipTopic, fromBeginning: true });
      let n = 0; const s = Date.now();
      await new Promise<void>((res) => {
        void c.run({ eachBatch: async ({ batch }) => {
          for (const m of batch.messages) n += v1.EventBatch.decode(m.value!).events.length;
          if (n >= events) res();
        } });
      });
      const ms = Date.now() - s; await c.disconnect();
      return { eventsPerSec: Math.round(events / (ms / 1000)), ms };
    };
    const readPlatformatic = async () => {
      const { Consumer, MessagesStreamModes } = await import('@platformatic/kafka');
      const c = new Consumer({ groupId: `${topic}.platformatic`, clientId: 'bench', bootstrapBrokers: [bootstrap], maxBytes: 4 << 20 });
      const s = Date.now(); let n = 0;
      const stream = await c.consume({ topics: [gzipTopic], mode: MessagesStreamModes.EARLIEST });
      for await (const m of stream) {
        n += v1.EventBatch.decode(m.value as Buffer).events.length;
        if (n >= events) break;
      }
      const ms = Date.now() - s;
      await stream.close(); await c.close();
      return { eventsPerSec: Math.round(events / (ms / 1000)), ms };
    };
    let platformatic: unknown;
    try { platformatic = await readPlatformatic(); } catch (err) { platformatic = { error: (err as Error).message }; }
    const kafkajsRead = await readKafkajs();
    return {
      brokerStartMs, events, batches: batches.length, encodedBytes: bytes, bytesPerEvent: +(bytes / events).toFixed(1),
      produce: { eventsPerSec: Math.round(events / (produceMs / 1000)), ms: produceMs, codec: 'zstd' },
      endToEnd: { eventsPerSec: Math.round(events / (e2eMs / 1000)), ms: e2eMs, findings: latencies.length,
        ingestToFindingMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: quantile(latencies, 1) },
        note: 'producer → broker → correlator consumer → chDB store; latency = finding emitted − CreateTime of the batch that completed it' },
      consumeAndDecode: { codec: 'gzip', kafkajs: kafkajsRead, platformatic },
    };
  } finally {
    await run('bash', [script, 'stop', '--state-dir', stateDir, '--purge'], { timeout: 60_000 }).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  benchKafka().then((r) => console.log(JSON.stringify(r, null, 2)), (e) => { console.error(e); process.exitCode = 1; });
}
