// `revokescope compare`: kernel A/B. Revoke and hold latency quantiles and finding rates of a candidate kernel against
// a baseline one, per trigger × driver stratum and overall with the baseline's mix, from the store or from two
// trace files run through the correlator (services/report/compare.ts; the method: docs/compare.md).
// Exit codes: 0 no significant regression; 1 a significant regression (for CI gates); 2 usage or input error.
import { parseArgs } from 'node:util';
import { Correlator } from '../../core/correlator/index.js';
import { storeFlags } from '../../pipeline/cli.js';
import { COMPARE_MAX_SAMPLES, compareKernels, defaultCompareOptions, StrataBuilder, type Comparison, type KernelInput } from '../../report/compare.js';
import { renderComparison } from '../../report/compare-table.js';
import { connect, connectOptionsFrom, defaultSchemaOptions } from '../../store/index.js';
import { kernelStrata } from '../../store/queries.js';
import { checkIdentifier } from '../../store/schema.js';
import { readTrace, TraceError } from '../../trace/index.js';
import { DurationError, parseDuration } from '../duration.js';
import type { CommandIo } from './analyze.js';

const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

const HELP = `usage: revokescope compare --baseline KERNEL --candidate KERNEL [options]           (from the store)
       revokescope compare --baseline-trace FILE --candidate-trace FILE [options]    (from two traces)

Compares a candidate kernel with a baseline one: revoke latency (revoke_ns) and memory_lock hold time (hold_ns)
p50/p90/p99 and finding rates per 1000 episodes (certain and inconclusive apart), within each trigger × driver
stratum and overall, weighted by the baseline's mix of strata, so a different workload mix alone moves nothing.
Quantiles have exact order-statistic intervals; ratios are tested between hosts (Student t), p-values are
Holm-adjusted. The method: docs/compare.md.

KERNEL is a kernel release or a glob of them ('6.12.*', '7.1.?-*'); with traces it filters the trace's episodes
(default: all of them). Both traces may be the same file.

options:
  --format table|json           table for people (default) or the JSON of the comparison
  --alpha A                     significance level and 1 − interval confidence (default ${defaultCompareOptions.alpha})
  --min-effect E                a significant latency ratio is a regression above 1 + E (default ${defaultCompareOptions.minEffect})
  --max-samples N               latency values per stratum and metric and side, a uniform subsample above it
                                (default ${COMPARE_MAX_SAMPLES}; counts and weights always use every episode)
  --from TIME, --to TIME        store: only episodes in [from, to): RFC 3339 (2026-03-01T00:00:00Z) or a duration
                                ago (24h, 90m)
  --data-dir DIR                chDB data directory (default ./data)
  --clickhouse-url URL          a ClickHouse server instead (env REVOKESCOPE_CLICKHOUSE_URL, _USER, _PASSWORD)
  --clickhouse-user U, --clickhouse-password P, --clickhouse-database D
  -h, --help                    this text

exit status: 0 no significant regression (also: improvement, no difference, not enough data), 1 a significant
regression (verdict REGRESSION), 2 usage or input error.`;

class UsageError extends Error {}

function number(v: string | undefined, name: string, ok: (n: number) => boolean, what: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new UsageError(`${name} must be ${what}, not ${JSON.stringify(v)}`);
  return n;
}

function identifier(database: string): string {
  try { return checkIdentifier('database', database); } catch (e) { throw new UsageError((e as Error).message); }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** An RFC 3339 time, or a duration before now. */
function parseTime(v: string | undefined, name: string, nowMs: number): number | undefined {
  if (v === undefined) return undefined;
  if (RFC3339.test(v)) {
    const ms = Date.parse(v);
    if (Number.isFinite(ms)) return ms;
  } else {
    try { return nowMs - parseDuration(v, name, 's') / 1e6; } catch (e) { if (!(e instanceof DurationError)) throw e; }
  }
  throw new UsageError(`${name} must be an RFC 3339 time or a duration ago (24h), not ${JSON.stringify(v)}`);
}

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

export async function run(argv: string[], io: CommandIo = processIo, nowMs = Date.now()): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
      baseline: { type: 'string' }, candidate: { type: 'string' },
      'baseline-trace': { type: 'string' }, 'candidate-trace': { type: 'string' },
      format: { type: 'string', default: 'table' }, alpha: { type: 'string' }, 'min-effect': { type: 'string' },
      'max-samples': { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false }, ...storeFlags,
    } }));
  } catch (e) {
    return usage(io, (e as Error).message);
  }
  if (values.help) { io.stdout.write(`${HELP}\n`); return 0; }
  let opts;
  try {
    if (values.format !== 'table' && values.format !== 'json') throw new UsageError(`--format must be table or json, not ${JSON.stringify(values.format)}`);
    const traces = [values['baseline-trace'], values['candidate-trace']];
    if (traces.some((t) => t !== undefined) && traces.some((t) => t === undefined)) throw new UsageError('give both --baseline-trace and --candidate-trace');
    const fromTraces = traces[0] !== undefined;
    if (!fromTraces && (values.baseline === undefined || values.candidate === undefined)) {
      throw new UsageError('give --baseline KERNEL and --candidate KERNEL (or --baseline-trace FILE and --candidate-trace FILE)');
    }
    for (const k of ['baseline', 'candidate'] as const) {
      const v = values[k];
      if (v !== undefined && (v === '' || v.length > 256)) throw new UsageError(`--${k} must be a kernel release or glob of 1 to 256 characters`);
    }
    if (fromTraces && (values.from !== undefined || values.to !== undefined)) throw new UsageError('--from and --to apply to the store, not to traces');
    const fromMs = parseTime(values.from, '--from', nowMs), toMs = parseTime(values.to, '--to', nowMs);
    if (fromMs !== undefined && toMs !== undefined && fromMs >= toMs) throw new UsageError('--from must be before --to');
    opts = {
      fromTraces, fromMs, toMs,
      alpha: number(values.alpha, '--alpha', (n) => n > 0 && n < 0.5, 'a number in (0, 0.5)') ?? defaultCompareOptions.alpha,
      minEffect: number(values['min-effect'], '--min-effect', (n) => n >= 0 && n <= 10, 'a number in [0, 10]') ?? defaultCompareOptions.minEffect,
      maxSamples: number(values['max-samples'], '--max-samples', (n) => Number.isInteger(n) && n >= 100 && n <= 10_000_000, 'an integer in [100, 10000000]') ?? COMPARE_MAX_SAMPLES,
      database: identifier(values['clickhouse-database'] ?? process.env.REVOKESCOPE_CLICKHOUSE_DATABASE ?? defaultSchemaOptions.database),
    };
  } catch (e) {
    if (e instanceof UsageError) return usage(io, e.message);
    throw e;
  }

  let baseline: KernelInput, candidate: KernelInput;
  if (opts.fromTraces) {
    const a = new StrataBuilder(values.baseline ?? '*', opts.maxSamples), b = new StrataBuilder(values.candidate ?? '*', opts.maxSamples);
    try {
      if (values['baseline-trace'] === values['candidate-trace']) {
        await correlateInto(values['baseline-trace']!, [a, b]);
      } else {
        await correlateInto(values['baseline-trace']!, [a]);
        await correlateInto(values['candidate-trace']!, [b]);
      }
    } catch (e) {
      if (e instanceof TraceError) { io.stderr.write(`revokescope compare: ${e.message}\n`); return 2; }
      throw e;
    }
    baseline = a.build();
    candidate = b.build();
  } else {
    const conn = await connect(connectOptionsFrom(values));
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
