// Plan -> tracefs text: kprobe_events definitions (Documentation/trace/kprobetrace.rst) and event filters.
import type { PlannedProbe, RExpr, RFilter, ResolvedArg } from '../probes/plan.js';

export const GROUP = 'revokescope';
const REGS = ['%di', '%si', '%dx', '%cx', '%r8', '%r9'];   // x86-64 SysV argument registers

/** afterCall: a probe on the instruction after a call, where the callee's return value is in %ax. */
export function fetchArg(e: RExpr, afterCall = false): string {
  if ('arg' in e) { const r = REGS[e.arg]; if (!r) throw new Error(`argument ${e.arg} is not in a register`); return r; }
  if ('ret' in e) return afterCall ? '%ax' : '$retval';
  if ('caller' in e) return '+0($stack)';
  return `${e.offset < 0 ? '-' : '+'}${Math.abs(e.offset)}(${fetchArg(e.load, afterCall)})`;
}

/** The fetch type: x8..x64 for the value's width, b<size>@<shift>/<container> for a bitfield. */
function fetchType(a: ResolvedArg): string {
  const e = a.expr;
  if ('load' in e && e.bit) return `b${e.bit.size}@${e.bit.shift}/${e.width}`;
  return a.type === 'u32' ? 'x32' : a.type === 'u16' ? 'x16' : a.type === 'u8' ? 'x8' : 'x64';
}

/** "p:revokescope/zap unmap_mapping_range mapping=%di:x64 ..." */
export function kprobeDefinition(p: PlannedProbe): string {
  const after = p.at === 'next';
  const args = p.args.filter((a) => !a.afterFilter).map((a) => {
    if (a.type === 'string') return `${a.name}=+0(${fetchArg(a.expr, after)}):string`;
    return `${a.name}=${fetchArg(a.expr, after)}:${fetchType(a)}`;
  });
  return [`${p.spec.kind === 'entry' || p.at ? 'p' : 'r'}:${GROUP}/${p.event}`, p.symbol, ...args].join(' ');
}

/** Probes that fire only for the agent's own task: they live in a trace instance of their own whose event-pid
 * filter (set_event_pid) is checked before the kprobe fetches anything (trace_trigger_soft_disabled()). */
export const selfOnly = (p: PlannedProbe): boolean => p.filter.some((f) => 'self' in f);

/** The event filter (Documentation/trace/events.rst §5): evaluated in the kernel before the event is kept. */
export function eventFilter(p: PlannedProbe): string {
  const fetched = new Set(p.args.filter((a) => !a.afterFilter).map((a) => a.name));
  const clauses = p.filter.filter((f) => !('self' in f)).map((f: RFilter) => {
    if ('self' in f) return '';
    if ('retRange' in f) return `__probe_ret_ip >= 0x${f.retRange[0].toString(16)} && __probe_ret_ip < 0x${f.retRange[1].toString(16)}`;
    if (!fetched.has(f.arg)) throw new Error(`${p.spec.id}: filter on unfetched ${f.arg}`);
    if ('range' in f) return `${f.arg} >= 0x${f.range[0].toString(16)} && ${f.arg} < 0x${f.range[1].toString(16)}`;
    return f.eq.length === 1 ? `${f.arg} == 0x${f.eq[0]!.toString(16)}` : `(${f.eq.map((v) => `${f.arg} == 0x${v.toString(16)}`).join(' || ')})`;
  });
  return clauses.join(' && ');
}

/** The event trigger that records the kernel stack of a hit (Documentation/trace/events.rst §6, "stacktrace"), with
 * the event's own filter as its condition: an unconditional trigger runs before the event filter, for every hit of
 * the function (trace_trigger_soft_disabled()); a conditional one runs on the filled record, only where it matches. */
export function stackTrigger(p: PlannedProbe): string {
  const f = eventFilter(p);
  return f ? `stacktrace if ${f}` : 'stacktrace';
}
