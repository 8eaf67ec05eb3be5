// revokescope collect: trace this host's kernel into EventBatches (docs/design.md §7).
import { writeFileSync } from 'node:fs';
import { readKernelFacts } from '../../../collectors/probes/kernel.js';
import { describePlan, makePlan } from '../../../collectors/probes/plan.js';
import { bpftraceScript } from '../../../collectors/bpftrace/script.js';
import { fileSink, firstSeqOfRun, runAgent, type BackendName } from '../../../collectors/agent/agent.js';
import type { CollectorOutput, OutputFailure } from '../../../collectors/agent/spool-output.js';
import type { FsyncPolicy } from '../../../collectors/agent/spool.js';
import type { HostInfo } from '../../core/model.js';
import type { KafkaEventSink } from '../../transport/kafka/producer.js';
import { duration, helpText, integer, oneOf, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { kafkaOptions, kafkaSettingsOf } from '../settings.js';

const FAILURE_TEXT: Record<OutputFailure, string> = {
  send: 'kafka send failed (counted as dropped)',
  'spool-write': 'spool write failed, batch counted as dropped',
  replay: 'kafka send of spooled batches failed (kept, retrying)',
  'spool-read': 'spool read failed (retrying)',
  'spool-commit': 'spool position not saved (a restart resends what was sent)',
};

const collectOptions = {
  backend: { flag: 'backend', arg: 'ftrace|bpftrace', default: 'ftrace' as BackendName, parse: oneOf<BackendName>('ftrace', 'bpftrace'),
    help: 'tracefs kprobe events or a bpftrace program' },
  dryRun: { flag: 'dry-run', boolean: true, help: 'print the plan: which probe attaches where, what is missing and what that costs in findings; attaches nothing' },
  printScript: { flag: 'print-script', boolean: true, help: 'with --dry-run and --backend bpftrace: print the generated program' },
  out: { flag: 'out', arg: 'FILE', default: '-', parse: text, help: '.jsonl or .pb trace file (- = JSON lines on stdout)' },
  duration: { flag: 'duration', arg: 'DURATION', parse: duration({ min: 1e6 }), help: 'stop after this long (default: at SIGINT/SIGTERM)' },
  readyFile: { flag: 'ready-file', arg: 'FILE', parse: text, help: 'written once the probes are attached (for scripts)' },
  kallsyms: { flag: 'kallsyms', arg: 'FILE', parse: text, help: 'plan from a recorded /proc/kallsyms instead of this host\'s' },
  filterFunctions: { flag: 'filter-functions', arg: 'FILE', parse: text, help: 'a recorded available_filter_functions' },
  btfDir: { flag: 'btf-dir', arg: 'DIR', parse: text, help: 'recorded BTF (/sys/kernel/btf) for field offsets' },
  release: { flag: 'release', arg: 'R', parse: text, help: 'the kernel release the recorded facts belong to' },
  bpftrace: { flag: 'bpftrace', arg: 'PATH', default: 'bpftrace', parse: text, help: 'the bpftrace binary' },
  attachTimeout: { flag: 'attach-timeout', arg: 'DURATION', default: 120e9, parse: duration({ min: 1e9 }),
    help: 'how long bpftrace may take to compile and attach (slow guests need more)' },
  noCallSites: { flag: 'no-call-sites', boolean: true,
    help: 'probe down_write, up_write, unmap_mapping_range ... themselves (filtered by caller) instead of vfio-pci-core\'s calls of them (the cost: BENCHMARKS.md)' },
  raw: { flag: 'raw', arg: 'FILE', parse: text, help: 'also keep the backend\'s raw text (trace_pipe / bpftrace lines)' },
  stacks: { flag: 'stacks', boolean: true,
    help: 'kernel stacks on the revoke steps (memory_lock taken for write, zaps, DMABUF revokes, BAR faults): each distinct stack sent once per boot, events name it by id. Off by default: the stack walk lengthens the revoke latency it measures (lab: +21-25% bpftrace, +31-53% ftrace; BENCHMARKS.md)' },
  spoolDir: { flag: 'spool-dir', arg: 'DIR', parse: text,
    help: 'with --kafka: disk spool for batches the broker does not acknowledge in time (also while it is unreachable at start), replayed in order (default /var/lib/revokescope/spool)' },
  spoolMaxBytes: { flag: 'spool-max-bytes', arg: 'N', parse: integer(1), help: 'spool size bound; what fits nowhere is reported as dropped (default 268435456)' },
  spoolFsync: { flag: 'spool-fsync', arg: 'POLICY', parse: oneOf<FsyncPolicy>('always', 'interval', 'never'), help: 'always | interval (every second, default) | never' },
} satisfies OptionTable;

/** What collect uses of Kafka: the producer's settings (brokers, topic, compression). */
const { brokers, eventsTopic, compression, clientId, debug } = kafkaOptions;
const producerOptions = { brokers, eventsTopic, compression, clientId, debug } satisfies OptionTable;

const HELP = helpText('revokescope collect [--backend ftrace|bpftrace] [--dry-run] [--out FILE | --kafka BROKERS] [--duration 30s]', `
Attaches the probe profile of this kernel's era (chosen from /proc/kallsyms and available_filter_functions,
offsets from BTF) and writes EventBatches: to a trace file, or to Kafka (topic revokescope.events, key = hostname,
idempotent) with a disk spool for what the broker does not take.`, [['options', collectOptions], ['kafka', producerOptions]],
'Needs root (tracefs, kprobes). Probes are removed on exit, and at start after a crash.');

/** --duration in ms: 30s, 500ms, 2m; a bare number is seconds (the options table's duration parser). */
export function parseDuration(s: string): number {
  return duration({ min: 1 })(s, '--duration') / 1e6;
}

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values, settings;
  try {
    const o = parseCommand(argv, { ...collectOptions, ...kafkaOptions }, env);
    if (o.help) { console.log(HELP); return 0; }
    values = o.values;
    settings = kafkaSettingsOf(values, false);
    if ((values.spoolDir || values.spoolMaxBytes || values.spoolFsync) && !settings) throw new UsageError('--spool-* options need --kafka');
  } catch (e) {
    if (e instanceof UsageError) { console.error(`revokescope collect: ${e.message} (see --help)`); return 2; }
    throw e;
  }
  const backend = values.backend;
  const durationMs = values.duration === undefined ? undefined : values.duration / 1e6;
  const attachTimeoutMs = values.attachTimeout / 1e6;

  const t0 = performance.now();
  const facts = readKernelFacts({ kallsyms: values.kallsyms, filterFunctions: values.filterFunctions, btfRoot: values.btfDir, release: values.release });
  if (values.noCallSites) { facts.callSites = undefined; facts.callSitesError = 'disabled (--no-call-sites)'; }
  const plan = makePlan(facts);
  if (!values.dryRun) console.error(`collect: process up ${(process.uptime() * 1000 - (performance.now() - t0)).toFixed(0)} ms, kernel facts + plan ${(performance.now() - t0).toFixed(0)} ms`);
  if (values.dryRun) {
    console.log(describePlan(plan, backend));
    if (values.printScript && backend === 'bpftrace') console.log('\n' + bpftraceScript(plan, plan.attach, process.pid, values.stacks));
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
    const spool = await DiskSpool.open({ dir: values.spoolDir ?? '/var/lib/revokescope/spool', maxBytes: values.spoolMaxBytes, fsync: values.spoolFsync ?? 'interval' });
    output = (host) => new CollectorOutput({ host, sink, spool, firstSeq: firstSeqOfRun(),
      onError: (err, where) => console.error(`collect: ${FAILURE_TEXT[where]}: ${(err as Error).message}`) });
  }
  const stats = await runAgent({
    backend, plan, facts, durationMs, sink: output ? undefined : fileSink(values.out), output, stop: stopP, bpftracePath: values.bpftrace, rawOut: values.raw, attachTimeoutMs, env,
    stacks: values.stacks,
    onReady: () => { if (values.readyFile) writeFileSync(values.readyFile, `${process.pid}\n`); },
  });
  await kafkaSink?.close(); // the output flushed (or spooled) every batch before this
  process.stderr.write(`collect: ${JSON.stringify(stats)}\n`);
  return 0;
}
