// `revokescope simulate`: a simulated fleet (collectors/simulator) written as a trace (.jsonl or .pb by
// extension) plus its injected ground truth as FILE.truth.json. Streams: batches go to the file as the
// simulator yields them, so memory stays bounded for long runs.
// Exit codes: 0 written; 2 usage error or the output cannot be written.
import { writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { FleetSimulator, type SimulateOptions } from '../../../collectors/simulator/index.js';
import { TraceError, openTraceWriter, traceFormatOf } from '../../trace/index.js';
import { DurationError, parseDuration } from '../duration.js';
import { v1, type EventBatch } from '../../core/model.js';
import { kafkaSettings } from '../../transport/kafka/config.js';
import { createKafkaSink, type KafkaEventSink } from '../../transport/kafka/producer.js';

export interface CommandIo { stdout: Writable; stderr: Writable }
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

const HELP = `usage: revokescope simulate (--out FILE | --kafka BROKERS) [options]

Generates the trace of a simulated fleet: kernel eras from pre-6.11 to the DMABUF-mmap series, vfio-pci,
nvgrace-gpu, hisi_acc_vfio_pci and mlx5_vfio_pci devices, resets, hot resets, FLR, D3hot, runtime PM and
slow DMABUF importers, with injected faults for every finding kind. The ground truth (hosts, injected
faults, the findings analyze must report) is written to FILE.truth.json.

options:
  --out FILE          trace to write: .jsonl (proto3 JSON lines) or .pb (length-delimited protobuf)
  --kafka BROKERS     also (or instead of --out) produce the batches to Kafka like collectors do: topic
                      revokescope.events, key = hostname, idempotent, zstd (env REVOKESCOPE_KAFKA_BROKERS;
                      REVOKESCOPE_KAFKA_EVENTS_TOPIC, _PARTITIONS, _REPLICATION, _COMPRESSION apply)
  --realtime          with --kafka: pace batches in simulated real time (a batch is sent when its host's
                      simulated clock is reached); default: as fast as the broker takes them
  --hosts N           hosts in the fleet (default 10)
  --duration DURATION simulated time per host (default 60s)
  --seed S            integer seed; the same seed gives the same bytes (default 1)
  --no-faults         a correct fleet: analyze must report no finding
  -h, --help          this text

DURATION: 60s, 1500ms, 2m, or a plain number of nanoseconds.`;

class UsageError extends Error {}

function integer(text: string, name: string, min: number): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${name} must be an integer, not ${JSON.stringify(text)}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${name} must be an integer >= ${min}, not ${text}`);
  return n;
}

export async function run(argv: string[], io: CommandIo = processIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        out: { type: 'string', short: 'o' },
        hosts: { type: 'string', default: '10' },
        duration: { type: 'string', default: '60s' },
        seed: { type: 'string', default: '1' },
        'no-faults': { type: 'boolean', default: false },
        kafka: { type: 'string' },
        realtime: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (e) {
    return usageError(io, (e as Error).message);
  }
  if (values.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  let opts: SimulateOptions;
  let out: string | undefined;
  let kafka: ReturnType<typeof kafkaSettings> | undefined;
  try {
    if (positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (values.kafka !== undefined) {
      try { kafka = kafkaSettings({ brokers: String(values.kafka) }); } catch (e) { throw new UsageError((e as Error).message); }
    }
    if (!values.out && !kafka) throw new UsageError('missing --out FILE (or --kafka BROKERS)');
    if (values.realtime && !kafka) throw new UsageError('--realtime needs --kafka');
    out = values.out ? String(values.out) : undefined;
    if (out === '-') throw new UsageError('--out needs a file name (FILE.truth.json is written beside it)');
    if (out) traceFormatOf(out);
    opts = {
      hosts: integer(String(values.hosts), '--hosts', 1),
      durationNs: parseDuration(String(values.duration), '--duration'),
      seed: integer(String(values.seed), '--seed', Number.MIN_SAFE_INTEGER),
      faults: !values['no-faults'],
    };
    if (opts.durationNs <= 0) throw new UsageError('--duration must be > 0');
  } catch (e) {
    if (e instanceof UsageError || e instanceof DurationError || e instanceof TraceError) return usageError(io, e.message);
    throw e;
  }

  const sim = new FleetSimulator(opts);
  const writer = out ? openTraceWriter(out) : undefined;
  let sink: KafkaEventSink | undefined;
  let sent = 0;
  try {
    if (kafka) sink = await createKafkaSink(kafka);
    const pace = values.realtime ? realtimePacer() : undefined;
    let inflight: Promise<void>[] = [];
    for (const batch of sim.batches()) {
      if (writer) await writer.write(batch);
      if (sink) {
        if (pace) await pace(batch);
        // the sink coalesces sends into requests and applies backpressure (maxBufferedBytes)
        inflight.push(sink.send([{ key: batch.host?.hostname ?? '', value: v1.EventBatch.encode(batch).finish() }]));
        sent++;
        if (inflight.length >= 4096) { await Promise.all(inflight); inflight = []; }
      }
    }
    await Promise.all(inflight);
    await sink?.close();
    sink = undefined;
    await writer?.close();
    const truth = sim.truth();
    if (out) {
      await writeFile(`${out}.truth.json`, `${JSON.stringify(truth, null, 2)}\n`);
      io.stdout.write(`wrote ${writer!.batches} batches, ${writer!.events} events of ${opts.hosts} hosts to ${out} `
        + `(${writer!.bytes} bytes); ground truth: ${truth.faults.length} injected faults, ${truth.findings.length} expected findings `
        + `in ${out}.truth.json\n`);
    }
    if (kafka) {
      io.stdout.write(`produced ${sent} batches of ${opts.hosts} hosts to ${kafka.eventsTopic} at ${kafka.brokers.join(',')}; `
        + `ground truth: ${truth.faults.length} injected faults, ${truth.findings.length} expected findings\n`);
    }
    for (const s of truth.skippedFaults) io.stderr.write(`revokescope simulate: fault ${s.fault} not injected: ${s.reason}\n`);
    return 0;
  } catch (e) {
    await writer?.close().catch(() => undefined);
    await sink?.close().catch(() => undefined);
    if (e instanceof TraceError) {
      io.stderr.write(`revokescope simulate: ${e.message}\n`);
      return 2;
    }
    if ((e as NodeJS.ErrnoException).code) {
      io.stderr.write(`revokescope simulate: cannot write ${out}.truth.json: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

/** Simulated real time: a batch waits until the wall clock since the start reaches its host's simulated time
 * since that host's first batch (hosts are interleaved by simulated time, so one clock paces them all). */
function realtimePacer(): (batch: EventBatch) => Promise<void> {
  const t0 = performance.now();
  const firstTs = new Map<string, number>();
  return async (batch) => {
    const host = batch.host?.hostname ?? '';
    let newest = 0;
    for (const e of batch.events ?? []) if (Number(e.tsNs ?? 0) > newest) newest = Number(e.tsNs);
    if (!newest) return;
    const base = firstTs.get(host) ?? newest;
    if (!firstTs.has(host)) firstTs.set(host, newest);
    const wait = (newest - base) / 1e6 - (performance.now() - t0);
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
  };
}

function usageError(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope simulate: ${message} (see --help)\n`);
  return 2;
}
