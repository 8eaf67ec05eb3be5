// revokescope collect: trace this host's kernel into EventBatches (DESIGN §7).
import { writeFileSync } from 'node:fs';
import { parseDuration as parseCliDuration } from '../duration.js';
import { parseArgs } from 'node:util';
import { readKernelFacts } from '../../../collectors/probes/kernel.js';
import { describePlan, makePlan } from '../../../collectors/probes/plan.js';
import { bpftraceScript } from '../../../collectors/bpftrace/script.js';
import { fileSink, firstSeqOfRun, runAgent, type BackendName } from '../../../collectors/agent/agent.js';
import type { CollectorOutput } from '../../../collectors/agent/spool-output.js';
import type { FsyncPolicy } from '../../../collectors/agent/spool.js';
import type { HostInfo } from '../../core/model.js';
import type { KafkaEventSink } from '../../transport/kafka/producer.js';
import { kafkaSettings } from '../../transport/kafka/config.js';

const HELP = `usage: revokescope collect [--backend ftrace|bpftrace] [--dry-run] [--out FILE | --kafka BROKERS] [--duration 30s]

Attaches the probe profile of this kernel's era (chosen from /proc/kallsyms and
available_filter_functions, offsets from BTF) and writes EventBatches.

  --backend B        ftrace (tracefs kprobe events, default) or bpftrace
  --dry-run          print the plan: which probe attaches where, what is missing and
                     what that costs in findings; attaches nothing
  --out FILE         .jsonl or .pb trace file ('-' = JSON lines on stdout, default)
  --kafka BROKERS    produce batches to Kafka (topic revokescope.events, key = hostname, idempotent, zstd;
                     env REVOKESCOPE_KAFKA_BROKERS, REVOKESCOPE_KAFKA_EVENTS_TOPIC, _COMPRESSION) instead of --out
  --spool-dir DIR    with --kafka: disk spool for batches the broker does not acknowledge in time (also
                     while it is not reachable at start); replayed in order when it is back
                     (default /var/lib/revokescope/spool)
  --spool-max-bytes N  spool size bound (default 268435456); what fits nowhere is reported as dropped
  --spool-fsync P    always | interval (every second, default) | never
  --duration D       stop after D (e.g. 30s, 500ms, 2m); default: until SIGINT/SIGTERM
  --ready-file F     write F once the probes are attached (for scripts)
  --print-script     with --dry-run and --backend bpftrace: print the generated program
  --kallsyms F, --filter-functions F, --btf-dir D, --release R
                     plan from recorded kernel facts instead of this host's
  --bpftrace PATH    bpftrace binary (default: bpftrace on PATH)
  --attach-timeout D how long bpftrace may take to compile and attach (default 120s; slow guests need more)
  --no-call-sites    probe down_write, up_write, unmap_mapping_range ... themselves (filtered by caller) instead
                     of vfio-pci-core's calls of them (what the host pays is in BENCHMARKS.md)
  --raw FILE         also keep the backend's raw text (trace_pipe / bpftrace lines)
Needs root (tracefs, kprobes). Probes are removed on exit, and at start after a crash.`;

/** --duration in ms: 30s, 500ms, 2m; a bare number is seconds (services/cli/duration.ts). */
export function parseDuration(s: string): number {
  return parseCliDuration(s, '--duration', 's') / 1e6;
}

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, options: {
      backend: { type: 'string', default: 'ftrace' }, 'dry-run': { type: 'boolean' }, out: { type: 'string', default: '-' },
      duration: { type: 'string' }, 'ready-file': { type: 'string' }, 'print-script': { type: 'boolean' },
      kallsyms: { type: 'string' }, 'filter-functions': { type: 'string' }, 'btf-dir': { type: 'string' }, release: { type: 'string' },
      bpftrace: { type: 'string' }, raw: { type: 'string' }, 'attach-timeout': { type: 'string' }, 'no-call-sites': { type: 'boolean' }, kafka: { type: 'string' }, 'spool-dir': { type: 'string' },
      'spool-max-bytes': { type: 'string' }, 'spool-fsync': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (e) {
    console.error(`revokescope collect: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }
  const backend = values.backend as BackendName;
  if (backend !== 'ftrace' && backend !== 'bpftrace') { console.error(`revokescope collect: unknown backend '${backend}' (ftrace|bpftrace)`); return 2; }
  let durationMs: number | undefined, attachTimeoutMs: number | undefined;
  try {
    durationMs = values.duration ? parseDuration(values.duration) : undefined;
    attachTimeoutMs = values['attach-timeout'] ? parseDuration(values['attach-timeout']) : undefined;
  }
  catch (e) { console.error(`revokescope collect: ${(e as Error).message}`); return 2; }

  let settings: ReturnType<typeof kafkaSettings> | undefined;
  let spoolMax: number | undefined;
  const fsync = (values['spool-fsync'] ?? 'interval') as FsyncPolicy;
  try {
    if (values.kafka !== undefined) settings = kafkaSettings({ brokers: values.kafka });
    if ((values['spool-dir'] || values['spool-max-bytes'] || values['spool-fsync']) && !settings) throw new Error('--spool-* options need --kafka');
    if (values['spool-max-bytes'] !== undefined) {
      spoolMax = Number(values['spool-max-bytes']);
      if (!Number.isInteger(spoolMax) || spoolMax < 1) throw new Error('--spool-max-bytes must be a positive integer');
    }
    if (!['always', 'interval', 'never'].includes(fsync)) throw new Error('--spool-fsync must be always, interval or never');
  } catch (e) { console.error(`revokescope collect: ${(e as Error).message}`); return 2; }

  const t0 = performance.now();
  const facts = readKernelFacts({ kallsyms: values.kallsyms, filterFunctions: values['filter-functions'], btfRoot: values['btf-dir'], release: values.release });
  if (values['no-call-sites']) { facts.callSites = undefined; facts.callSitesError = 'disabled (--no-call-sites)'; }
  const plan = makePlan(facts);
  if (!values['dry-run']) console.error(`collect: process up ${(process.uptime() * 1000 - (performance.now() - t0)).toFixed(0)} ms, kernel facts + plan ${(performance.now() - t0).toFixed(0)} ms`);
  if (values['dry-run']) {
    console.log(describePlan(plan, backend));
    if (values['print-script'] && backend === 'bpftrace') console.log('\n' + bpftraceScript(plan));
    return 0;
  }
  if (values.out === '-' && process.stdout.isTTY) console.error('revokescope collect: writing JSON lines to the terminal (use --out FILE)');
  let stop!: () => void;
  const stopP = new Promise<void>((r) => { stop = r; });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop());
  let output: ((host: HostInfo) => CollectorOutput) | undefined;
  let kafkaSink: KafkaEventSink | undefined;
  if (settings) {
    // loaded only here: kafkajs and the spool cost seconds of startup in slow guests (the kernel lab's TCG)
    const [{ startKafkaSink }, { DiskSpool }, { CollectorOutput }] = await Promise.all([import('../../transport/kafka/producer.js'),
      import('../../../collectors/agent/spool.js'), import('../../../collectors/agent/spool-output.js')]);
    // connects in the background: an agent started while Kafka is unreachable spools (and says so once)
    let warned = false;
    const sink = kafkaSink = startKafkaSink(settings, (err) => {
      if (!warned) console.error(`collect: kafka not reachable yet (${(err as Error).message}); batches spool until it is`);
      warned = true;
    });
    const spool = await DiskSpool.open({ dir: values['spool-dir'] ?? '/var/lib/revokescope/spool', maxBytes: spoolMax, fsync });
    output = (host) => new CollectorOutput({ host, sink, spool, firstSeq: firstSeqOfRun(),
      onError: (err) => console.error(`collect: kafka send failed (counted as dropped): ${(err as Error).message}`) });
  }
  const stats = await runAgent({
    backend, plan, facts, durationMs, sink: output ? undefined : fileSink(values.out!), output, stop: stopP, bpftracePath: values.bpftrace, rawOut: values.raw, attachTimeoutMs,
    onReady: () => { if (values['ready-file']) writeFileSync(values['ready-file'], `${process.pid}\n`); },
  });
  await kafkaSink?.close(); // the output flushed (or spooled) every batch before this
  process.stderr.write(`collect: ${JSON.stringify(stats)}\n`);
  return 0;
}
