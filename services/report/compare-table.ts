// The kernel A/B comparison for a person, in a terminal: the verdict and why, the overall table (within strata,
// weighted by the baseline's mix), then latency quantiles and finding rates stratum by stratum.
import type { Comparison, QuantileComparison, RateComparison, SideSummary } from './compare.js';
import { formatNs } from './table.js';

/** Left-aligned columns listed in `left`, right-aligned others. */
function grid(header: string[], rows: string[][], left: number[], indent = '  '): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => indent + cells.map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

const int = (n: number): string => n.toLocaleString('en-US');
const pct = (q: number): string => `p${Math.round(q * 100)}`;
const ns = (v: number | undefined): string => (v === undefined ? '—' : formatNs(v));
const ratio = (v: number | undefined): string => (v === undefined ? '—' : v.toFixed(3));
const share = (v: number): string => `${(100 * v).toFixed(1)}%`;
const rate = (v: number): string => (v === 0 ? '0' : v < 0.01 ? v.toExponential(1) : v.toPrecision(3));

/** p-values: 2 significant digits, "<0.0001" below; a star when below α. */
function pv(p: number | undefined, alpha: number): string {
  if (p === undefined) return '—';
  return `${p < 1e-4 ? '<0.0001' : p.toPrecision(2)}${p < alpha ? ' *' : ''}`;
}

function interval(lo: number | undefined, hi: number | undefined, f: (v: number | undefined) => string): string {
  return lo === undefined && hi === undefined ? '' : `[${lo === undefined ? '—' : f(lo)}, ${hi === undefined ? '∞' : f(hi)}]`;
}

function sideLine(name: string, s: SideSummary): string {
  const kernels = s.kernels.length <= 3 ? s.kernels.join(', ') : `${s.kernels.slice(0, 3).join(', ')} and ${s.kernels.length - 3} more`;
  return `${name.padEnd(9)} ${s.label}: ${kernels || 'no kernel matched'}; ${int(s.hosts)} hosts, ${int(s.episodes)} episodes ` +
    `(revoke latency measured ${int(s.measured.revoke)}, hold ${int(s.measured.hold)}), findings certain ${int(s.findings.certain)}, ` +
    `inconclusive ${int(s.findings.inconclusive)}${s.unattributed.certain + s.unattributed.inconclusive > 0
      ? ` (outside the episodes: ${int(s.unattributed.certain)} certain, ${int(s.unattributed.inconclusive)} inconclusive)` : ''}`;
}

export function renderComparison(c: Comparison): string {
  const out: string[] = [];
  const conf = `${Math.round((1 - c.alpha) * 100)}%`;
  out.push(`revokescope compare: ${c.candidate.label} against ${c.baseline.label}`, '');
  out.push(sideLine('baseline', c.baseline), sideLine('candidate', c.candidate), '');
  out.push(`Verdict: ${c.verdict.toUpperCase()}`);
  for (const r of c.reasons) out.push(`  ${r}`);
  out.push('');

  out.push(`Overall: within trigger × driver strata, weighted by the baseline's mix (${conf} intervals, p Holm-adjusted over this table, ` +
    `* below α = ${c.alpha}; a latency change counts beyond ×${(1 + c.minEffect).toFixed(2)})`);
  const lat = c.overall.latency.map((l) => [`${l.metric} ${pct(l.q)}`, `${l.strata}`, share(l.coverage), ratio(l.ratio),
    interval(l.lower, l.upper, ratio), pv(l.pAdjusted, c.alpha), l.verdict]);
  out.push(...grid(['latency', 'strata', 'coverage', 'ratio', `${conf} interval`, 'p', 'verdict'], lat, [0, 6]), '');
  const rates = c.overall.rates.map((r) => [`${r.kind} findings`, `${r.strata}`, share(r.coverage),
    `${rate(r.baseline.per1k)} ${interval(r.baseline.lower, r.baseline.upper, (v) => rate(v ?? 0))}`,
    `${rate(r.candidate.per1k)} ${interval(r.candidate.lower, r.candidate.upper, (v) => rate(v ?? 0))}`,
    ratio(r.ratio), pv(r.pAdjusted, c.alpha), r.verdict]);
  out.push(...grid(['per 1000 episodes', 'strata', 'coverage', 'baseline', 'candidate (baseline mix)', 'ratio', 'p', 'verdict'], rates, [0, 3, 4, 7]), '');

  const label = (s: { trigger: string; driver: string }): [string, string] => [s.trigger, s.driver || '(none)'];
  for (const metric of ['revoke', 'hold'] as const) {
    out.push(`${metric === 'revoke' ? 'Revoke latency (revoke_ns)' : 'memory_lock hold (hold_ns)'} by stratum: baseline → candidate ` +
      `(exact order-statistic ${conf} intervals; ratio interval and p between hosts, p Holm-adjusted over every stratum test)`);
    const rows: string[][] = [];
    for (const s of c.strata) {
      const qs = s.latency.filter((x) => x.metric === metric);
      if (qs.every((x) => x.baseline.n === 0 && x.candidate.n === 0)) continue;
      qs.forEach((x: QuantileComparison, i) => {
        const [t, d] = label(s);
        rows.push([i === 0 ? t : '', i === 0 ? d : '', i === 0 ? `${int(x.baseline.n)}/${int(x.candidate.n)}` : '',
          i === 0 ? `${x.baseline.hosts}/${x.candidate.hosts}` : '', pct(x.q),
          `${ns(x.baseline.value)} ${interval(x.baseline.lower, x.baseline.upper, ns)}`,
          `${ns(x.candidate.value)} ${interval(x.candidate.lower, x.candidate.upper, ns)}`,
          x.ratio === undefined ? 'too few' : `${ratio(x.ratio)} ${interval(x.lower, x.upper, ratio)}`, pv(x.pAdjusted, c.alpha)]);
      });
    }
    out.push(...(rows.length ? grid(['trigger', 'driver', 'values', 'hosts', 'q', 'baseline', 'candidate', 'ratio', 'p'], rows, [0, 1, 4, 5, 6, 7])
      : ['  no measured episodes']), '');
  }

  out.push(`Findings per 1000 episodes by stratum (exact Poisson ${conf} intervals, widened when hosts vary more than Poisson)`);
  const rows: string[][] = [];
  let quiet = 0;
  for (const s of c.strata) {
    if (s.rates.every((r) => r.baseline.findings + r.candidate.findings === 0)) { quiet++; continue; }
    const [t, d] = label(s);
    const cell = (r: RateComparison, side: 'baseline' | 'candidate'): string =>
      `${rate(r[side].per1k)} ${interval(r[side].lower, r[side].upper, (v) => rate(v ?? 0))}`;
    const [certain, inconclusive] = s.rates;
    rows.push([t, d, `${int(s.baselineEpisodes)}/${int(s.candidateEpisodes)}`, share(s.weight),
      cell(certain!, 'baseline'), cell(certain!, 'candidate'), pv(certain!.pAdjusted, c.alpha),
      cell(inconclusive!, 'baseline'), cell(inconclusive!, 'candidate'), pv(inconclusive!.pAdjusted, c.alpha)]);
  }
  if (rows.length > 0) {
    out.push(...grid(['trigger', 'driver', 'episodes', 'weight', 'certain: baseline', 'candidate', 'p', 'inconclusive: baseline', 'candidate', 'p'],
      rows, [0, 1, 4, 5, 7, 8]));
  }
  out.push(`  ${rows.length ? 'and ' : ''}${int(quiet)} strata with no finding on either side`, '');
  return out.join('\n');
}
