// trace_pipe text -> ProbeHit. Line layout (kernel/trace/trace_output.c, trace_print_context):
//   "<comm>-<tid> (<tgid>) [<cpu>] <flags> <secs>.<usecs>: <event>: (<location>) name=value ..."
// the tgid column only with options/record-tgid, the flags column only with options/irq-info.
import type { ProbeHit } from '../probes/hit.js';
import { specIdOf } from '../probes/plan.js';
import { addLost, lostCount } from '../probes/lost.js';

const LINE = /^\s*(.*?)-(\d+)\s+(?:\(\s*([-\d]+)\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?(\d+)\.(\d+):\s+(\w+):\s+\((.*?)\)(?:\s+(.*))?$/;
const ARG = /(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g;
const LOST = /^CPU:(\d+) \[LOST (\d+) EVENTS\]/;
// the entry the `stacktrace` trigger writes (kernel/trace/trace_output.c trace_stack_print): a header line, then one
// " => <symbol>" line per frame, innermost first
const STACK = /^\s*.*?-\d+\s+(?:\(\s*[-\d]+\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?\d+\.\d+:\s+<stack trace>\s*$/;
const FRAME = /^ => (.+?)\s*$/;
/** The frames a stack entry starts with that are the tracing machinery, not the probed path: the kprobe event handler
 * and its dispatch (int3 on x86: kprobe_int3_handler / exc_int3; ftrace-based kprobes: kprobe_ftrace_handler). Seen
 * on Debian 6.12: kprobe_trace_func, kprobe_dispatcher, kprobe_int3_handler (or aggr_pre_handler), exc_int3,
 * asm_exc_int3, then the function that holds the probed call; for a probe on a function's entry (ftrace-based) an
 * unsymbolized address first (the ftrace trampoline), then the probed function. */
const MACHINERY = /^(?:0x[0-9a-f]+|k(?:ret)?probe_\w+|aggr_(?:pre|post)_handler|exc_int3|asm_exc_int3|optimized_callback|optprobe_template_\w+|ftrace_\w+|arch_ftrace_\w+)(?:\+0x[0-9a-f]+\/0x[0-9a-f]+)?$/;

export type ParsedLine = { hit: ProbeHit; location: string } | { lost: number; cpu: number } | undefined;

export function parseArgs(text: string): Record<string, bigint | string> {
  const args: Record<string, bigint | string> = {};
  for (const m of text.matchAll(ARG)) {
    const v = m[2]!;
    if (v.startsWith('"')) args[m[1]!] = v.slice(1, -1);
    else if (/^-?(0x[0-9a-f]+|\d+)$/i.test(v)) args[m[1]!] = v.startsWith('-') ? -BigInt(v.slice(1)) : BigInt(v);
    else args[m[1]!] = v;
  }
  return args;
}

export function parseTraceLine(line: string, events?: ReadonlySet<string>): ParsedLine {
  const lost = LOST.exec(line);
  if (lost) return { lost: lostCount(lost[2]!), cpu: Number(lost[1]) };
  if (!line || line.startsWith('#')) return undefined;
  const m = LINE.exec(line);
  if (!m) return undefined;
  const probe = m[7]!;
  if (events && !events.has(probe)) return undefined;
  const tid = Number(m[2]);
  const tgid = m[3] && /^\d+$/.test(m[3]) ? Number(m[3]) : tid;
  const frac = m[6]!.padEnd(9, '0').slice(0, 9);
  return {
    hit: { probe: specIdOf(probe), tsNs: Number(m[5]) * 1e9 + Number(frac), cpu: Number(m[4]), tid, pid: tgid, comm: m[1]!, args: parseArgs(m[9] ?? '') },
    location: m[8]!,
  };
}

/** trace_pipe lines -> hits, each hit of a stack-taking probe with the kernel stack its `stacktrace` trigger wrote
 * (render.ts stackTrigger): that entry follows the hit's own in the same CPU's buffer (the trigger runs while the
 * hit's record is being committed), so a hit of such a probe waits, per CPU, for the next stack entry of its CPU.
 * A hit whose stack does not come (the next entry of its CPU is another hit) goes on without one. */
export class TraceReader {
  /** Per CPU: a hit of a stack-taking probe waiting for its stack. */
  private readonly held = new Map<number, ProbeHit>();
  private stack: { cpu: number; frames: string[] } | undefined;
  /** Events the kernel reported lost ("[LOST n EVENTS]"). */
  lost = 0;

  /** stackProbes: spec ids whose hits carry a stack trigger; events: the backend's event names (others ignored). */
  constructor(private readonly stackProbes: ReadonlySet<string> = new Set(), private readonly events?: ReadonlySet<string>) {}

  line(line: string, out: (hit: ProbeHit) => void): void {
    const frame = this.stack ? FRAME.exec(line) : null;
    if (frame) { this.stack!.frames.push(frame[1]!); return; }
    this.endStack(out);
    const st = STACK.exec(line);
    if (st) { this.stack = { cpu: Number(st[1]), frames: [] }; return; }
    const r = parseTraceLine(line, this.events);
    if (!r) return;
    if ('lost' in r) { this.lost = addLost(this.lost, r.lost); return; }
    const waiting = this.held.get(r.hit.cpu);
    if (waiting) { this.held.delete(r.hit.cpu); out(waiting); }
    if (this.stackProbes.has(r.hit.probe)) this.held.set(r.hit.cpu, r.hit);
    else out(r.hit);
  }

  /** End of input: what waits goes on (a stack cut off by the end is attached as far as it came). */
  flush(out: (hit: ProbeHit) => void): void {
    this.endStack(out);
    for (const h of this.held.values()) out(h);
    this.held.clear();
  }

  private endStack(out: (hit: ProbeHit) => void): void {
    const s = this.stack;
    if (!s) return;
    this.stack = undefined;
    const h = this.held.get(s.cpu);
    if (!h) return;
    this.held.delete(s.cpu);
    let skip = 0;
    while (skip < s.frames.length - 1 && MACHINERY.test(s.frames[skip]!)) skip++;
    if (s.frames.length) h.stack = s.frames.slice(skip);
    out(h);
  }
}
