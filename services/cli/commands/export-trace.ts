// `revokescope export-trace --from T --to T [--host H] --out FILE`: a time range of the store (chDB data dir or a
// ClickHouse server) as a Chrome JSON trace (the same builder as `analyze --export-trace`), on the wall clock.
import { DEFAULT_MAX_EVENTS, TimelineBuilder, TimelineLimitError } from '../../report/timeline.js';
import { toTraceDocument, traceJsonChunks } from '../../report/trace-events.js';
import { openStore } from '../../store/index.js';
import { eventFromRow } from '../../store/event-rows.js';
import { readTraceRange } from '../../store/queries.js';
import { episodeFromJson, findingFromJson } from '../../trace/index.js';
import { helpText, integer, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { writeFileChunks } from '../output-file.js';
import { storeOptions, storeSettings } from '../settings.js';
import { wallTime } from '../time.js';

const rangeOptions = (nowMs: number) => ({
  from: { flag: 'from', arg: 'T', parse: wallTime(nowMs),
    help: 'start of the range: RFC 3339 (2026-03-01T12:00:00Z), epoch milliseconds, now, or now-DURATION (now-15m)' },
  to: { flag: 'to', arg: 'T', parse: wallTime(nowMs), help: 'end of the range (exclusive), as --from' },
  host: { flag: 'host', arg: 'H', parse: text, help: 'one host only' },
  out: { flag: 'out', arg: 'FILE', parse: text, help: 'where to write the JSON' },
  maxEvents: { flag: 'max-events', arg: 'N', default: DEFAULT_MAX_EVENTS, parse: integer(1),
    help: 'most raw events read; a larger range is refused (exit 2)' },
}) satisfies OptionTable;

const HELP = helpText('revokescope export-trace --from T --to T --out FILE [--host H] [options]', `
Writes the raw events, episodes and findings the store holds for [--from, --to) as Chrome JSON trace events,
for ui.perfetto.dev and chrome://tracing: a process per device (lock wait and hold with its episode, zaps,
DMABUF revoke, move_notify per DMABUF, triggers, mappings, findings with their evidence) and per task.
Times are wall clock: ts (µs) = ns since otherData.originTime.`, [['range', rangeOptions(0)], ['store', storeOptions]],
`Raw events are kept for the events table's TTL (7 days by default); older ranges have episodes and findings only.
exit status: 0 written, 2 usage error or a range larger than --max-events.`);

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values, store;
  try {
    const o = parseCommand(argv, { ...rangeOptions(Date.now()), ...storeOptions }, env);
    if (o.help) { console.log(HELP); return 0; }
    values = o.values;
    if (values.from === undefined || values.to === undefined) throw new UsageError('--from and --to are required');
    if (values.out === undefined) throw new UsageError('--out FILE is required');
    if (values.from >= values.to) throw new UsageError('--from must be before --to');
    store = storeSettings(values);
  } catch (e) {
    if (e instanceof UsageError) return usage(e.message);
    throw e;
  }
  const fromMs = values.from, toMs = values.to, maxEvents = values.maxEvents;
  const opened = await openStore(store.connect, { schema: store.schema });
  let range;
  try {
    range = await readTraceRange(opened.reader, { fromMs, toMs, host: values.host, maxEvents });
  } finally {
    await opened.store.close();
  }
  const over = range.events.length > maxEvents ? 'raw events' : range.episodes.length > maxEvents ? 'episodes'
    : range.findings.length > maxEvents ? 'findings' : undefined;
  if (over) {
    console.error(`revokescope export-trace: the range holds more than ${maxEvents} ${over} (--max-events): narrow --from/--to or --host, or raise the limit`);
    return 2;
  }
  const shifts = new Map(range.clocks.map((c) => [`${c.hostname}\u0000${c.bootId}`, c.shiftNs]));
  const builder = new TimelineBuilder({ maxEvents, clockShift: (h, b) => shifts.get(`${h}\u0000${b}`) ?? 0 });
  let timeline;
  try {
    for (const row of range.events) {
      const { host, seq, event } = eventFromRow(row);
      builder.batch(host, seq, 1, 0, Number(event.tsNs)); // a gap in seq is loss (rows come in seq order per boot)
      builder.event(host, event, seq);
    }
    for (const row of range.episodes) builder.episode(episodeFromJson(row));
    for (const row of range.findings) builder.finding(findingFromJson(row));
    timeline = builder.build();
  } catch (e) {
    if (e instanceof TimelineLimitError) {
      console.error(`revokescope export-trace: ${e.message} (--max-events): narrow the range or raise the limit`);
      return 2;
    }
    throw e;
  }
  // times before --from (a lock wait that began earlier) stay ≥ 0: the origin moves back to a whole second before them
  const originNs = Math.min(0, Math.floor(timeline.minNs / 1e9) * 1e9);
  const doc = toTraceDocument(timeline, {
    originNs,
    clock: 'wall clock: ts (µs) = ns since originTime',
    meta: {
      originTime: new Date(fromMs + originNs / 1e6).toISOString(),
      from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString(), ...(values.host ? { host: values.host } : {}),
      source: opened.connection.location, command: 'export-trace',
      storedEvents: range.events.length, episodes: range.episodes.length, findings: range.findings.length,
    },
  });
  const bytes = await writeFileChunks(values.out!, traceJsonChunks(doc));
  const hosts = new Set(range.clocks.map((c) => c.hostname)).size;
  console.log(`wrote ${doc.count} trace events (${range.events.length} raw events, ${range.episodes.length} episodes, ` +
    `${range.findings.length} findings${hosts ? `, ${hosts} host${hosts === 1 ? '' : 's'}` : ''}) to ${values.out} (${bytes} bytes)`);
  if (range.events.length === 0) console.error('revokescope export-trace: no raw events in the range (outside the events TTL, another host, or another store?)');
  if (timeline.undrawn) console.error(`revokescope export-trace: ${timeline.undrawn} stored events of a kind this version does not draw`);
  return 0;
}

function usage(message: string): number {
  console.error(`revokescope export-trace: ${message} (see --help)`);
  return 2;
}
