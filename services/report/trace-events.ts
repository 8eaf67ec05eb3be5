// A Timeline as a Chrome JSON trace (the Trace Event Format that ui.perfetto.dev and chrome://tracing open). Pure:
// builds the document and its text; the commands write it.
//
// The format's rules this follows (docs/export-formats.md lists them with the tests that check them):
// - JSON object form: { "traceEvents": [...], "otherData": {...} }; ts and dur in microseconds (ns / 1000, exact to
//   the nanosecond while the values stay below 2^53 / 1000: times are taken from an origin, otherData.originNs).
//   No displayTimeUnit: Perfetto reads "ns" there as the unit of ts itself.
// - complete events (ph "X", dur ≥ 0) for every span; on one thread they nest perfectly (a child ends no later
//   than its parent, siblings do not overlap), which Perfetto and chrome://tracing require: spans that would
//   overlap go to another lane, a thread "zap #2" beside "zap".
// - instant events (ph "i") with a scope: "t" (thread) for marks and findings, "p" (process) for loss on a host.
// - metadata events (ph "M"): process_name and process_sort_index for every process, thread_name and
//   thread_sort_index for every thread that has events.
// - events sorted by ts (then longer first, so a parent precedes its children): ts never decreases on a thread.
// - pid and tid are small integers assigned in the sorted order of what they stand for (host, boot, device or
//   task, track, lane), so the same input gives the same ids; tids are unique across processes (Perfetto keys
//   threads by tid).
import { assignLanes, compareSlices, type Timeline, type TimelineItem, type TimelineOwner, type TimelineTrack } from './timeline.js';

export interface TraceEvent {
  name: string;
  cat?: string;
  ph: 'X' | 'i' | 'M' | 'B' | 'E';
  ts?: number;
  dur?: number;
  pid: number;
  tid?: number;
  s?: 't' | 'p' | 'g';
  args?: Record<string, unknown>;
}

/** The export, its events made one at a time as they are written (a large timeline is not held twice). */
export interface TraceDocument {
  /** How many events traceEvents() yields. */
  count: number;
  traceEvents(): Iterable<TraceEvent>;
  otherData: Record<string, unknown>;
}

export interface TraceExportOptions {
  /** Subtracted from every time on the timeline's axis (ns). Default: the whole second at or before the earliest item. */
  originNs?: number;
  /** What the timeline's axis is, for otherData.clock (e.g. "CLOCK_MONOTONIC of each host"). */
  clock: string;
  /** More otherData (source, command, range). */
  meta?: Record<string, unknown>;
}

const OWNER_ORDER = { host: 0, device: 1, task: 2 } as const;

function compareOwners(a: TimelineOwner, b: TimelineOwner): number {
  return cmp(a.hostname, b.hostname) || cmp(a.bootId, b.bootId) || OWNER_ORDER[a.kind] - OWNER_ORDER[b.kind]
    || cmp(a.device, b.device) || a.pid - b.pid || cmp(a.key, b.key);
}

function cmp(a: string, b: string): number { return a < b ? -1 : a > b ? 1 : 0; }

function compareTracks(a: TimelineTrack, b: TimelineTrack): number {
  return a.order - b.order || a.tid - b.tid || cmp(a.name, b.name);
}

/** The process name of an owner; the boot is named when the export holds more than one boot of that host. */
export function ownerLabel(o: TimelineOwner, multiBoot: boolean): string {
  const host = multiBoot ? `${o.hostname} (boot ${o.bootId.slice(0, 8)})` : o.hostname;
  if (o.kind === 'device') return `${host} ${o.device}${o.driver ? ` ${o.driver}` : ''}`;
  if (o.kind === 'task') return `${host} ${o.comm || 'task'} (pid ${o.pid})`;
  return `${host} collector`;
}

/** ns on the timeline → µs on the trace axis. */
const micros = (ns: number, origin: number): number => (ns - origin) / 1000;

export function toTraceDocument(t: Timeline, opts: TraceExportOptions): TraceDocument {
  const origin = opts.originNs ?? Math.floor(t.minNs / 1e9) * 1e9;
  // items per track, owner-scoped instants per owner
  const byTrack = new Map<TimelineTrack, TimelineItem[]>();
  const byOwner = new Map<TimelineOwner, TimelineItem[]>();
  for (const item of t.items) {
    if (item.ownerScoped) push(byOwner, item.track.owner, item);
    else push(byTrack, item.track, item);
  }
  const withTracks = new Set([...byTrack.keys()].map((tr) => tr.owner));
  const owners = t.owners.filter((o) => byOwner.has(o) || withTracks.has(o)).sort(compareOwners);
  const boots = new Map<string, Set<string>>();
  for (const o of owners) {
    if (!boots.has(o.hostname)) boots.set(o.hostname, new Set());
    boots.get(o.hostname)!.add(o.bootId);
  }
  const pidOf = new Map<TimelineOwner, number>(owners.map((o, i) => [o, i + 1]));
  const tracksOf = new Map<TimelineOwner, TimelineTrack[]>();
  for (const tr of byTrack.keys()) push(tracksOf, tr.owner, tr);

  const meta: TraceEvent[] = [];
  // per timed event: the item and where it goes (pid, tid; tid 0 = process-scoped)
  const timed: { item: TimelineItem; startNs: number; durNs?: number; pid: number; tid: number; seq: number }[] = [];
  let nextTid = owners.length + 1;
  let seq = 0;
  owners.forEach((o, i) => {
    const pid = pidOf.get(o)!;
    meta.push({ name: 'process_name', ph: 'M', pid, args: { name: ownerLabel(o, (boots.get(o.hostname)?.size ?? 0) > 1) } });
    meta.push({ name: 'process_sort_index', ph: 'M', pid, args: { sort_index: i } });
    for (const item of byOwner.get(o) ?? []) timed.push({ item, startNs: item.startNs, pid, tid: 0, seq: seq++ });
    let threadIndex = 0;
    for (const tr of (tracksOf.get(o) ?? []).sort(compareTracks)) {
      const items = byTrack.get(tr)!;
      const lanes = assignLanes(items);
      const laneCount = Math.max(...lanes) + 1;
      const tids: number[] = [];
      for (let lane = 0; lane < laneCount; lane++) {
        const tid = nextTid++;
        tids.push(tid);
        meta.push({ name: 'thread_name', ph: 'M', pid, tid, args: { name: lane === 0 ? tr.name : `${tr.name} #${lane + 1}` } });
        meta.push({ name: 'thread_sort_index', ph: 'M', pid, tid, args: { sort_index: threadIndex++ } });
      }
      items.forEach((item, k) => timed.push({ item, startNs: item.startNs, durNs: item.durNs, pid, tid: tids[lanes[k]!]!, seq: seq++ }));
    }
  });
  timed.sort((a, b) => compareSlices(a, b) || a.seq - b.seq);
  const event = ({ item, pid, tid }: (typeof timed)[number]): TraceEvent => {
    const ts = micros(item.startNs, origin);
    if (tid === 0) return { name: item.name, cat: item.cat, ph: 'i', s: 'p', ts, pid, args: item.args };
    if (item.durNs === undefined) return { name: item.name, cat: item.cat, ph: 'i', s: 't', ts, pid, tid, args: item.args };
    return { name: item.name, cat: item.cat, ph: 'X', ts, dur: item.durNs / 1000, pid, tid, args: item.args };
  };
  return {
    count: meta.length + timed.length,
    *traceEvents() {
      yield* meta;
      for (const x of timed) yield event(x);
    },
    otherData: {
      generator: 'revokescope',
      clock: opts.clock,
      // the origin as a decimal string: ns values past 2^53 are not exact as JSON numbers
      originNs: String(origin),
      processes: owners.length,
      threads: nextTid - owners.length - 1,
      ...(t.undrawn ? { undrawnEvents: t.undrawn } : {}),
      ...opts.meta,
    },
  };
}

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const a = m.get(k);
  if (a) a.push(v);
  else m.set(k, [v]);
}

/** The document as JSON text in chunks of about 64 KiB (one event per line), for a stream. */
export function* traceJsonChunks(doc: TraceDocument): Generator<string> {
  let buf = '{"traceEvents":[';
  let i = 0;
  for (const e of doc.traceEvents()) {
    buf += `${i++ ? ',' : ''}\n${JSON.stringify(e)}`;
    if (buf.length >= 1 << 16) {
      yield buf;
      buf = '';
    }
  }
  yield `${buf}\n],\n"otherData":${JSON.stringify(doc.otherData)}}\n`;
}
