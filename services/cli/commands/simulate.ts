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

export interface CommandIo { stdout: Writable; stderr: Writable }
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

const HELP = `usage: revokescope simulate --out FILE [options]

Generates the trace of a simulated fleet: kernel eras from pre-6.11 to the DMABUF-mmap series, vfio-pci,
nvgrace-gpu, hisi_acc_vfio_pci and mlx5_vfio_pci devices, resets, hot resets, FLR, D3hot, runtime PM and
slow DMABUF importers, with injected faults for every finding kind. The ground truth (hosts, injected
faults, the findings analyze must report) is written to FILE.truth.json.

options:
  --out FILE          trace to write: .jsonl (proto3 JSON lines) or .pb (length-delimited protobuf)
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
  let out: string;
  try {
    if (positionals.length) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    if (!values.out) throw new UsageError('missing --out FILE');
    out = String(values.out);
    if (out === '-') throw new UsageError('--out needs a file name (FILE.truth.json is written beside it)');
    traceFormatOf(out);
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
  const writer = openTraceWriter(out);
  try {
    for (const batch of sim.batches()) await writer.write(batch);
    await writer.close();
    const truth = sim.truth();
    await writeFile(`${out}.truth.json`, `${JSON.stringify(truth, null, 2)}\n`);
    io.stdout.write(`wrote ${writer.batches} batches, ${writer.events} events of ${opts.hosts} hosts to ${out} `
      + `(${writer.bytes} bytes); ground truth: ${truth.faults.length} injected faults, ${truth.findings.length} expected findings `
      + `in ${out}.truth.json\n`);
    for (const s of truth.skippedFaults) io.stderr.write(`revokescope simulate: fault ${s.fault} not injected: ${s.reason}\n`);
    return 0;
  } catch (e) {
    await writer.close().catch(() => undefined);
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

function usageError(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope simulate: ${message} (see --help)\n`);
  return 2;
}
