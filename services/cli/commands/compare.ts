// `revokescope compare`: kernel A/B. Revoke and hold latency quantiles and finding rates of a candidate kernel against
// a baseline one, per trigger × driver stratum and overall with the baseline's mix, from the store or from two
// trace files run through the correlator (services/report/compare.ts; the method: docs/compare.md).
// Exit codes: 0 no significant regression; 1 a significant regression (for CI gates); 2 usage or input error.
import { Correlator } from '../../core/correlator/index.js';
import { COMPARE_MAX_SAMPLES, compareKernels, defaultCompareOptions, StrataBuilder, type Comparison, type KernelInput } from '../../report/compare.js';
import { renderComparison } from '../../report/compare-table.js';
import { connect } from '../../store/index.js';
import { kernelStrata } from '../../store/queries.js';
import { readTrace, TraceError } from '../../trace/index.js';
import { helpText, integer, oneOf, parseCommand, text, UsageError, type OptionTable, type Parser } from '../options.js';
import { storeOptions, storeSettings } from '../settings.js';
import { wallTime } from '../time.js';
import type { CommandIo } from './analyze.js';

const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

/** A number in an interval, for the statistics' parameters. */
function real(min: number, max: number, open: boolean): Parser<number> {
  const what = open ? `a number in (${min}, ${max})` : `a number in [${min}, ${max}]`;
  return (t, name) => {
    const n = Number(t);
    if (t.trim() === '' || !Number.isFinite(n) || (open ? n <= min || n >= max : n < min || n > max)) throw new UsageError(`${name} must be ${what}, got '${t}'`);
    return n;
  };
}

/** A kernel release or a glob of them. */
const kernel: Parser<string> = (t, name) => {
  if (t === '' || t.length > 256) throw new UsageError(`${name} must be a kernel release or glob of 1 to 256 characters`);
  return t;
};

const compareOptions = (nowMs: number) => ({
  baseline: { flag: 'baseline', arg: 'KERNEL', parse: kernel, help: 'the baseline kernel release or glob (\'6.12.*\')' },
  candidate: { flag: 'candidate', arg: 'KERNEL', parse: kernel, help: 'the candidate kernel release or glob' },
  baselineTrace: { flag: 'baseline-trace', arg: 'FILE', parse: text, help: 'the baseline\'s trace (.pb or .jsonl) instead of the store' },
  candidateTrace: { flag: 'candidate-trace', arg: 'FILE', parse: text, help: 'the candidate\'s trace (may be the same file)' },
  format: { flag: 'format', arg: 'table|json', default: 'table', parse: oneOf('table', 'json'), help: 'table for people or the JSON of the comparison' },
  alpha: { flag: 'alpha', arg: 'A', default: defaultCompareOptions.alpha, parse: real(0, 0.5, true),
    help: 'significance level and 1 − interval confidence' },
  minEffect: { flag: 'min-effect', arg: 'E', default: defaultCompareOptions.minEffect, parse: real(0, 10, false),
    help: 'a significant latency ratio is a regression above 1 + E' },
  maxSamples: { flag: 'max-samples', arg: 'N', default: COMPARE_MAX_SAMPLES, parse: integer(100, 10_000_000),
    help: 'latency values per stratum, metric and side; a uniform subsample above it (counts and weights use every episode)' },
  from: { flag: 'from', arg: 'T', parse: wallTime(nowMs),
    help: 'store: episodes from T: RFC 3339 (2026-03-01T00:00:00Z), epoch milliseconds, now, or now-DURATION (now-24h)' },
  to: { flag: 'to', arg: 'T', parse: wallTime(nowMs), help: 'store: episodes before T, as --from' },
}) satisfies OptionTable;

const HELP = helpText(`revokescope compare --baseline KERNEL --candidate KERNEL [options]           (from the store)
       revokescope compare --baseline-trace FILE --candidate-trace FILE [options]    (from two traces)`, `
Compares a candidate kernel with a baseline one: revoke latency (revoke_ns) and memory_lock hold time (hold_ns)
p50/p90/p99 and finding rates per 1000 episodes (certain and inconclusive apart), within each trigger × driver
stratum and overall, weighted by the baseline's mix of strata, so a different workload mix alone moves nothing.
Quantiles have exact order-statistic intervals; ratios are tested between hosts (Student t), p-values are
Holm-adjusted. The method: docs/compare.md.

KERNEL is a kernel release or a glob of them ('6.12.*', '7.1.?-*'); with traces it filters the trace's episodes
(default: all of them). Both traces may be the same file.`, [['options', compareOptions(0)], ['store', storeOptions]],
`exit status: 0 no significant regression (also: improvement, no difference, not enough data), 1 a significant
regression (verdict REGRESSION), 2 usage or input error.`);

/** Correlates a trace and feeds its episodes and findings to every builder. */
async function correlateInto(file: string, builders: StrataBuilder[]): Promise<void> {
  const reader = readTrace(file);
  const correlator = new Correlator();
  const drain = (): void => {
    for (const e of correlator.takeEpisodes()) for (const b of builders) b.addEpisode(e);
    for (const f of correlator.takeFindings()) for (const b of builders) b.addFinding(f);
  };
  if (reader.format === 'pb') {
    for await (const scan of reader.scans()) { correlator.ingestScan(scan); drain(); }
  } else {
    for await (const batch of reader) { correlator.ingest(batch); drain(); }
  }
  correlator.finish();
  drain();
}

export async function run(argv: string[], io: CommandIo = processIo, nowMs = Date.now(), env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values, store;
  try {
    const o = parseCommand(argv, { ...compareOptions(nowMs), ...storeOptions }, env);
    if (o.help) { io.stdout.write(`${HELP}\n`); return 0; }
    values = o.values;
    const traces = [values.baselineTrace, values.candidateTrace];
    if (traces.some((t) => t !== undefined) && traces.some((t) => t === undefined)) throw new UsageError('give both --baseline-trace and --candidate-trace');
    if (traces[0] === undefined && (values.baseline === undefined || values.candidate === undefined)) {
      throw new UsageError('give --baseline KERNEL and --candidate KERNEL (or --baseline-trace FILE and --candidate-trace FILE)');
    }
    if (traces[0] !== undefined && (values.from !== undefined || values.to !== undefined)) throw new UsageError('--from and --to apply to the store, not to traces');
    if (values.from !== undefined && values.to !== undefined && values.from >= values.to) throw new UsageError('--from must be before --to');
    store = storeSettings(values);
  } catch (e) {
    if (e instanceof UsageError) return usage(io, e.message);
    throw e;
  }
  const opts = { fromTraces: values.baselineTrace !== undefined, fromMs: values.from, toMs: values.to, alpha: values.alpha,
    minEffect: values.minEffect, maxSamples: values.maxSamples, database: store.schema.database };

  let baseline: KernelInput, candidate: KernelInput;
  if (opts.fromTraces) {
    const a = new StrataBuilder(values.baseline ?? '*', opts.maxSamples), b = new StrataBuilder(values.candidate ?? '*', opts.maxSamples);
    try {
      if (values.baselineTrace === values.candidateTrace) {
        await correlateInto(values.baselineTrace!, [a, b]);
      } else {
        await correlateInto(values.baselineTrace!, [a]);
        await correlateInto(values.candidateTrace!, [b]);
      }
    } catch (e) {
      if (e instanceof TraceError) { io.stderr.write(`revokescope compare: ${e.message}\n`); return 2; }
      throw e;
    }
    baseline = a.build();
    candidate = b.build();
  } else {
    const conn = await connect(store.connect);
    try {
      const read = async (kernel: string): Promise<KernelInput> => ({ label: kernel,
        ...await kernelStrata(conn.client, opts.database, { kernel, fromMs: opts.fromMs, toMs: opts.toMs, maxSamples: opts.maxSamples }) });
      baseline = await read(values.baseline!);
      candidate = await read(values.candidate!);
    } catch (e) {
      const m = (e as Error).message;
      if (/UNKNOWN_(TABLE|DATABASE)|doesn't exist|does not exist/i.test(m)) {
        io.stderr.write(`revokescope compare: no revokescope store at ${conn.location} (database ${opts.database}): ${m.split('\n')[0]}\n`);
        return 2;
      }
      throw e;
    } finally {
      await conn.client.close();
    }
  }
  const both = baseline.kernels.filter((k) => candidate.kernels.includes(k));
  if (!opts.fromTraces && both.length > 0) return usage(io, `kernel ${both[0]} matches both --baseline and --candidate`);
  for (const [name, side] of [['baseline', baseline], ['candidate', candidate]] as const) {
    if (side.strata.length === 0) {
      io.stderr.write(`revokescope compare: no episodes of ${name} kernel ${JSON.stringify(side.label)}${opts.fromTraces ? ' in the trace' : ' in the store'}\n`);
      return 2;
    }
  }
  const result: Comparison = compareKernels(baseline, candidate, { alpha: opts.alpha, minEffect: opts.minEffect });
  io.stdout.write(values.format === 'json' ? `${JSON.stringify(result, null, 2)}\n` : `${renderComparison(result)}\n`);
  return result.verdict === 'regression' ? 1 : 0;
}

function usage(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope compare: ${message} (see --help)\n`);
  return 2;
}
