// Kernel rollout: a baseline and a candidate kernel release side by side, same panels, so a rollout of the
// "vfio/pci: Add mmap() for DMABUFs" series (conditional zap) can be judged at a glance: latency should
// drop where the zap is skipped, and SKIPPED_ZAP must stay at zero. The first row compares them within trigger ×
// driver strata as `revokescope compare` does (rollout-strata.ts), so a different workload mix alone moves nothing.
import { dashboardPath, dashboardUrl, eqVar, field, inVar, type DashboardSpec, type PanelSpec, type Row } from './builder.js';
import { measured, merged, ms, T } from './sql.js';
import { overallLatency, overallRates, stratumLatency, stratumRates } from './rollout-strata.js';
import { UID } from './uids.js';

type Side = 'baseline' | 'candidate';
const label: Record<Side, string> = { baseline: 'baseline $baseline', candidate: 'candidate $candidate' };

const where = (side: Side): string => `${eqVar('kernel_release', side)}\n  AND ${inVar('driver', 'driver')}`;
const series = { drawStyle: 'line', lineWidth: 1, fillOpacity: 0, showPoints: 'never', spanNulls: false };

function revokeLatency(side: Side): PanelSpec {
  return {
    type: 'timeseries', title: `Revoke latency (${label[side]})`, w: 12, h: 8, unit: 'ms',
    queries: [{ format: 'time_series', sql: `SELECT time, ${ms('q', 0.5, 'p50')}, ${ms('q', 0.99, 'p99')}, ${ms('q', 0.999, 'p99_9')}
FROM (
  SELECT $__timeInterval(minute) AS time, ${merged('revoke', 'q')}
  FROM ${T.latency}
  WHERE $__timeFilter(minute)
    AND ${where(side)}
  GROUP BY time
  HAVING sum(revoke_episodes) > 0
)
ORDER BY time` }],
    custom: { ...series, scaleDistribution: { type: 'log', log: 10 } },
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: ['mean', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

function zapShare(side: Side): PanelSpec {
  return {
    type: 'timeseries', title: `Revokes with a BAR zap, and zap time (${label[side]})`, w: 12, h: 8, unit: 'percentunit', min: 0,
    description: 'With the series applied, the DEVICE zap runs only when zap_bars_on_revoke is set: the share should fall to the devices with custom vm_ops ' +
      '(whose zaps of unmapped BARs are intended: intended_empty_zaps, no finding).',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(time) AS time,
  countIf(zap_count > 0) / count() AS zapped_share,
  avgIf(zap_ns, zap_count > 0) / 1e6 AS zap_ms_mean
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND revoke
  AND ${where(side)}
GROUP BY time
ORDER BY time` }],
    custom: series,
    overrides: [{ name: 'zap_ms_mean', properties: { unit: 'ms', 'custom.axisPlacement': 'right' } }],
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: ['mean'] }, tooltip: { mode: 'multi', sort: 'none' } },
  };
}

function holdTime(side: Side): PanelSpec {
  return {
    type: 'timeseries', title: `memory_lock hold p50 / p99 (${label[side]})`, w: 12, h: 8, unit: 'ms',
    queries: [{ format: 'time_series', sql: `SELECT time, ${ms('h', 0.5, 'hold_p50')}, ${ms('h', 0.99, 'hold_p99')}
FROM (
  SELECT $__timeInterval(minute) AS time, ${merged('hold', 'h')}
  FROM ${T.latency}
  WHERE $__timeFilter(minute)
    AND ${where(side)}
  GROUP BY time
)
ORDER BY time` }],
    custom: series,
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: ['mean', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

function findingsPerEpisode(side: Side): PanelSpec {
  return {
    type: 'timeseries', title: `Findings per 1000 revoke episodes (${label[side]})`, w: 12, h: 8, unit: 'short',
    queries: [{ format: 'time_series', sql: `SELECT f.time AS time, f.kind AS kind, 1000 * f.findings / greatest(e.revokes, 1) AS per_1k_revokes
FROM (
  SELECT $__timeInterval(time) AS time, toString(kind) AS kind, count() AS findings
  FROM ${T.findings} FINAL
  WHERE $__timeFilter(time)
    AND ${where(side)}
  GROUP BY time, kind
) AS f
LEFT JOIN (
  SELECT $__timeInterval(time) AS time, countIf(revoke) AS revokes
  FROM ${T.episodes}
  WHERE $__timeFilter(time)
    AND ${where(side)}
  GROUP BY time
) AS e ON f.time = e.time
ORDER BY time` }],
    custom: { drawStyle: 'bars', fillOpacity: 80, lineWidth: 1, stacking: { group: 'A', mode: 'normal' }, showPoints: 'never' },
    defaults: { displayName: '${__field.labels.kind}' },
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: ['mean'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

const pair = (f: (s: Side) => PanelSpec): PanelSpec[] => [f('baseline'), f('candidate')];

const comparison: PanelSpec = {
  type: 'table', title: 'Baseline vs candidate', w: 24, h: 6,
  description: 'Latencies of measured episodes (complete, acquire seen); finding counts are certain findings, inconclusive ones apart.',
  queries: [{ format: 'table', columns: ['kernel_release', 'revoke_p99_ms'], sql: `SELECT e.kernel_release AS kernel_release, e.hosts AS hosts, e.devices AS devices, e.revoke_episodes AS revoke_episodes,
  e.revoke_p50_ms AS revoke_p50_ms, e.revoke_p99_ms AS revoke_p99_ms, e.revoke_p99_9_ms AS revoke_p99_9_ms,
  e.zapped_share AS zapped_share, e.zap_ms_total AS zap_ms_total, e.hold_p99_ms AS hold_p99_ms,
  e.intended_empty_zaps AS intended_empty_zaps,
  f.faults_while_revoked AS faults_while_revoked, f.skipped_zaps AS skipped_zaps, f.redundant_zaps AS redundant_zaps,
  f.slow_revokes AS slow_revokes, f.inconclusive_findings AS inconclusive_findings
FROM (
  SELECT kernel_release, uniqExact(hostname) AS hosts, uniqExact(hostname, device) AS devices, countIf(revoke) AS revoke_episodes,
    quantileIf(0.5)(revoke_ns, ${measured('revoke')}) / 1e6 AS revoke_p50_ms,
    quantileIf(0.99)(revoke_ns, ${measured('revoke')}) / 1e6 AS revoke_p99_ms,
    quantileIf(0.999)(revoke_ns, ${measured('revoke')}) / 1e6 AS revoke_p99_9_ms,
    countIf(revoke AND zap_count > 0) / greatest(countIf(revoke), 1) AS zapped_share,
    sum(zap_ns) / 1e6 AS zap_ms_total, sum(intended_empty_zaps) AS intended_empty_zaps,
    quantileIf(0.99)(hold_ns, ${measured('hold')}) / 1e6 AS hold_p99_ms
  FROM ${T.episodes}
  WHERE $__timeFilter(time)
    AND kernel_release IN (\${baseline:singlequote}, \${candidate:singlequote})
    AND ${inVar('driver', 'driver')}
  GROUP BY kernel_release
) AS e
LEFT JOIN (
  SELECT kernel_release, countIf(toString(kind) = 'FAULT_WHILE_REVOKED' AND NOT inconclusive) AS faults_while_revoked,
    countIf(toString(kind) = 'SKIPPED_ZAP' AND NOT inconclusive) AS skipped_zaps,
    countIf(toString(kind) = 'REDUNDANT_ZAP' AND NOT inconclusive) AS redundant_zaps,
    countIf(toString(kind) = 'SLOW_REVOKE' AND NOT inconclusive) AS slow_revokes, countIf(inconclusive) AS inconclusive_findings
  FROM ${T.findings} FINAL
  WHERE $__timeFilter(time)
    AND kernel_release IN (\${baseline:singlequote}, \${candidate:singlequote})
    AND ${inVar('driver', 'driver')}
  GROUP BY kernel_release
) AS f ON e.kernel_release = f.kernel_release
ORDER BY kernel_release = \${baseline:singlequote} DESC` }],
  links: [{ title: 'Fleet overview for this kernel', url: dashboardUrl(UID.fleet, { kernel: field('kernel_release') }) }],
  overrides: [
    ...['revoke_p50_ms', 'revoke_p99_ms', 'revoke_p99_9_ms', 'zap_ms_total', 'hold_p99_ms'].map((name) => ({ name, properties: { unit: 'ms', decimals: 3 } })),
    { name: 'zapped_share', properties: { unit: 'percentunit', decimals: 1 } },
    ...['skipped_zaps', 'faults_while_revoked'].map((name) => ({ name, properties: { 'custom.cellOptions': { type: 'color-background' },
      thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] } } })),
  ],
  options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
};

const rows: Row[] = [
  { title: 'A/B within trigger × driver strata (as revokescope compare)', panels: [overallLatency, overallRates, stratumLatency, stratumRates] },
  { title: 'Summary', panels: [comparison] },
  { title: 'Revoke latency', panels: pair(revokeLatency) },
  { title: 'BAR zaps', panels: pair(zapShare) },
  { title: 'memory_lock', panels: pair(holdTime) },
  { title: 'Findings', panels: pair(findingsPerEpisode) },
];

/** Kernel releases seen in the range, busiest first (baseline) or in reverse (candidate), so the two
 * defaults differ. */
const kernels = (order: 'ASC' | 'DESC'): string =>
  `SELECT kernel_release FROM ${T.latency} WHERE $__timeFilter(minute) GROUP BY kernel_release ORDER BY sum(episodes) ${order}, kernel_release ${order}`;

export const kernelRollout: DashboardSpec = {
  uid: UID.rollout,
  title: 'revokescope / Kernel rollout',
  description: 'Two kernel releases: compared within trigger × driver strata (as revokescope compare), then side by side: revoke latency, BAR zaps, memory_lock hold, findings.',
  tags: ['revokescope', 'vfio'],
  variables: [
    { type: 'datasource', name: 'datasource', label: 'ClickHouse' },
    { type: 'query', name: 'baseline', label: 'Baseline kernel', multi: false, includeAll: false, sort: 0, sql: kernels('DESC') },
    { type: 'query', name: 'candidate', label: 'Candidate kernel', multi: false, includeAll: false, sort: 0, sql: kernels('ASC') },
    { type: 'query', name: 'driver', label: 'Driver', multi: true, includeAll: true,
      sql: `SELECT DISTINCT driver FROM ${T.latency} WHERE $__timeFilter(minute) AND kernel_release IN (\${baseline:singlequote}, \${candidate:singlequote}) ORDER BY driver` },
    { type: 'custom', name: 'metric', label: 'A/B latency', values: ['revoke', 'hold'], current: 'revoke' },
    { type: 'custom', name: 'quantile', label: 'A/B quantile', values: ['0.5', '0.9', '0.99'], current: '0.99' },
  ],
  links: [{ title: 'Fleet overview', url: dashboardPath(UID.fleet) }],
  from: 'now-24h',
  rows,
};

