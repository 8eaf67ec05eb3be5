// End-to-end through a real Kafka broker (test/support/kafka/broker.sh): simulated fleet → KafkaEventSink (zstd,
// idempotent, acks=all; in a worker thread) → broker → the fleet pipeline (correlator + chDB store) with p99
// ingest→finding latency; then the same topic read back by kafkajs and by @platformatic/kafka (consume + decode).
//   node dist/bench/kafka.js [--hosts 200] [--seconds 60] [--rate EVENTS_PER_S] [--concurrency 4] [--discard-store]
//                            [--no-checkpoints] [--warmup-seconds 5]
// --rate paces the producer (latency at an offered load; without it the producer floods and p99 measures the
// backlog); --discard-store is a breakdown: the same path with a store that keeps nothing.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Worker } from 'node:worker_threads';
import kafkajs from 'kafkajs';
import { simulate } from '../collectors/simulator/index.js';
import { v1, type Episode, type EventBatch, type Finding } from '../services/core/model.js';
import type { BatchScan } from '../services/core/wire.js';
import { openStore, type EventStore, type HostHealth } from '../services/store/index.js';
import { ConsumerBookkeeping } from '../services/transport/kafka/bookkeeping.js';
import { runFleet } from '../services/pipeline/fleet.js';
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

/** Breakdown only: a store that keeps nothing, to show what the Kafka + correlator path sustains on its own. */
class DiscardStore implements EventStore {
  rows = 0;
  async migrate(): Promise<void> {}
  async writeBatch(b: EventBatch): Promise<void> { this.rows += b.events?.length ?? 0; }
  async writeScan(s: BatchScan): Promise<void> { this.rows += s.count; }
  async writeEpisodes(e: Episode[]): Promise<void> { this.rows += e.length; }
  async writeFindings(f: Finding[]): Promise<void> { this.rows += f.length; }
  async writeHostHealth(h: HostHealth[]): Promise<void> { this.rows += h.length; }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
}

export async function benchKafka(opts: { hosts?: number; seconds?: number; concurrency?: number; discardStore?: boolean;
  /** Offered load in events/s (0: as fast as possible; p99 latency then measures the backlog). */
  rate?: number;
  /** Latency also reported without findings completed in the first seconds (cold JIT, first parts). */
  warmupSeconds?: number } = {}): Promise<Record<string, unknown>> {
  const stateDir = mkdtempSync(join(tmpdir(), 'rs-bench-kafka-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'rs-bench-kafka-store-'));
  const t0 = Date.now();
  const out = await run('bash', [script, 'start', '--state-dir', stateDir], { timeout: 300_000 });
  const bootstrap = /BOOTSTRAP=(\S+)/.exec(out.stdout)![1];
  const brokerStartMs = Date.now() - t0;
  const topic = `bench.${Date.now().toString(36)}`;
  const names = { eventsTopic: `${topic}.events`, findingsTopic: `${topic}.findings`, dlqTopic: `${topic}.dlq`, groupId: `${topic}.g`, partitions: 4 };
  try {
    // the producer (simulated collectors) runs in a worker thread: the consumer's event loop is its own
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const worker = new Worker(new URL(`./kafka-producer.${ext}`, import.meta.url), {
      workerData: { sink: { brokers: [bootstrap], ...names }, hosts: opts.hosts ?? 200, seconds: opts.seconds ?? 60, seed: 42, rate: opts.rate ?? 0 },
      execArgv: ext === 'ts' ? ['--import', 'tsx'] : [],
    });
    const fromWorker = (type: string) => new Promise<Record<string, number>>((res, rej) => {
      const on = (m: { type: string; message?: string }) => {
        if (m.type === 'error') { worker.off('message', on); rej(new Error(m.message)); }
        else if (m.type === type) { worker.off('message', on); res(m as unknown as Record<string, number>); }
      };
      worker.on('message', on);
      worker.once('error', rej);
    });
    const ready = await fromWorker('ready');
    const events = ready.events;
    const bytes = ready.bytes;

    // correlator consumer first (joined and waiting), then the producer
    const { store: chStore, connection } = await openStore({ dataDir });
    const bookkeeping = new ConsumerBookkeeping(connection.client, chStore.schema.database);
    await bookkeeping.migrate();
    const store: EventStore = opts.discardStore ? new DiscardStore() : chStore;
    const latencies: number[] = [];
    const steady: number[] = []; // completed after the warm-up
    let p0 = Infinity;
    const warmupMs = (opts.warmupSeconds ?? 5) * 1000;
    const stop = new AbortController();
    const fleet = runFleet({ brokers: [bootstrap], store, ...names, bookkeeping: process.argv.includes('--no-checkpoints') ? undefined : bookkeeping,
      concurrency: opts.concurrency, signal: stop.signal,
      onFindings: (f, at) => {
        const now = Date.now();
        for (let i = 0; i < f.length; i++) { latencies.push(now - at); if (at - p0 >= warmupMs) steady.push(now - at); }
      } });
    fleet.done.catch(() => {});
    // the clock starts once the group has assigned the partitions (joining is not throughput)
    while (fleet.source.assignedPartitions < names.partitions) await new Promise((r) => setTimeout(r, 20));
    p0 = Date.now();
    const produced = fromWorker('done');
    worker.postMessage('go');
    let produceMs = -1;
    void produced.then((m) => { produceMs = m.ms; });
    while (fleet.pipeline.stats.events < events && Date.now() - p0 < 600_000) await new Promise((r) => setTimeout(r, 20));
    const e2eMs = Date.now() - p0;
    const f0 = Date.now();
    await fleet.pipeline.acknowledge(false); // the store flush + checkpoints + commit that would follow
    const finalCommitMs = Date.now() - f0;
    const cstats = { ...fleet.pipeline.stats, lag: fleet.source.lag };
    stop.abort();
    await fleet.done;
    await chStore.close();
    await produced;
    await worker.terminate();
    const { batches } = simulate({ hosts: opts.hosts ?? 200, durationNs: (opts.seconds ?? 60) * 1e9, seed: 42 });
    const encoded = batches.map((b) => ({ key: b.host!.hostname!, value: v1.EventBatch.encode(b).finish() }));
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
      produce: { eventsPerSec: Math.round(events / (produceMs / 1000)), ms: produceMs, codec: 'zstd', thread: 'worker', offered: opts.rate || 'max' },
      endToEnd: { eventsPerSec: Math.round(events / (e2eMs / 1000)), ms: e2eMs, findings: latencies.length,
        ingestToFindingMs: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), max: quantile(latencies, 1) },
        afterWarmup: { seconds: warmupMs / 1000, findings: steady.length, p50: quantile(steady, 0.5), p99: quantile(steady, 0.99),
          max: quantile(steady, 1) },
        finalCommitMs, consumer: cstats, store: opts.discardStore ? 'discard (breakdown: Kafka + correlator only)' : 'chDB',
        note: 'producer → broker → correlator consumer → chDB store; latency = finding emitted − CreateTime of the batch that completed it' },
      consumeAndDecode: { codec: 'gzip', kafkajs: kafkajsRead, platformatic },
    };
  } finally {
    await run('bash', [script, 'stop', '--state-dir', stateDir, '--purge'], { timeout: 60_000 }).catch(() => {});
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : undefined; };
  benchKafka({ hosts: arg('hosts'), seconds: arg('seconds'), concurrency: arg('concurrency'), rate: arg('rate'),
    warmupSeconds: arg('warmup-seconds'),
    discardStore: process.argv.includes('--discard-store') }).then((r) => console.log(JSON.stringify(r, null, 2)), (e) => { console.error(e); process.exitCode = 1; });
}
