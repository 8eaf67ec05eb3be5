// `revokescope simulate`: a simulated fleet (collectors/simulator) written as a trace (.jsonl or .pb by
// extension) plus its injected ground truth as FILE.truth.json. Streams: batches go to the file as the
// simulator yields them, so memory stays bounded for long runs.
// Exit codes: 0 written; 2 usage error or the output cannot be written.
import { writeFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { FleetSimulator, type SimulateOptions } from '../../../collectors/simulator/index.js';
import { TraceError, openTraceWriter, traceFormatOf } from '../../trace/index.js';
import { duration, helpText, integer, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { kafkaOptions, kafkaSettingsOf } from '../settings.js';
import { v1, type EventBatch } from '../../core/model.js';
import type { KafkaSettings } from '../../transport/kafka/config.js';
import { createKafkaSink, type KafkaEventSink } from '../../transport/kafka/producer.js';

export interface CommandIo { stdout: Writable; stderr: Writable }
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

const simulateOptions = {
  out: { flag: 'out', short: 'o', arg: 'FILE', parse: text,
    help: 'trace to write: .jsonl (proto3 JSON lines) or .pb (length-delimited protobuf); FILE.truth.json beside it' },
  kafka: { flag: 'kafka', env: 'REVOKESCOPE_KAFKA_BROKERS', arg: 'BROKERS', parse: kafkaOptions.brokers.parse,
    help: 'also (or instead of --out) produce the batches to Kafka like collectors do (key = hostname, idempotent, compressed)' },
  realtime: { flag: 'realtime', boolean: true,
    help: 'with --kafka: pace batches in simulated real time (a batch is sent when its host\'s clock is reached)' },
  hosts: { flag: 'hosts', arg: 'N', default: 10, parse: integer(1, 100_000), help: 'hosts in the fleet' },
  duration: { flag: 'duration', arg: 'DURATION', default: 60e9, parse: duration({ min: 1, max: 30 * 86_400e9 }),
    help: 'simulated time per host: 60s, 1500ms, 2m (a bare number is seconds)' },
  seed: { flag: 'seed', arg: 'S', default: 1, parse: integer(Number.MIN_SAFE_INTEGER), help: 'integer seed; the same seed gives the same bytes' },
  noFaults: { flag: 'no-faults', boolean: true, help: 'a correct fleet: analyze must report no finding' },
} satisfies OptionTable;

const { brokers: _brokers, ...kafkaNames } = kafkaOptions;

const HELP = helpText('revokescope simulate (--out FILE | --kafka BROKERS) [options]', `
Generates the trace of a simulated fleet: kernel eras from pre-6.11 to the DMABUF-mmap series, vfio-pci,
nvgrace-gpu, hisi_acc_vfio_pci and mlx5_vfio_pci devices, resets, hot resets, FLR, D3hot, runtime PM and
slow DMABUF importers, field conditions (a collector started late, lost events, failed ioctls, VFs) and
injected faults for every finding kind. The ground truth (hosts, injected faults, the findings analyze must
report, certain or inconclusive) is written to FILE.truth.json.`, [['options', simulateOptions], ['kafka (with --kafka)', kafkaNames]],
'exit status: 0 written; 2 usage error or the output cannot be written.');

export async function run(argv: string[], io: CommandIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let opts: SimulateOptions;
  let out: string | undefined;
  let kafka: KafkaSettings | undefined;
  let realtime = false;
  try {
    const o = parseCommand(argv, { ...simulateOptions, ...kafkaNames }, env);
    if (o.help) { io.stdout.write(`${HELP}\n`); return 0; }
    const v = o.values;
    kafka = v.kafka ? kafkaSettingsOf({ ...v, brokers: v.kafka }, true) : undefined;
    if (!v.out && !kafka) throw new UsageError('missing --out FILE (or --kafka BROKERS)');
    if (v.realtime && !kafka) throw new UsageError('--realtime needs --kafka');
    realtime = v.realtime;
    out = v.out;
    if (out === '-') throw new UsageError('--out needs a file name (FILE.truth.json is written beside it)');
    if (out) traceFormatOf(out);
    opts = { hosts: v.hosts, durationNs: v.duration, seed: v.seed, faults: !v.noFaults };
  } catch (e) {
    if (e instanceof UsageError || e instanceof TraceError) return usageError(io, e.message);
    throw e;
  }

  const sim = new FleetSimulator(opts);
  const writer = out ? openTraceWriter(out) : undefined;
  let sink: KafkaEventSink | undefined;
  let sent = 0;
  try {
    if (kafka) sink = await createKafkaSink(kafka);
    const pace = realtime ? realtimePacer() : undefined;
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
