// The summary for a person, in a terminal: input and counts, revoke latency p50/p90/p99/max by kernel and
// by driver, findings by kind with the worst devices, and a log-scale histogram of revoke latency.
import { FindingKind, Severity, type Finding } from '../core/model.js';
import { adviceFor } from './advice.js';
import type { LatencyStats, Summary } from './summary.js';

export interface TableOptions {
  /** Shown in the title, e.g. the trace file. */
  title?: string;
  /** The command named in the heading (default "revokescope analyze"). */
  heading?: string;
  /** How the percentiles were computed (default exact nearest-rank; `run` reads t-digest rollups). */
  percentiles?: string;
  /** Width of the longest histogram bar in characters. Default 40. */
  barWidth?: number;
  /** List the certain CRITICAL and WARNING findings, one line each with what it means and the command that explains
   * it (`explain(f)`), at most `max` (default 50). */
  act?: { findings: readonly Finding[]; explain: (f: Finding) => string; max?: number };
}

const FINDING_KIND_NAMES = FindingKind as unknown as Record<number, string | undefined>;

/** 850 ns, 12.3 µs, 4.56 ms, 1.23 s (three significant digits). */
export function formatNs(ns: number): string {
  const units: [number, string][] = [[1e9, 's'], [1e6, 'ms'], [1e3, 'µs']];
  for (const [scale, unit] of units) if (ns >= scale) return `${sig3(ns / scale)} ${unit}`;
  return `${Math.round(ns)} ns`;
}

function sig3(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

function int(n: number): string {
  return n.toLocaleString('en-US');
}

/** Left-aligned first column (and any listed in `left`), right-aligned others. */
export function grid(header: string[], rows: string[][], left: number[] = [0], indent = '  '): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => indent + cells.map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

function latencyRows(groups: Record<string, LatencyStats>): string[][] {
  return Object.entries(groups).map(([name, s]) =>
    [name, int(s.count), formatNs(s.p50Ns), formatNs(s.p90Ns), formatNs(s.p99Ns), formatNs(s.maxNs)]);
}

const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

/** A bar of `fraction` × width cells drawn with full and eighth blocks. */
export function bar(fraction: number, width: number): string {
  const eighths = Math.round(Math.max(0, Math.min(1, fraction)) * width * 8);
  const s = '█'.repeat(Math.floor(eighths / 8)) + EIGHTHS[eighths % 8];
  return s === '' && fraction > 0 ? '▏' : s;
}

export function renderTable(summary: Summary, opts: TableOptions = {}): string {
  const out: string[] = [];
  const s = summary;
  out.push(`${opts.heading ?? 'revokescope analyze'}${opts.title ? `: ${opts.title}` : ''}`, '');
  const loss = [`lost ${int(s.input.lostEvents)}`, `late ${int(s.input.lateEvents)}`, `duplicate ${int(s.input.duplicateEvents)}`,
    `invalid ${int(s.input.invalidEvents)}`];
  if (s.input.skippedInput) loss.push(`bad lines/records skipped ${int(s.input.skippedInput)}`);
  out.push(`input     ${int(s.input.batches)} batches, ${int(s.events)} events (${loss.join(', ')})`);
  out.push(`episodes  ${int(s.episodes)} (revoke ${int(s.revokeEpisodes)}, incomplete ${int(s.incompleteEpisodes)})`);
  const sev = Object.entries(s.findings.bySeverity).map(([k, n]) => `${k} ${int(n)}`).join(', ');
  out.push(`findings  ${int(s.findings.total)} (${sev}; inconclusive ${int(s.findings.inconclusive)})`, '');

  const lat = s.revokeLatency;
  const cols = ['count', 'p50', 'p90', 'p99', 'max'];
  out.push(`Revoke latency (${opts.percentiles ?? 'nearest-rank percentiles'} of revoke_ns over ${int(lat.all.count)} revoke episodes)`);
  if (lat.all.count === 0) {
    out.push('  no revoke episodes that revoked something', '');
  } else {
    out.push(...grid(['by kernel', ...cols], [...latencyRows(lat.byKernel), ['all', ...latencyRows({ all: lat.all })[0]!.slice(1)]]), '');
    out.push(...grid(['by driver', ...cols], latencyRows(lat.byDriver)), '');
  }

  out.push('Findings by kind');
  const kinds = Object.entries(s.findings.byKind);
  const rows = kinds.map(([kind, n]) => {
    const worst = (s.worstDevices[kind] ?? []).slice(0, 3)
      .map((d) => `${d.hostname} ${d.device}${d.driver ? ` (${d.driver})` : ''} ×${d.count}`).join(', ');
    return [kind, int(n), worst];
  });
  out.push(...grid(['kind', 'count', 'worst devices'], rows, [0, 2]), '');

  if (opts.act) out.push(...actLines(opts.act));

  if (s.openLocks.length > 0) {
    out.push(`Open at the end of the input (memory_lock held, no release seen): ${int(s.openLocks.length)}`);
    out.push(...grid(['host', 'device', 'held', 'task', 'trigger'], s.openLocks.slice(0, 10).map((o) =>
      [o.hostname, o.device, formatNs(o.heldNs), `${o.comm || '?'} (${o.tid})`, o.trigger]), [0, 1, 3, 4]), '');
  }

  if (lat.histogram.length > 0) {
    out.push(`Revoke latency histogram (n=${int(lat.all.count)})`);
    const max = Math.max(...lat.histogram.map((b) => b.count));
    const los = lat.histogram.map((b) => formatNs(b.loNs));
    const his = lat.histogram.map((b) => formatNs(b.hiNs));
    const loWidth = Math.max(...los.map((l) => l.length));
    const hiWidth = Math.max(...his.map((l) => l.length));
    lat.histogram.forEach((b, i) => {
      out.push(`  ${los[i]!.padStart(loWidth)} – ${his[i]!.padStart(hiWidth)} │${bar(b.count / max, opts.barWidth ?? 40)} ${b.count ? int(b.count) : ''}`.trimEnd());
    });
    out.push('');
  }
  return out.join('\n');
}

/** The certain CRITICAL and WARNING findings, worst first (then by time): what they mean and how to explain them. */
function actLines(act: NonNullable<TableOptions['act']>): string[] {
  const certain = act.findings.filter((f) => !f.inconclusive && (f.severity === Severity.CRITICAL || f.severity === Severity.WARNING))
    .sort((a, b) => b.severity - a.severity || a.tsNs - b.tsNs);
  if (certain.length === 0) return ['To act on: no certain CRITICAL or WARNING finding', ''];
  const max = act.max ?? 50;
  const out = [`To act on: ${int(certain.length)} certain CRITICAL and WARNING finding${certain.length === 1 ? '' : 's'}`];
  for (const f of certain.slice(0, max)) {
    out.push(`  ${Severity[f.severity]} ${kindName(f)} ${f.hostname} ${f.device}: ${adviceFor(f.kind).reason}  → ${act.explain(f)}`);
  }
  if (certain.length > max) out.push(`  … ${int(certain.length - max)} more (--format json lists every finding)`);
  out.push('');
  return out;
}

function kindName(f: Finding): string {
  return FINDING_KIND_NAMES[f.kind] ?? String(f.kind);
}
