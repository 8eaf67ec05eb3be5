// trace_pipe text -> ProbeHit. Line layout (kernel/trace/trace_output.c, trace_print_context):
//   "<comm>-<tid> (<tgid>) [<cpu>] <flags> <secs>.<usecs>: <event>: (<location>) name=value ..."
// the tgid column only with options/record-tgid, the flags column only with options/irq-info.
import type { ProbeHit } from '../probes/hit.js';
import { specIdOf } from '../probes/plan.js';

const LINE = /^\s*(.*?)-(\d+)\s+(?:\(\s*([-\d]+)\)\s+)?\[(\d+)\]\s+(?:\S{4,5}\s+)?(\d+)\.(\d+):\s+(\w+):\s+\((.*?)\)(?:\s+(.*))?$/;
const ARG = /(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g;
const LOST = /^CPU:(\d+) \[LOST (\d+) EVENTS\]/;

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
  if (lost) return { lost: Number(lost[2]), cpu: Number(lost[1]) };
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
