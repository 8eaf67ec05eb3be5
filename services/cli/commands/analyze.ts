// `revokescope analyze FILE`: correlate a trace (.jsonl, .pb, or - for proto3 JSON lines on stdin) into
// revoke episodes and findings (docs/rules.md), print them as JSON or a table for a person.
// Exit codes: 0 done (findings or not); 1 a finding at or above --fail-on; 2 usage or input error.
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { Correlator, type CorrelatorOptions } from '../../core/correlator/index.js';
import { Severity, type Finding } from '../../core/model.js';
import { SummaryBuilder, openLockSummaries, renderTable } from '../../report/index.js';
import { DEFAULT_MAX_EVENTS, TimelineBuilder, TimelineLimitError } from '../../report/timeline.js';
import { TimelineFeed } from '../../report/timeline-feed.js';
import { toTraceDocument, traceJsonChunks } from '../../report/trace-events.js';
import { readTrace, TraceError, episodeToJson, findingToJson } from '../../trace/index.js';
import { helpText, integer, oneOf, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { writeFileChunks } from '../output-file.js';
import { correlatorOptions, correlatorSettings } from '../settings.js';

export interface CommandIo { stdout: Writable; stderr: Writable; stdin?: Readable }
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

const analyzeOptions = {
  format: { flag: 'format', arg: 'table|json', default: 'table' as const, parse: oneOf('table', 'json'),
    help: 'table for people, or JSON: { "episodes": [...], "findings": [...], "summary": {...} } (proto3 JSON names, enums by name, 64-bit values as strings)' },
  failOn: { flag: 'fail-on', arg: 'SEVERITY', parse: (t: string, n: string) => oneOf('info', 'warning', 'critical')(t.toLowerCase(), n),
    help: 'exit 1 if any certain finding has this severity or a higher one' },
  lenient: { flag: 'lenient', boolean: true, help: 'skip and count bad lines/records instead of stopping at the first' },
  exportTrace: { flag: 'export-trace', arg: 'FILE', parse: text,
    help: 'also write the trace\'s timeline as Chrome JSON trace events (ui.perfetto.dev, chrome://tracing): a process per device and per task, findings as instants' },
  exportMaxEvents: { flag: 'export-max-events', arg: 'N', default: DEFAULT_MAX_EVENTS, parse: integer(1),
    help: 'most slices and instants --export-trace holds; past it the export fails (exit 2) and the analysis is still printed' },
} satisfies OptionTable;

const HELP = helpText('revokescope analyze FILE [options]', `
Correlates a trace into revoke episodes and findings (skipped and redundant BAR zaps, unpaired revokes, revokes
outside memory_lock, faults while revoked, stuck locks, slow revokes) and prints them.

FILE is .jsonl (one proto3 JSON EventBatch per line), .pb (length-delimited EventBatch protobuf), or - for .jsonl
on stdin.`, [['options', analyzeOptions], ['correlator', correlatorOptions]], 'exit status: 0 done, 1 --fail-on met, 2 usage or input error.');

const FAIL_ON: Record<string, number> = { info: Severity.INFO, warning: Severity.WARNING, critical: Severity.CRITICAL };

/** The reader of our output went away (`analyze x.pb --format json | head`): stop quietly. */
class OutputClosed extends Error {}

/** Buffered writer with backpressure for large JSON output. */
class Out {
  private buf = '';
  constructor(private readonly stream: Writable) {}
  async write(s: string): Promise<void> {
    this.buf += s;
    if (this.buf.length >= 1 << 16) await this.flush();
  }
  async flush(): Promise<void> {
    if (!this.buf) return;
    const s = this.buf;
    this.buf = '';
    try {
      if (!this.stream.write(s)) await once(this.stream, 'drain');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EPIPE') throw new OutputClosed();
      throw e;
    }
  }
}

export async function run(argv: string[], io: CommandIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let file: string;
  let failOn: number | undefined;
  let opts: Partial<CorrelatorOptions>;
  let format: 'table' | 'json';
  let lenient: boolean;
  let exportFile: string | undefined;
  let exportMax: number;
  try {
    const o = parseCommand(argv, { ...analyzeOptions, ...correlatorOptions }, env, { positionals: true });
    if (o.help) { io.stdout.write(`${HELP}\n`); return 0; }
    if (o.positionals.length !== 1) throw new UsageError(o.positionals.length === 0 ? 'missing trace FILE' : `expected one FILE, got ${o.positionals.length}`);
    file = o.positionals[0]!;
    format = o.values.format;
    lenient = o.values.lenient;
    failOn = o.values.failOn === undefined ? undefined : FAIL_ON[o.values.failOn];
    opts = correlatorSettings(o.values);
    exportFile = o.values.exportTrace;
    exportMax = o.values.exportMaxEvents;
  } catch (e) {
    if (e instanceof UsageError) return usageError(io, e.message);
    throw e;
  }

  const reader = readTrace(file, { lenient, ...(io.stdin ? { stdin: io.stdin } : {}) });
  const correlator = new Correlator(opts);
  const summary = new SummaryBuilder();
  const findings: Finding[] = []; // few; episodes are streamed out and not kept
  const out = new Out(io.stdout);
  const json = format === 'json';
  let episodesWritten = 0;
  const timeline = exportFile === undefined ? undefined : new TraceExport(exportMax);
  const drain = async () => {
    for (const e of correlator.takeEpisodes()) {
      summary.addEpisode(e);
      timeline?.use((b) => b.episode(e));
      if (json) await out.write(`${episodesWritten++ ? ',\n' : '\n'}${JSON.stringify(episodeToJson(e))}`);
    }
    for (const f of correlator.takeFindings()) {
      summary.addFinding(f);
      timeline?.use((b) => b.finding(f));
      findings.push(f);
    }
  };
  try {
    if (json) await out.write('{"episodes":[');
    if (reader.format === 'pb') {
      // .pb: the wire reader's checked scans, as the embedded pipeline and the Kafka consumer read their messages
      for await (const scan of reader.scans()) {
        timeline?.feedWith((f) => f.scan(scan));
        correlator.ingestScan(scan);
        await drain();
      }
    } else {
      for await (const batch of reader) {
        timeline?.feedWith((f) => f.batch(batch));
        correlator.ingest(batch);
        await drain();
      }
    }
    correlator.finish();
    await drain();
    for (const o of correlator.openLocks()) timeline?.use((b) => b.openLock(o));
  } catch (e) {
    if (e instanceof OutputClosed) return 0;
    if (e instanceof TraceError) {
      await out.flush().catch(() => undefined);
      io.stderr.write(`revokescope analyze: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const result = summary.build({ ...correlator.stats, skippedInput: reader.stats.skipped }, openLockSummaries(correlator.openLocks()));
  try {
    if (json) {
      await out.write(`${episodesWritten ? '\n' : ''}],\n"findings":[`);
      for (let i = 0; i < findings.length; i++) await out.write(`${i ? ',\n' : '\n'}${JSON.stringify(findingToJson(findings[i]!))}`);
      await out.write(`${findings.length ? '\n' : ''}],\n"summary":${JSON.stringify(result, null, 2)}}\n`);
    } else {
      const input = file === '-' ? 'TRACE' : shellWord(file);
      await out.write(`${renderTable(result, { title: file === '-' ? 'stdin' : file,
        act: { findings, explain: (f) => `revokescope explain ${f.findingId} --input ${input}` } })}\n`);
    }
    await out.flush();
  } catch (e) {
    if (e instanceof OutputClosed) return 0;
    throw e;
  }
  if (timeline && exportFile !== undefined) {
    const problem = await timeline.write(exportFile, file);
    if (problem) {
      io.stderr.write(`revokescope analyze: --export-trace ${exportFile}: ${problem}\n`);
      return 2;
    }
  }
  if (reader.stats.skipped > 0) {
    const what = reader.format === 'pb' ? 'records' : 'lines';
    io.stderr.write(`revokescope analyze: --lenient: skipped ${reader.stats.skipped} bad ${what}${reader.stats.truncated ? ' (the rest of the file after a broken length prefix is unreadable)' : ''}; first: ${reader.stats.skipReasons[0]}\n`);
  }
  // certain findings only: an inconclusive one never fails a run (nor pages)
  if (failOn !== undefined && findings.some((f) => !f.inconclusive && (f.severity ?? 0) >= failOn!)) return 1;
  return 0;
}

/** --export-trace: the timeline built beside the correlator. Past its limit it stops taking events and says why at
 * the end; the analysis goes on. */
class TraceExport {
  private readonly builder: TimelineBuilder;
  private readonly feed: TimelineFeed;
  private failed: string | undefined;

  constructor(private readonly maxItems: number) {
    this.builder = new TimelineBuilder({ maxEvents: maxItems });
    this.feed = new TimelineFeed(this.builder);
  }

  use(f: (b: TimelineBuilder) => void): void { this.feedWith(() => f(this.builder)); }

  feedWith(f: (feed: TimelineFeed) => void): void {
    if (this.failed) return;
    try {
      f(this.feed);
    } catch (e) {
      if (!(e instanceof TimelineLimitError)) throw e;
      this.failed = `${e.message} (--export-max-events ${this.maxItems}): not written; export a time range from the store ` +
        '(revokescope export-trace --from --to --host) or raise the limit';
    }
  }

  /** Writes the file; returns why not when it cannot. */
  async write(path: string, source: string): Promise<string | undefined> {
    if (this.failed) return this.failed;
    let timeline;
    try {
      timeline = this.builder.build();
    } catch (e) {
      if (e instanceof TimelineLimitError) return `${e.message} (--export-max-events ${this.maxItems}): not written`;
      throw e;
    }
    const doc = toTraceDocument(timeline, {
      clock: 'CLOCK_MONOTONIC of each host (hosts are not aligned): ts (µs) = (ts_ns − originNs) / 1000',
      meta: { source: source === '-' ? 'stdin' : source, command: 'analyze --export-trace' },
    });
    try {
      await writeFileChunks(path, traceJsonChunks(doc));
    } catch (e) {
      return (e as Error).message;
    }
    return undefined;
  }
}

function usageError(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope analyze: ${message} (see --help)\n`);
  return 2;
}

/** A file name as one shell word (quoted when it holds anything but the usual path characters). */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
