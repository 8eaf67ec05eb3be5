// bpftrace output -> ProbeHit (format written by script.ts).
import type { ProbeHit } from '../probes/hit.js';
import { parseArgs } from '../ftrace/parse.js';
import { addLost, lostCount } from '../probes/lost.js';

const LINE = /^RS (\w+) (\d+) (\d+) (\d+) (\d+)((?: \w+=\S*)*) \|(.*)$/;
const LOST = /Lost (\d+) events/;

export function parseBpftraceLine(line: string): { hit: ProbeHit } | { lost: number } | undefined {
  const lost = LOST.exec(line);
  if (lost) return { lost: lostCount(lost[1]!) };
  const m = LINE.exec(line);
  if (!m) return undefined;
  const args = parseArgs(m[6]!);
  const hit: ProbeHit = { probe: m[1]!, tsNs: Number(m[2]), cpu: Number(m[3]), tid: Number(m[4]), pid: Number(m[5]), comm: m[7]!, args };
  // the task's cgroup (bpftrace's `cgroup`: bpf_get_current_cgroup_id()), printed by every probe as cg=
  if (typeof args.cg === 'bigint') { if (args.cg > 0n) hit.cgroupId = Number(args.cg); delete args.cg; }
  return { hit };
}

/** A line of a kernel stack bpftrace printed after a hit's line (script.ts: "|<comm>\n" then kstack, whose text is
 * a blank line and one indented "<symbol>+<offset>" line per frame, innermost first); undefined for any other line. */
export function stackFrameLine(line: string): string | undefined {
  if (line === '') return '';
  return /^\s+(\S.*?)\s*$/.exec(line)?.[1];
}

/** bpftrace output lines -> hits with their stacks: frame lines attach to the hit printed just before them. */
export class BpftraceReader {
  private last: ProbeHit | undefined;
  lost = 0;

  /** The parsed hit of an RS line (frames that follow are added to it later, in place), or undefined. */
  line(line: string): ProbeHit | undefined {
    const frame = this.last ? stackFrameLine(line) : undefined;
    if (frame !== undefined) { if (frame) (this.last!.stack ??= []).push(frame); return undefined; }
    this.last = undefined;
    const r = parseBpftraceLine(line);
    if (!r) return undefined;
    if ('lost' in r) { this.lost = addLost(this.lost, r.lost); return undefined; }
    return (this.last = r.hit);
  }
}
