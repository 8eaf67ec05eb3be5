// Checks a Chrome JSON trace against the Trace Event Format's documented rules and what Perfetto's JSON importer
// relies on (docs/export-formats.md). Returns the problems found (empty = valid); test/trace-export.test.ts also
// feeds it broken traces to show each rule can fail.
//
// - the JSON object form: { traceEvents: [...] } (otherData optional);
// - every event: a string name, a known ph, an integer pid; timed events a numeric ts (µs);
// - X: dur ≥ 0; B/E: every B has its E on the same pid/tid, in order (E.ts ≥ B.ts), nothing left open;
// - on one thread, slices nest perfectly (Perfetto: "events are only allowed to perfectly nest"), compared in
//   integer ns as Perfetto reads them (llround(ts × 1000));
// - ts never decreases on a thread in file order (duration events are required in order);
// - i: scope s ∈ {t, p, g}; "t" needs a tid;
// - M: process_name / thread_name with a string args.name, *_sort_index with an integer args.sort_index;
//   every pid that has events is named, and every pid/tid thread that has events is named;
// - a tid belongs to one pid (Perfetto keys threads by tid).

export interface RawTraceEvent {
  name?: unknown; cat?: unknown; ph?: unknown; ts?: unknown; dur?: unknown; pid?: unknown; tid?: unknown; s?: unknown; args?: unknown;
}

const PHASES = new Set(['X', 'B', 'E', 'i', 'I', 'M']);
const METADATA = new Set(['process_name', 'process_sort_index', 'thread_name', 'thread_sort_index', 'process_labels']);

/** µs → ns as Perfetto's importer rounds it. */
export const toNs = (us: number): number => Math.round(us * 1000);

export function traceEventProblems(doc: unknown, maxProblems = 20): string[] {
  const problems: string[] = [];
  const bad = (i: number, msg: string): void => { if (problems.length < maxProblems) problems.push(`traceEvents[${i}]: ${msg}`); };
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { traceEvents?: unknown }).traceEvents)) {
    return ['not the JSON object form: no traceEvents array'];
  }
  const events = (doc as { traceEvents: RawTraceEvent[] }).traceEvents;
  const processNamed = new Set<number>();
  const threadNamed = new Set<string>();
  const usedPids = new Map<number, number>();
  const usedThreads = new Map<string, number>();
  const pidOfTid = new Map<number, number>();
  // per thread: last ts and the stack of open slices (end ns; Infinity for an open B with its name)
  const threads = new Map<string, { lastTs: number; stack: { end: number; b?: string; at: number }[] }>();

  events.forEach((e, i) => {
    if (typeof e !== 'object' || e === null) return bad(i, 'not an object');
    if (typeof e.name !== 'string') bad(i, 'name is not a string');
    if (typeof e.ph !== 'string' || !PHASES.has(e.ph)) return bad(i, `unknown ph ${JSON.stringify(e.ph)}`);
    if (!Number.isInteger(e.pid)) return bad(i, 'pid is not an integer');
    const pid = e.pid as number;
    if (e.tid !== undefined && !Number.isInteger(e.tid)) return bad(i, 'tid is not an integer');
    if (e.tid !== undefined) {
      const owner = pidOfTid.get(e.tid as number);
      if (owner !== undefined && owner !== pid) bad(i, `tid ${String(e.tid)} used with pid ${owner} and pid ${pid}`);
      pidOfTid.set(e.tid as number, pid);
    }
    if (e.ph === 'M') {
      const args = e.args as Record<string, unknown> | undefined;
      if (!METADATA.has(e.name as string)) return bad(i, `unknown metadata ${String(e.name)}`);
      if ((e.name === 'process_name' || e.name === 'thread_name') && typeof args?.name !== 'string') return bad(i, `${String(e.name)} without args.name`);
      if (String(e.name).endsWith('_sort_index') && !Number.isInteger(args?.sort_index)) return bad(i, `${String(e.name)} without an integer args.sort_index`);
      if (e.name === 'process_name') processNamed.add(pid);
      if (e.name === 'thread_name') {
        if (e.tid === undefined) return bad(i, 'thread_name without tid');
        threadNamed.add(`${pid}/${String(e.tid)}`);
      }
      return;
    }
    if (typeof e.ts !== 'number' || !Number.isFinite(e.ts)) return bad(i, 'ts is not a number');
    usedPids.set(pid, i);
    const ts = toNs(e.ts);
    if (e.ph === 'i' || e.ph === 'I') {
      const s = e.s ?? 't';
      if (s !== 't' && s !== 'p' && s !== 'g') return bad(i, `instant scope ${JSON.stringify(e.s)}`);
      if (s !== 't') return;
    }
    if (e.tid === undefined) return bad(i, `${e.ph} without tid`);
    const key = `${pid}/${String(e.tid)}`;
    usedThreads.set(key, i);
    let th = threads.get(key);
    if (!th) threads.set(key, th = { lastTs: -Infinity, stack: [] });
    if (ts < th.lastTs) bad(i, `ts ${e.ts} goes back on thread ${key}`);
    th.lastTs = ts;
    const stack = th.stack;
    // slices that ended by now are closed (E closes its B explicitly)
    const closeEnded = (): void => { while (stack.length > 0 && stack[stack.length - 1]!.b === undefined && stack[stack.length - 1]!.end <= ts) stack.pop(); };
    if (e.ph === 'E') {
      closeEnded();
      const top = stack[stack.length - 1];
      if (!top || top.b === undefined) return bad(i, `E without an open B on thread ${key}${top ? ` (a slice from traceEvents[${top.at}] is still open)` : ''}`);
      if (typeof e.name === 'string' && e.name !== '' && e.name !== top.b) bad(i, `E "${e.name}" closes B "${top.b}"`);
      stack.pop();
      return;
    }
    closeEnded();
    const top = stack[stack.length - 1];
    if (e.ph === 'B') {
      stack.push({ end: Infinity, b: e.name as string, at: i });
      return;
    }
    let end = ts;
    if (e.ph === 'X') {
      if (typeof e.dur !== 'number' || !Number.isFinite(e.dur)) return bad(i, 'X without a numeric dur');
      if (e.dur < 0) return bad(i, `X with dur ${e.dur} < 0`);
      end = ts + toNs(e.dur);
    }
    if (top && end > top.end) bad(i, `${e.ph} [${ts}, ${end}] ns overlaps the slice from traceEvents[${top.at}] ending at ${top.end} ns on thread ${key}`);
    if (e.ph === 'X') stack.push({ end, at: i });
  });
  for (const [key, th] of threads) {
    const open = th.stack.filter((s) => s.b !== undefined);
    if (open.length) problems.push(`thread ${key}: B "${open[0]!.b}" (traceEvents[${open[0]!.at}]) has no E`);
  }
  for (const [pid, i] of usedPids) if (!processNamed.has(pid)) problems.push(`pid ${pid} (first at traceEvents[${i}]) has no process_name`);
  for (const [key, i] of usedThreads) if (!threadNamed.has(key)) problems.push(`thread ${key} (first at traceEvents[${i}]) has no thread_name`);
  return problems.slice(0, maxProblems);
}

/** process_name and thread_name metadata of a trace: pid → name, "pid/tid" → name. */
export function traceNames(doc: { traceEvents: RawTraceEvent[] }): { process: Map<number, string>; thread: Map<string, string> } {
  const process = new Map<number, string>();
  const thread = new Map<string, string>();
  for (const e of doc.traceEvents) {
    if (e.ph === 'M' && e.name === 'process_name') process.set(e.pid as number, (e.args as { name: string }).name);
    if (e.ph === 'M' && e.name === 'thread_name') thread.set(`${String(e.pid)}/${String(e.tid)}`, (e.args as { name: string }).name);
  }
  return { process, thread };
}
