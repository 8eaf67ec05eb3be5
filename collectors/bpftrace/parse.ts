// bpftrace output -> ProbeHit (format written by script.ts).
import type { ProbeHit } from '../probes/hit.js';
import { parseArgs } from '../ftrace/parse.js';

const LINE = /^RS (\w+) (\d+) (\d+) (\d+) (\d+)((?: \w+=\S*)*) \|(.*)$/;
const LOST = /Lost (\d+) events/;

export function parseBpftraceLine(line: string): { hit: ProbeHit } | { lost: number } | undefined {
  const lost = LOST.exec(line);
  if (lost) return { lost: Number(lost[1]) };
  const m = LINE.exec(line);
  if (!m) return undefined;
  return { hit: { probe: m[1]!, tsNs: Number(m[2]), cpu: Number(m[3]), tid: Number(m[4]), pid: Number(m[5]), comm: m[7]!, args: parseArgs(m[6]!) } };
}
