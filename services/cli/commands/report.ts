// `revokescope report TRACE --html out.html`: one self-contained HTML page for people without Grafana: revoke
// latency histograms per kernel and per driver, every finding with its evidence and its timeline drawn (SVG, from
// the same Timeline as `analyze --export-trace`), and an episode table.
//
// The trace is read twice, so memory stays bounded on large traces: the first pass correlates it (summary,
// findings, the slowest episodes); the second correlates it again and keeps the events of the devices that have
// findings only, to draw their timelines.
import type { Writable } from 'node:stream';
import { Correlator, type CorrelatorOptions } from '../../core/correlator/index.js';
import { Severity, type Episode, type Finding } from '../../core/model.js';
import { renderHtmlReport } from '../../report/html.js';
import { SummaryBuilder, openLockSummaries } from '../../report/index.js';
import { findingView, indexByOwner, revokeZoom, timelineSvg } from '../../report/svg.js';
import { DEFAULT_MAX_EVENTS, TimelineBuilder, TimelineLimitError, deviceKey, type Timeline } from '../../report/timeline.js';
import { TimelineFeed } from '../../report/timeline-feed.js';
import { readTrace, TraceError } from '../../trace/index.js';
import { helpText, integer, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { writeFileChunks } from '../output-file.js';
import { correlatorOptions, correlatorSettings } from '../settings.js';

export interface CommandIo { stdout: Writable; stderr: Writable; now?: () => Date }
const processIo: CommandIo = { stdout: process.stdout, stderr: process.stderr };

const reportOptions = {
  html: { flag: 'html', arg: 'FILE', parse: text, help: 'where to write the page' },
  title: { flag: 'title', arg: 'TEXT', parse: text, help: 'the page\'s title (default "revokescope report: FILE")' },
  maxEpisodes: { flag: 'max-episodes', arg: 'N', default: 500, parse: integer(1),
    help: 'rows of the episode table: every episode with a finding, then the slowest revoke episodes; paged 50 at a time in the page' },
  maxTimelines: { flag: 'max-timelines', arg: 'N', default: 100, parse: integer(1), help: 'findings drawn with their timeline, most severe first' },
  maxEvents: { flag: 'max-events', arg: 'N', default: DEFAULT_MAX_EVENTS, parse: integer(1),
    help: 'events kept to draw the timelines; past it the findings are listed without timelines' },
  lenient: { flag: 'lenient', boolean: true, help: 'skip and count bad lines/records instead of stopping at the first' },
} satisfies OptionTable;

const HELP = helpText('revokescope report FILE --html OUT.html [options]', `
Writes one self-contained HTML page (no network: inline CSS, SVG and script) for people without Grafana:
revoke latency percentiles and histograms per kernel and per driver, every finding with its evidence and the
timeline of its episode drawn, the episodes still holding memory_lock at the end, and an episode table.

FILE is .jsonl or .pb (read twice: a file, not stdin).`, [['options', reportOptions], ['correlator', correlatorOptions]],
'exit status: 0 written, 2 usage or input error.');

const SEVERITY_RANK = (f: Finding): number => (f.inconclusive ? 0 : 10) + (f.severity ?? 0);

/** Most severe first, certain before inconclusive, then by host, device and time. */
export function findingOrder(a: Finding, b: Finding): number {
  return SEVERITY_RANK(b) - SEVERITY_RANK(a) || cmp(a.hostname, b.hostname) || cmp(a.device, b.device) || a.tsNs - b.tsNs || cmp(a.findingId, b.findingId);
}
function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

export async function run(argv: string[], io: CommandIo = processIo, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let file: string, out: string, maxEpisodes: number, maxTimelines: number, maxEvents: number, lenient: boolean;
  let title: string | undefined;
  let opts: Partial<CorrelatorOptions>;
  try {
    const o = parseCommand(argv, { ...reportOptions, ...correlatorOptions }, env, { positionals: true });
    if (o.help) { io.stdout.write(`${HELP}\n`); return 0; }
    const positionals = o.positionals, v = o.values;
    if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'missing trace FILE' : `expected one FILE, got ${positionals.length}`);
    file = positionals[0]!;
    if (file === '-') throw new UsageError('the report reads the trace twice: give a file, not - (stdin)');
    if (v.html === undefined) throw new UsageError('--html FILE is required');
    out = v.html;
    title = v.title;
    maxEpisodes = v.maxEpisodes; maxTimelines = v.maxTimelines; maxEvents = v.maxEvents; lenient = v.lenient;
    opts = correlatorSettings(v);
  } catch (e) {
    if (e instanceof UsageError) return usageError(io, e.message);
    throw e;
  }

  // pass 1: summary, findings, the slowest revoke episodes
  const summary = new SummaryBuilder();
  const findings: Finding[] = [];
  let slowest: Episode[] = [];
  let skipped = '';
  let first;
  try {
    first = await correlate(file, opts, lenient, undefined, (e) => {
      summary.addEpisode(e);
      if (e.revoke && e.revokeNs > 0) {
        slowest.push(e);
        if (slowest.length > 2 * maxEpisodes) slowest = bySlowest(slowest).slice(0, maxEpisodes);
      }
    }, (f) => { summary.addFinding(f); findings.push(f); });
    if (first.skipped) skipped = first.skipped;
  } catch (e) {
    if (e instanceof TraceError) { io.stderr.write(`revokescope report: ${e.message}\n`); return 2; }
    throw e;
  }
  const result = summary.build({ ...first.correlator.stats, skippedInput: first.skippedCount }, openLockSummaries(first.correlator.openLocks()));
  findings.sort(findingOrder);

  // pass 2: the timelines of the devices of the findings drawn, and the episodes of every finding
  const drawn = findings.slice(0, maxTimelines);
  const devices = new Set(drawn.map((f) => deviceKey(f.hostname, f.bootId, f.device)));
  const findingEpisodes = new Set(findings.map((f) => f.episodeId).filter((id) => id));
  const episodesOfFindings: Episode[] = [];
  const builder = new TimelineBuilder({ devices, maxEvents });
  const feed = new TimelineFeed(builder);
  let limit: string | undefined;
  const guard = (f: () => void): void => {
    if (limit) return;
    try { f(); } catch (e) {
      if (!(e instanceof TimelineLimitError)) throw e;
      limit = `${e.message} (--max-events ${maxEvents})`;
    }
  };
  let timeline: Timeline | undefined;
  if (devices.size > 0 || findingEpisodes.size > 0) {
    const second = await correlate(file, opts, lenient, (b) => guard(() => b(feed)), (e) => {
      if (findingEpisodes.has(e.episodeId)) episodesOfFindings.push(e);
      if (devices.has(deviceKey(e.hostname, e.bootId, e.device))) guard(() => builder.episode(e));
    }, (f) => guard(() => builder.finding(f)));
    for (const o of second.correlator.openLocks()) guard(() => builder.openLock(o));
    guard(() => { timeline = builder.build(); });
  }
  const timelines = new Map<string, string>();
  if (timeline) {
    const byOwner = indexByOwner(timeline);
    for (const f of drawn) {
      const view = findingView(timeline, byOwner, f.findingId, f.episodeId);
      if (!view) continue;
      const severity = Severity[f.severity] ?? '';
      let svg = timelineSvg(view, severity);
      // a long hold after a fast revoke: the revoke steps again, zoomed in
      const zoom = revokeZoom(view);
      const zoomed = zoom && findingView(timeline, byOwner, f.findingId, f.episodeId, 400, zoom);
      if (zoomed) svg += `<p class="muted zoom-caption">Zoomed in on the revoke steps:</p>${timelineSvg(zoomed, severity, 960, true)}`;
      timelines.set(f.findingId, svg);
    }
  }
  const notes: string[] = [];
  if (findings.length > drawn.length) notes.push(`Timelines are drawn for the first ${drawn.length} of ${findings.length} findings (--max-timelines).`);
  if (limit) notes.push(`No timeline is drawn: ${limit}; export a time range with revokescope export-trace instead.`);

  // the episode table: every episode with a finding, then the slowest revoke episodes
  const seen = new Set<string>();
  const rows: Episode[] = [];
  for (const e of [...episodesOfFindings.sort((a, b) => cmp(a.hostname, b.hostname) || cmp(a.device, b.device) || a.acquireTsNs - b.acquireTsNs),
    ...bySlowest(slowest)]) {
    if (rows.length >= maxEpisodes) break;
    if (seen.has(e.episodeId)) continue;
    seen.add(e.episodeId);
    rows.push(e);
  }
  const html = renderHtmlReport({
    title: title ?? `revokescope report: ${file}`,
    source: file,
    generatedAt: (io.now?.() ?? new Date()).toISOString(),
    summary: result,
    histograms: summary.histograms(),
    findings,
    timelines,
    timelinesNote: notes.join(' '),
    episodes: { rows, total: result.episodes, chosen: `every episode with a finding (${episodesOfFindings.length}), then the slowest revoke episodes by revoke latency` },
  });
  try {
    const bytes = await writeFileChunks(out, [html]);
    io.stdout.write(`wrote ${out} (${bytes} bytes): ${result.episodes} episodes, ${findings.length} findings, ${timelines.size} timelines, ` +
      `${rows.length} table rows\n`);
  } catch (e) {
    io.stderr.write(`revokescope report: --html ${out}: ${(e as Error).message}\n`);
    return 2;
  }
  if (skipped) io.stderr.write(`revokescope report: --lenient: ${skipped}\n`);
  return 0;
}

function bySlowest(a: Episode[]): Episode[] {
  return a.sort((x, y) => y.revokeNs - x.revokeNs || cmp(x.episodeId, y.episodeId));
}

/** One pass of the correlator over the trace (.pb through the wire scans, as analyze). `feed` sees each batch
 * before the correlator does. */
async function correlate(file: string, opts: Partial<CorrelatorOptions>, lenient: boolean,
  feed: ((use: (f: TimelineFeed) => void) => void) | undefined, onEpisode: (e: Episode) => void, onFinding: (f: Finding) => void) {
  const reader = readTrace(file, { lenient });
  const correlator = new Correlator(opts);
  const drain = (): void => {
    for (const e of correlator.takeEpisodes()) onEpisode(e);
    for (const f of correlator.takeFindings()) onFinding(f);
  };
  if (reader.format === 'pb') {
    for await (const scan of reader.scans()) {
      feed?.((f) => f.scan(scan));
      correlator.ingestScan(scan);
      drain();
    }
  } else {
    for await (const batch of reader) {
      feed?.((f) => f.batch(batch));
      correlator.ingest(batch);
      drain();
    }
  }
  correlator.finish();
  drain();
  const s = reader.stats;
  const what = reader.format === 'pb' ? 'records' : 'lines';
  return { correlator, skippedCount: s.skipped, skipped: s.skipped ? `skipped ${s.skipped} bad ${what}; first: ${s.skipReasons[0]}` : '' };
}

function usageError(io: CommandIo, message: string): number {
  io.stderr.write(`revokescope report: ${message} (see --help)\n`);
  return 2;
}
