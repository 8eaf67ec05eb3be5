// An explanation for a person, in a terminal: the finding, its rule, the timeline (relative times, durations, tasks,
// what each event changed), the state the rule judged with the fact that established each piece, what was unknown,
// and what to check next.
import type { Explanation, StatePiece, StatePieceName } from './explain.js';
import { STATE_PIECES } from './explain.js';
import { formatNs, grid } from './table.js';

/** +1.23 ms, −850 ns, 0 */
export function formatRelNs(ns: number): string {
  if (ns === 0) return '0';
  return `${ns < 0 ? '−' : '+'}${formatNs(Math.abs(ns))}`;
}

const PIECE_LABEL: Record<StatePieceName, string> = {
  lock: 'memory_lock', memoryEnabled: 'memory enabled', memoryBit: 'COMMAND memory bit', lowPower: 'low power (≥ D3hot)',
  revoked: 'DMABUFs revoked', permanentRevoke: 'permanently revoked', open: 'device open', mappings: 'BAR mappings',
};

function valueText(p: StatePiece): string {
  const v = typeof p.value === 'boolean' ? (p.value ? 'yes' : 'no') : String(p.value);
  return p.known ? v : `unknown (assumed ${v})`;
}

/** Frames shown per stack, innermost first. */
export const STACK_FRAMES_SHOWN = 6;

/** A stack's lines the first time it is named, nothing after. */
function stackLines(x: Explanation, id: number, shown: Set<number>): string[] {
  if (shown.has(id)) return [];
  shown.add(id);
  const frames = x.stacks[String(id)];
  if (!frames) return [`        stack ${id}: unknown (its frames never arrived)`];
  const more = frames.length - STACK_FRAMES_SHOWN;
  return [`        stack ${id}:`, ...frames.slice(0, STACK_FRAMES_SHOWN).map((f) => `          ${f}`),
    ...(more > 0 ? [`          … ${more} more (--format json has all)`] : [])];
}

export function renderExplanation(x: Explanation): string {
  const f = x.finding;
  const out: string[] = [];
  out.push(`revokescope explain ${f.findingId}`, '');
  out.push(`finding   ${f.kind} ${f.severity}${f.inconclusive ? ' (inconclusive)' : ''} on ${f.hostname} ${f.device} (${f.driver || 'driver unknown'}, ${f.kernelRelease || 'kernel unknown'})`);
  out.push(`meaning   ${x.reason}`);
  out.push(`rule      ${x.rule.id}`);
  out.push(`mirrors   ${x.rule.mirrors}`);
  if (x.episode) {
    const e = x.episode;
    out.push(`episode   ${e.episodeId} ${e.trigger} by ${e.task.comm || '?'} (pid ${e.task.pid}): wait ${formatNs(e.lockWaitNs)}, hold ${formatNs(e.holdNs)}, ` +
      `revoke ${formatNs(e.revokeNs)}${e.complete ? '' : ', incomplete'}${e.triggerRet ? `, returned ${e.triggerRet}` : ''}`);
  } else out.push(`episode   none (${f.episodeId ? `${f.episodeId} not found` : 'the finding is about one event'})`);
  const facts = Object.entries(x.evidence).filter(([k]) => !['rule', 'mirrors', 'unknown'].includes(k));
  out.push(`evidence  ${facts.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ')}`);
  if (x.unknown.length > 0) {
    out.push('', 'unknown (why it is inconclusive)');
    for (const u of x.unknown) out.push(`  - ${u}`);
  }
  out.push('', `timeline  times relative to ${x.episode?.acquireRelNs === 0 ? 'the lock acquire' : 'the finding'}; ` +
    `${x.window.shown} of ${x.window.replayed} events replayed shown (${x.window.source}${x.window.capped ? `, capped at ${x.window.maxEvents}: older events left out` : ''})`);
  const rows = x.timeline.map((s) => [
    `${s.finding ? '▶' : s.inEpisode ? '│' : ' '} ${s.step}`, formatRelNs(s.relNs), s.durationNs === null ? '' : formatNs(s.durationNs),
    `${s.comm || '?'}/${s.tid}`, s.what,
    s.changed.map((n) => `${PIECE_LABEL[n]}: ${valueText(s.state[n])}`).join('; '),
  ]);
  const lines = grid(['  #', 't', 'dur', 'task/tid', 'event', 'state it changed'], rows, [0, 3, 4, 5]);
  // each distinct stack once, under the step that first names it (grid: a header line, then one line per row)
  const header = lines.length - rows.length;
  const shown = new Set<number>();
  out.push(...lines.slice(0, header));
  x.timeline.forEach((s, i) => {
    out.push(lines[header + i]!);
    if (s.stackId !== null) out.push(...stackLines(x, s.stackId, shown));
  });
  out.push(...lines.slice(header + rows.length));
  out.push('  (▶ the finding\'s step, │ inside its episode)');
  const rest = Object.keys(x.stacks).map(Number).filter((id) => !shown.has(id));
  if (rest.length > 0) {
    out.push('', 'kernel stacks not on a shown step (the acquire\'s, the evidence\'s)');
    for (const id of rest) out.push(...stackLines(x, id, shown));
  }
  if (x.stateAtFinding) {
    out.push('', `state the rule judged (${x.stateAtFinding.at})`);
    const srows = STATE_PIECES.map((n) => {
      const p = x.stateAtFinding!.state[n];
      const by = p.since ? `step ${p.since.step} at ${formatRelNs(p.since.relNs)}: ${p.since.event}` : '';
      return [PIECE_LABEL[n], valueText(p), p.known ? by : (p.unknown ?? []).join('; ') || by];
    });
    out.push(...grid(['piece', 'value', 'established by (or why unknown)'], srows, [0, 1, 2]));
  }
  out.push('', x.reproduced ? 'replay   the kept events make this same finding again'
    : 'replay   the kept events alone do not make this finding again (facts older than the window, another device\'s hot reset, or loss): the state shown is what they establish');
  out.push('', 'what to check next');
  for (const n of x.next) out.push(`  - ${n}`);
  return out.join('\n') + '\n';
}
