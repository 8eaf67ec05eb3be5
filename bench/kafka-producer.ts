// Worker thread of bench/kafka.ts: the simulated fleet's collectors, producing to Kafka off the consumer's
// event loop (in a fleet they are other machines; here they share the 2 cores but not the thread).
import { parentPort, workerData } from 'node:worker_threads';
import { simulate } from '../collectors/simulator/index.js';
import { v1 } from '../services/core/model.js';
import { createKafkaSink, type KafkaSinkOptions } from '../services/transport/kafka/producer.js';

export interface ProducerJob { sink: KafkaSinkOptions; hosts: number; seconds: number; seed: number;
  /** Offered load in events/s (paced every 10 ms); 0 = as fast as the broker takes it. */
  rate: number }

async function main(job: ProducerJob): Promise<void> {
  // only the encoded messages and their event counts stay alive: the decoded fleet (≈ 1 GB of objects at 600 s)
  // would otherwise sit in this thread's heap through the measurement and cost major GCs on the shared cores
  const { encoded, counts } = (() => {
    const { batches } = simulate({ hosts: job.hosts, durationNs: job.seconds * 1e9, seed: job.seed });
    return { encoded: batches.map((b) => ({ key: b.host!.hostname!, value: v1.EventBatch.encode(b).finish() })),
      counts: batches.map((b) => b.events?.length ?? 0) };
  })();
  const events = counts.reduce((n, c) => n + c, 0);
  const bytes = encoded.reduce((n, m) => n + m.value.byteLength, 0);
  const sink = await createKafkaSink(job.sink);
  parentPort!.postMessage({ type: 'ready', events, batches: encoded.length, bytes });
  await new Promise<void>((r) => parentPort!.once('message', () => r()));
  const t0 = Date.now();
  // one send per batch, as collectors do; the sink coalesces them (1 MiB / 5 ms linger) with backpressure
  if (!job.rate) {
    await Promise.all(encoded.map((m) => sink.send([m])));
  } else {
    const sends: Promise<void>[] = [];
    let sent = 0;
    for (let i = 0; i < encoded.length; i++) {
      const due = t0 + (sent / job.rate) * 1000;
      if (due - Date.now() > 10) await new Promise((r) => setTimeout(r, due - Date.now()));
      sends.push(sink.send([encoded[i]]));
      sent += counts[i]!;
    }
    await Promise.all(sends);
  }
  const ms = Date.now() - t0;
  await sink.close();
  parentPort!.postMessage({ type: 'done', ms });
}

if (parentPort) main(workerData as ProducerJob).catch((err) => { parentPort!.postMessage({ type: 'error', message: String(err?.stack ?? err) }); });
