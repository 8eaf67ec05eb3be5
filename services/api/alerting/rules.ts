// Built-in rules (editable), rule validation beyond JSON Schema, label sets, fingerprints and annotation
// templates. Paging policy (docs/rules.md): a critical rule pages someone at night, so every critical rule over
// findings counts certain findings only (query.inconclusive: false); inconclusive findings rest on device state
// the collector could not know, stay visible (API, dashboards, the info-level RevokeInconclusiveFindings) and
// never page.
import { parseDurationMs } from './duration.js';
import { GROUPABLE } from './queries.js';
import { QUANTILES, REGRESSION_METRICS, REGRESSION_QUANTILES, type Rule, type RuleQuery, type ThresholdOp } from './types.js';

const base = { enabled: true, builtin: true, updatedAt: 0 };

export const DEFAULT_RULES: Rule[] = [
  {
    ...base, id: 'fault-while-revoked', name: 'RevokeFaultWhileRevoked',
    query: { type: 'finding_count', window: '1h', kinds: ['FAULT_WHILE_REVOKED'], inconclusive: false,
      groupBy: ['hostname', 'device', 'driver', 'kernel_release'] },
    threshold: { op: '>', value: 0 }, for: '0s', labels: { severity: 'critical' },
    annotations: {
      summary: 'BAR PTEs installed while access was revoked on {{ $labels.hostname }} {{ $labels.device }}',
      description: '{{ $value }} certain FAULT_WHILE_REVOKED finding(s) in the last hour: a BAR fault installed PTEs while memory was ' +
        'disabled or the DMABUF revoked, so userspace could reach MMIO the revoke protocol had cut off; driver {{ $labels.driver }}, ' +
        'kernel {{ $labels.kernel_release }}.',
    },
  },
  {
    ...base, id: 'skipped-zap', name: 'RevokeSkippedZap',
    query: { type: 'finding_count', window: '1h', kinds: ['SKIPPED_ZAP'], inconclusive: false,
      groupBy: ['hostname', 'device', 'driver', 'kernel_release'] },
    threshold: { op: '>', value: 0 }, for: '0s', labels: { severity: 'critical' },
    annotations: {
      summary: 'Skipped BAR zap on {{ $labels.hostname }} {{ $labels.device }}',
      description: '{{ $value }} certain SKIPPED_ZAP finding(s) in the last hour: a revoke left a non-DMABUF BAR mapping ' +
        'with live PTEs (unmap_mapping_range not called on the vdev inode); driver {{ $labels.driver }}, kernel {{ $labels.kernel_release }}.',
    },
  },
  {
    ...base, id: 'lock-not-held', name: 'RevokeLockNotHeld',
    query: { type: 'finding_count', window: '1h', kinds: ['LOCK_NOT_HELD'], inconclusive: false,
      groupBy: ['hostname', 'device', 'driver', 'kernel_release'] },
    threshold: { op: '>', value: 0 }, for: '0s', labels: { severity: 'critical' },
    annotations: {
      summary: 'Revoke without memory_lock on {{ $labels.hostname }} {{ $labels.device }}',
      description: '{{ $value }} zap/DMABUF revoke(s) ran without vdev->memory_lock held for write (lockdep_assert_held_write would fire).',
    },
  },
  {
    ...base, id: 'redundant-zap-budget', name: 'RevokeRedundantZapBudget',
    query: { type: 'redundant_zap_ns', window: '1h', inconclusive: false, groupBy: ['hostname'] },
    threshold: { op: '>', value: 100_000_000 }, for: '10m', labels: { severity: 'warning' },
    annotations: {
      summary: 'Redundant BAR zaps cost {{ $value }} ns/h on {{ $labels.hostname }}',
      description: 'unmap_mapping_range walked a mapping with only DMABUF-backed BAR mmaps while holding memory_lock; budget 100 ms per hour.',
    },
  },
  {
    ...base, id: 'revoke-p99', name: 'RevokeLatencyP99High',
    query: { type: 'latency_quantile', window: '15m', metric: 'revoke', quantile: 0.99, groupBy: ['kernel_release', 'driver'] },
    threshold: { op: '>', value: 50_000_000 }, for: '5m', labels: { severity: 'warning' },
    annotations: {
      summary: 'Revoke p99 {{ $value }} ns on kernel {{ $labels.kernel_release }} driver {{ $labels.driver }}',
      description: 'p99 of lock-acquire to last revoking step over 15 minutes is above 50 ms.',
    },
  },
  {
    ...base, id: 'lock-held-open', name: 'RevokeLockHeldOpen',
    query: { type: 'finding_count', window: '15m', kinds: ['LOCK_HELD_OPEN'], inconclusive: false, groupBy: ['hostname', 'device', 'driver'] },
    threshold: { op: '>', value: 0 }, for: '0s', labels: { severity: 'warning' },
    annotations: {
      summary: 'memory_lock held open on {{ $labels.hostname }} {{ $labels.device }}',
      description: 'down_write(&vdev->memory_lock) with no up_write for longer than the limit: BAR faults and config accesses stall.',
    },
  },
  {
    ...base, id: 'inconclusive-findings', name: 'RevokeInconclusiveFindings',
    query: { type: 'finding_count', window: '1h', inconclusive: true, groupBy: ['hostname', 'kind'] },
    threshold: { op: '>', value: 0 }, for: '0s', labels: { severity: 'info' },
    annotations: {
      summary: '{{ $value }} inconclusive {{ $labels.kind }} finding(s) on {{ $labels.hostname }}',
      description: 'Findings whose premise rests on device state the collector could not know (started inside a lock window, ' +
        'event loss, a fact its probes cannot read): each evidence.unknown says which. Visible, never paging: ' +
        '/api/v1/findings?inconclusive=true&host={{ $labels.hostname }}.',
    },
  },
  {
    ...base, id: 'host-event-loss', name: 'CollectorEventLoss',
    query: { type: 'event_loss', window: '15m', groupBy: ['hostname'] },
    threshold: { op: '>', value: 0 }, for: '5m', labels: { severity: 'warning' },
    annotations: {
      summary: '{{ $value }} events lost on {{ $labels.hostname }} in 15 minutes',
      description: 'Ring-buffer drops or sequence gaps: findings from this host may be inconclusive.',
    },
  },
  {
    ...base, id: 'host-silent', name: 'CollectorSilent',
    query: { type: 'host_silent', window: '24h', groupBy: ['hostname'] },
    threshold: { op: '>', value: 300 }, for: '0s', labels: { severity: 'warning' },
    annotations: {
      summary: '{{ $labels.hostname }} silent for {{ $value }} s',
      description: 'The collector\'s clock (heartbeat now_ns, or its newest event) has not advanced for more than 5 minutes.',
    },
  },
];

export class RuleError extends Error {
  override readonly name = 'RuleError';
}

/** Checks JSON Schema cannot express (cross-field). Throws RuleError with the reason. */
export function checkRule(r: Rule): void {
  try {
    parseDurationMs(r.for);
    parseDurationMs(r.query.window);
  } catch (e) {
    throw new RuleError((e as Error).message);
  }
  const allowed = GROUPABLE[r.query.type];
  for (const g of r.query.groupBy) {
    if (!allowed.includes(g)) throw new RuleError(`query.groupBy: ${g} is not available for ${r.query.type} (allowed: ${allowed.join(', ')})`);
  }
  if (new Set(r.query.groupBy).size !== r.query.groupBy.length) throw new RuleError('query.groupBy: duplicate label');
  if (r.query.type === 'latency_quantile') {
    if (r.query.quantile !== undefined && !QUANTILES.includes(r.query.quantile as (typeof QUANTILES)[number])) {
      throw new RuleError(`query.quantile must be one of ${QUANTILES.join(', ')}`);
    }
  } else if (r.query.type === 'latency_regression') {
    checkRegressionRule(r);
  } else if (r.query.metric !== undefined || r.query.quantile !== undefined) {
    throw new RuleError('query.metric and query.quantile only apply to latency_quantile and latency_regression');
  }
  if (r.query.type !== 'latency_regression' && (r.query.baseline !== undefined || r.query.candidate !== undefined || r.query.alpha !== undefined)) {
    throw new RuleError('query.baseline, query.candidate and query.alpha only apply to latency_regression');
  }
  if (r.query.type !== 'finding_count' && (r.query.kinds?.length || r.query.severities?.length)) {
    throw new RuleError('query.kinds and query.severities only apply to finding_count');
  }
  if (!Number.isFinite(r.threshold.value)) throw new RuleError('threshold.value must be finite');
  if (pages(r) && countsFindings(r) && r.query.inconclusive !== false) {
    throw new RuleError('a critical rule pages: it must count certain findings only (query.inconclusive: false); ' +
      'inconclusive findings rest on unknown device state and never page (use severity info or warning to watch them)');
  }
}

/** A rule that pages: severity critical. */
export function pages(r: Pick<Rule, 'labels'>): boolean {
  return (r.labels.severity ?? '').toLowerCase() === 'critical';
}

function countsFindings(r: Pick<Rule, 'query'>): boolean {
  return r.query.type === 'finding_count' || r.query.type === 'redundant_zap_ns';
}

/** Queries of built-in rules as earlier versions seeded them (before rules v2 they counted inconclusive findings
 * too). A stored built-in rule whose query is still one of these was not edited there: it gets today's query
 * (threshold, labels and annotations, which a user may have edited, stay). */
const SUPERSEDED_QUERIES: Record<string, RuleQuery[]> = {
  'lock-held-open': [{ type: 'finding_count', window: '15m', kinds: ['LOCK_HELD_OPEN'], groupBy: ['hostname', 'device', 'driver'] }],
  'redundant-zap-budget': [{ type: 'redundant_zap_ns', window: '1h', groupBy: ['hostname'] }],
};

/** The stored built-in rules whose query an earlier version seeded, with today's query (the rest unchanged). */
export function upgradedBuiltinRules(stored: readonly Rule[], now: number): Rule[] {
  const out: Rule[] = [];
  for (const r of stored) {
    const current = DEFAULT_RULES.find((d) => d.id === r.id);
    if (!r.builtin || !current) continue;
    if ((SUPERSEDED_QUERIES[r.id] ?? []).some((q) => sameQuery(q, r.query))) out.push({ ...r, query: current.query, updatedAt: now });
  }
  return out;
}

function sameQuery(a: RuleQuery, b: RuleQuery): boolean {
  const norm = (q: RuleQuery): string => JSON.stringify(Object.entries(q).filter(([, v]) => v !== undefined).sort(([x], [y]) => x.localeCompare(y)));
  return norm(a) === norm(b);
}

/** latency_regression: both kernels named, a metric and quantile `revokescope compare` compares. */
function checkRegressionRule(r: Rule): void {
  const q = r.query;
  if (!q.baseline || !q.candidate) throw new RuleError('latency_regression needs query.baseline and query.candidate (kernel releases or globs)');
  if (q.metric !== undefined && !(REGRESSION_METRICS as readonly string[]).includes(q.metric)) {
    throw new RuleError(`latency_regression: query.metric must be one of ${REGRESSION_METRICS.join(', ')}`);
  }
  if (q.quantile !== undefined && !(REGRESSION_QUANTILES as readonly number[]).includes(q.quantile)) {
    throw new RuleError(`latency_regression: query.quantile must be one of ${REGRESSION_QUANTILES.join(', ')}`);
  }
}

export function compare(op: ThresholdOp, value: number, threshold: number): boolean {
  switch (op) {
    case '>': return value > threshold;
    case '>=': return value >= threshold;
    case '<': return value < threshold;
    case '<=': return value <= threshold;
    case '==': return value === threshold;
    case '!=': return value !== threshold;
  }
}

/** An alert's labels: the series' labels, then the rule's labels, then alertname (Prometheus precedence). */
export function alertLabels(rule: Rule, series: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(series)) if (v !== '') out[k] = v;
  Object.assign(out, rule.labels);
  out.alertname = rule.name;
  out.rule_id = rule.id;
  return out;
}

/** Stable fingerprint of a label set: FNV-1a 64 over the sorted name/value pairs, 16 hex digits
 * (same role as Prometheus' labels.Fingerprint; stable across restarts and processes). */
export function fingerprint(labels: Record<string, string>): string {
  let h = 0xcbf29ce484222325n;
  const mix = (s: string): void => {
    const bytes = Buffer.from(s, 'utf8');
    for (const b of bytes) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
    h = BigInt.asUintN(64, (h ^ 0xffn) * 0x100000001b3n); // separator
  };
  for (const k of Object.keys(labels).sort()) { mix(k); mix(labels[k]!); }
  return h.toString(16).padStart(16, '0');
}

/** Expand {{ $labels.NAME }} and {{ $value }} (nothing else: templates never execute code). */
export function expandTemplate(text: string, labels: Record<string, string>, value: number): string {
  return text.replace(/\{\{\s*\$(labels\.([A-Za-z_][A-Za-z0-9_]*)|value)\s*\}\}/g, (_, what: string, name?: string) =>
    what === 'value' ? formatValue(value) : (labels[name!] ?? ''));
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, '');
}
