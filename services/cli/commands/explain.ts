// `revokescope explain FINDING_ID --input TRACE` or from the store (--data-dir / --clickhouse-url): one finding's
// explanation (services/report/explain.ts): the timeline of its device's events, the state the rule judged with the
// fact that established each piece, what was unknown, the rule, the kernel function it mirrors, what to check next.
import type { Writable } from 'node:stream';
import { Correlator } from '../../core/correlator/index.js';
import type { Episode, Finding } from '../../core/model.js';
import { explain, type ExplainInput } from '../../report/explain.js';
import { ExplainWindow, explainInputFromStore } from '../../report/explain-input.js';
import { renderExplanation } from '../../report/explain-table.js';
import { openStore } from '../../store/index.js';
import { readFindingWindow } from '../../store/finding-window.js';
import { readTrace, TraceError } from '../../trace/index.js';
import { helpText, oneOf, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { correlatorOptions, correlatorSettings, storeOptions, storeSettings } from '../settings.js';

export interface CommandIo { stdout: Writable; stderr: Writable }
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

const explainOptions = {
  input: { flag: 'input', arg: 'TRACE', parse: text,
    help: 'explain from a trace file (.jsonl or .pb; read twice: no stdin) instead of the store' },
  format: { flag: 'format', arg: 'table|json', default: 'table' as const, parse: oneOf('table', 'json'),
    help: 'table for people, or the explanation as JSON (the same object GET /api/v1/findings/{id}/explain returns)' },
} satisfies OptionTable;

const HELP = helpText('revokescope explain FINDING_ID [--input TRACE | store options] [options]', `
Explains one finding (an id from analyze, the API or a dashboard): its device's events from shortly before the
trigger to after the release, with relative times, durations and tasks; the device state the rule judged, each piece
with the event that established it; for an inconclusive finding which piece was unknown and why; the rule and the
kernel function it mirrors; and what to check next.

From a trace, the trace is correlated to find the finding, then its device's events are replayed. From the store,
the events kept with the finding (finding_events: up to 2,000 per finding, from a minute before its episode to a
second after, kept after the raw events' TTL) are replayed.`,
[['options', explainOptions], ['store (without --input)', storeOptions], ['correlator (with --input)', correlatorOptions]],
'exit status: 0 explained, 2 usage error, no such finding, or an unreadable trace.');

export async function run(argv: string[], io: CommandIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o;
  try {
    o = parseCommand(argv, { ...explainOptions, ...storeOptions, ...correlatorOptions }, env, { positionals: true });
    if (o.help) { io.stdout.write(`${HELP}\n`); return 0; }
    if (o.positionals.length !== 1) throw new UsageError(o.positionals.length === 0 ? 'missing FINDING_ID' : `expected one FINDING_ID, got ${o.positionals.length}`);
    if (o.values.input === '-') throw new UsageError('--input - (stdin): explain reads the trace twice, give a file');
  } catch (e) {
    if (e instanceof UsageError) return usage(io, e.message);
    throw e;
  }
  const id = o.positionals[0]!;
  let input: ExplainInput | undefined;
  try {
    if (o.values.input !== undefined) {
      input = await fromTrace(o.values.input, id, correlatorSettings(o.values));
    } else {
      const store = storeSettings(o.values);
      const opened = await openStore(store.connect, { schema: store.schema });
      try {
        const w = await readFindingWindow(opened.reader, id);
        if (w) input = explainInputFromStore(w, opened.connection.location);
      } finally {
        await opened.store.close();
      }
    }
  } catch (e) {
    if (e instanceof UsageError) return usage(io, e.message);
    if (e instanceof TraceError) { io.stderr.write(`revokescope explain: ${e.message}\n`); return 2; }
    throw e;
  }
  if (!input) {
    io.stderr.write(`revokescope explain: no finding ${id} in ${o.values.input ?? 'the store'}\n`);
    return 2;
  }
  const x = explain({ ...input, opts: o.values.input !== undefined ? correlatorSettings(o.values) : undefined });
  io.stdout.write(o.values.format === 'json' ? `${JSON.stringify(x, null, 2)}\n` : renderExplanation(x));
  return 0;
}

/** Correlates the trace to find the finding and its episode, then reads the trace again for the device's window. */
async function fromTrace(file: string, id: string, opts: ReturnType<typeof correlatorSettings>): Promise<ExplainInput | undefined> {
  const correlator = new Correlator(opts);
  let finding: Finding | undefined;
  let episode: Episode | null = null;
  const episodes = new Map<string, Episode>(); // of the current drain: an episode comes with its findings
  const drain = (): void => {
    episodes.clear();
    for (const e of correlator.takeEpisodes()) {
      if (finding && e.episodeId === finding.episodeId) episode = e;
      else if (!finding) episodes.set(e.episodeId, e);
    }
    for (const f of correlator.takeFindings()) {
      if (f.findingId !== id) continue;
      finding = f;
      episode = episodes.get(f.episodeId) ?? null;
    }
  };
  for await (const batch of readTrace(file)) { correlator.ingest(batch); drain(); }
  correlator.finish();
  drain();
  if (!finding) return undefined;
  const w = new ExplainWindow(finding, episode);
  for await (const batch of readTrace(file)) w.add(batch);
  return w.input(file);
}

function usage(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope explain: ${message} (see --help)\n`);
  return 2;
}
