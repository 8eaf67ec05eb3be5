// Fleet overview: how fast the fleet revokes BAR access, where zaps are skipped (security) or redundant
// (cost under the write lock), and how much of it is uncertain.
import {
  apiVariable, dashboardPath, dashboardUrl, explainLink, field, inVar, redIfPositive, type DashboardSpec, type PanelSpec,
} from './builder.js';
import { latencyBuckets, measured, merged, ms, T } from './sql.js';
import { UID } from './uids.js';

/** Filters every fleet query applies (kernel, driver, host variables). */
const filters = [inVar('kernel_release', 'kernel'), inVar('driver', 'driver'), inVar('hostname', 'host')].join('\n  AND ');

const deviceLink = {
  title: 'Device drill-down',
  url: dashboardUrl(UID.device, { host: field('hostname'), device: field('device') }),
};

const msSeries = { drawStyle: 'line', lineWidth: 1, fillOpacity: 0, showPoints: 'never', spanNulls: false };

const stats: PanelSpec[] = [
  {
    type: 'stat', title: 'Revoke episodes', w: 5, h: 4, unit: 'short',
    description: 'Lock episodes that revoked BAR access (a zap, a DMABUF revoke or a revoking trigger).',
    queries: [{ format: 'table', sql: `SELECT sum(revoke_episodes) AS revoke_episodes
FROM ${T.latency}
WHERE $__timeFilter(minute)
  AND ${filters}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'none', graphMode: 'none' },
  },
  {
    type: 'stat', title: 'Revoke latency p99', w: 5, h: 4, unit: 'ms', decimals: 3,
    description: 'From taking memory_lock for write until the last zap or DMABUF revoke ended (complete episodes whose acquire was seen).',
    queries: [{ format: 'table', sql: `SELECT ${ms('q', 0.99, 'revoke_p99')}
FROM (
  SELECT ${merged('revoke', 'q')}
  FROM ${T.latency}
  WHERE $__timeFilter(minute)
    AND ${filters}
)` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none' },
    defaults: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 10 }, { color: 'red', value: 50 }] } },
  },
  {
    type: 'stat', title: 'Critical findings', w: 5, h: 4, unit: 'short',
    description: 'Certain CRITICAL findings (the ones that page): FAULT_WHILE_REVOKED, SKIPPED_ZAP with populated PTEs, LOCK_NOT_HELD. ' +
      'Inconclusive ones are counted in the inconclusive share.',
    queries: [{ format: 'table', sql: `SELECT count() AS critical
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(severity) = 'CRITICAL'
  AND NOT inconclusive
  AND ${filters}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none' },
    defaults: { thresholds: redIfPositive },
  },
  {
    type: 'stat', title: 'Faults while revoked', w: 4, h: 4, unit: 'short',
    description: 'Certain FAULT_WHILE_REVOKED: a BAR fault installed PTEs while memory was disabled or the DMABUF revoked, the hazard the revoke protocol exists to prevent.',
    queries: [{ format: 'table', sql: `SELECT count() AS faults_while_revoked
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(kind) = 'FAULT_WHILE_REVOKED'
  AND NOT inconclusive
  AND ${filters}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none' },
    defaults: { thresholds: redIfPositive },
  },
  {
    type: 'stat', title: 'Inconclusive findings', w: 5, h: 4, unit: 'percentunit', decimals: 1,
    description: 'Share of findings emitted with inconclusive=true: their premise rests on device state the collector could not know ' +
      '(started inside a lock window, loss, a fact its probes cannot read; evidence.unknown says which). They never page.',
    queries: [{ format: 'table', sql: `SELECT if(count() = 0, 0, countIf(inconclusive) / count()) AS inconclusive_share
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${filters}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none' },
    defaults: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 0.05 }, { color: 'red', value: 0.2 }] } },
  },
];

const latency: PanelSpec[] = [
  {
    type: 'timeseries', title: 'Revoke latency p50 / p99 / p99.9 by kernel and driver', w: 24, h: 9, unit: 'ms',
    description: 'Per-minute t-digest rollup (episode_latency_1m), merged per interval.',
    queries: [{ format: 'time_series', sql: `SELECT time, kernel_release, driver,
  ${ms('q', 0.5, 'p50')}, ${ms('q', 0.99, 'p99')}, ${ms('q', 0.999, 'p99_9')}
FROM (
  SELECT $__timeInterval(minute) AS time, kernel_release, driver, ${merged('revoke', 'q')}
  FROM ${T.latency}
  WHERE $__timeFilter(minute)
    AND ${filters}
  GROUP BY time, kernel_release, driver
  HAVING sum(revoke_episodes) > 0
)
ORDER BY time` }],
    custom: { ...msSeries, scaleDistribution: { type: 'log', log: 10 } },
    defaults: { displayName: '${__field.labels.kernel_release} ${__field.labels.driver} ${__field.name}' },
    options: { legend: { displayMode: 'table', placement: 'right', calcs: ['mean', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
  {
    type: 'heatmap', title: 'Revoke latency distribution', w: 12, h: 9, unit: 'short',
    description: 'Revoke episodes per latency bucket (upper bound in ms); measured ones only, as in the rollup.',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(time) AS time,
  ${latencyBuckets('revoke_ns')}
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${measured('revoke')}
  AND ${filters}
GROUP BY time
ORDER BY time` }],
    options: {
      calculate: false, cellGap: 1,
      color: { exponent: 0.5, fill: 'dark-orange', mode: 'scheme', reverse: false, scale: 'exponential', scheme: 'Oranges', steps: 64 },
      filterValues: { le: 1e-9 }, legend: { show: true }, rowsFrame: { layout: 'le', value: 'episodes' },
      tooltip: { mode: 'single', showColorScale: false, yHistogram: true }, yAxis: { axisPlacement: 'left', unit: 'ms', reverse: false },
      cellValues: { unit: 'short' },
    },
  },
  {
    type: 'timeseries', title: 'memory_lock hold and wait time', w: 12, h: 9, unit: 'ms',
    description: 'hold: up_write − down_write; wait: time blocked in down_write (lock:contention_begin/end). Faults and config accesses of the device stall while it is held.',
    queries: [{ format: 'time_series', sql: `SELECT time,
  ${ms('h', 0.5, 'hold_p50')}, ${ms('h', 0.99, 'hold_p99')},
  ${ms('w', 0.5, 'wait_p50')}, ${ms('w', 0.99, 'wait_p99')}
FROM (
  SELECT $__timeInterval(minute) AS time, ${merged('hold', 'h')}, ${merged('wait', 'w')}
  FROM ${T.latency}
  WHERE $__timeFilter(minute)
    AND ${filters}
  GROUP BY time
)
ORDER BY time` }],
    custom: msSeries,
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: [] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
];

const findings: PanelSpec[] = [
  {
    type: 'timeseries', title: 'Findings by kind and severity', w: 16, h: 9, unit: 'short',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(time) AS time,
  concat(toString(kind), ' ', toString(severity)) AS finding,
  count() AS findings
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${filters}
GROUP BY time, finding
ORDER BY time` }],
    custom: { drawStyle: 'bars', fillOpacity: 80, lineWidth: 1, stacking: { group: 'A', mode: 'normal' }, showPoints: 'never' },
    defaults: { displayName: '${__field.labels.finding}' },
    options: { legend: { displayMode: 'list', placement: 'right', calcs: ['sum'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
  {
    type: 'timeseries', title: 'Share of inconclusive findings', w: 8, h: 9, unit: 'percentunit', min: 0, max: 1,
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(time) AS time,
  countIf(inconclusive) / count() AS inconclusive_share
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${filters}
GROUP BY time
ORDER BY time` }],
    custom: { drawStyle: 'line', fillOpacity: 20, lineWidth: 1, showPoints: 'auto' },
    options: { legend: { displayMode: 'hidden', placement: 'bottom', calcs: [] }, tooltip: { mode: 'single', sort: 'none' } },
  },
  {
    type: 'bargauge', title: 'Inconclusive share by kind', w: 12, h: 8, unit: 'percentunit', decimals: 1, min: 0, max: 1,
    description: 'Per finding kind: the share emitted inconclusive (visible here and in the API, never paging).',
    queries: [{ format: 'table', columns: ['kind', 'inconclusive_share'], sql: `SELECT toString(kind) AS kind,
  countIf(inconclusive) / count() AS inconclusive_share, countIf(inconclusive) AS inconclusive_findings, count() AS findings
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${filters}
GROUP BY kind
ORDER BY inconclusive_share DESC, kind` }],
    defaults: { color: { mode: 'continuous-GrYlRd' } },
    options: { displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true, valueMode: 'color',
      reduceOptions: { calcs: [], fields: '/^inconclusive_share$/', values: true }, namePlacement: 'left' },
  },
  {
    type: 'table', title: 'Inconclusive share by host', w: 12, h: 8,
    description: 'Per host: findings, how many are inconclusive, and the most common reason (evidence.unknown) among them.',
    queries: [{ format: 'table', columns: ['hostname', 'findings', 'inconclusive_findings', 'inconclusive_share'], sql: `SELECT hostname,
  count() AS findings, countIf(inconclusive) AS inconclusive_findings, countIf(inconclusive) / count() AS inconclusive_share,
  topKIf(1)(JSONExtractString(evidence, 'unknown', 1) AS unknown, inconclusive AND unknown != '')[1] AS top_unknown
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${filters}
GROUP BY hostname
ORDER BY inconclusive_share DESC, inconclusive_findings DESC, hostname
LIMIT 50` }],
    links: [{ title: 'Collector health of this host', url: dashboardUrl(UID.collectors, { host: field('hostname') }) }],
    overrides: [{ name: 'inconclusive_share', properties: { unit: 'percentunit', decimals: 1, 'custom.cellOptions': { type: 'gauge', mode: 'basic' } } }],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'table', title: 'Devices with critical findings', w: 24, h: 8,
    description: 'Devices with CRITICAL findings by kind, certain ones (which page) apart from inconclusive ones.',
    queries: [{ format: 'table', columns: ['hostname', 'device', 'faults_while_revoked', 'certain', 'last_seen'], sql: `SELECT hostname, device, driver, kernel_release,
  countIf(NOT inconclusive) AS certain, countIf(inconclusive) AS inconclusive_findings,
  countIf(toString(kind) = 'FAULT_WHILE_REVOKED' AND NOT inconclusive) AS faults_while_revoked,
  countIf(toString(kind) = 'SKIPPED_ZAP' AND NOT inconclusive) AS skipped_zaps,
  countIf(toString(kind) = 'LOCK_NOT_HELD' AND NOT inconclusive) AS lock_not_held,
  max(time) AS last_seen
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(severity) = 'CRITICAL'
  AND ${filters}
GROUP BY hostname, device, driver, kernel_release
ORDER BY faults_while_revoked DESC, certain DESC, hostname, device
LIMIT 20` }],
    links: [deviceLink],
    overrides: ['faults_while_revoked', 'certain'].map((name) => ({ name, properties: { 'custom.cellOptions': { type: 'color-background' }, thresholds: redIfPositive } })),
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'table', title: 'Devices with skipped zaps', w: 12, h: 10,
    description: 'SKIPPED_ZAP: a revoke left a non-DMABUF BAR mapping that no zap covered.',
    queries: [{ format: 'table', columns: ['hostname', 'device', 'skipped_zaps', 'critical', 'last_seen'], sql: `SELECT hostname, device, driver, kernel_release,
  count() AS skipped_zaps, countIf(toString(severity) = 'CRITICAL') AS critical, countIf(inconclusive) AS inconclusive,
  max(time) AS last_seen
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(kind) = 'SKIPPED_ZAP'
  AND ${filters}
GROUP BY hostname, device, driver, kernel_release
ORDER BY critical DESC, skipped_zaps DESC, hostname, device
LIMIT 20` }],
    links: [deviceLink],
    overrides: [{ name: 'critical', properties: { 'custom.cellOptions': { type: 'color-background' }, thresholds: redIfPositive } }],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'table', title: 'Devices by wasted zap time', w: 12, h: 10,
    description: 'REDUNDANT_ZAP: unmap_mapping_range walked a mapping tree with nothing to zap, under the write lock.',
    queries: [{ format: 'table', columns: ['hostname', 'device', 'wasted_ms'], sql: `SELECT hostname, device, driver, kernel_release,
  count() AS redundant_zaps,
  sum(JSONExtractUInt(evidence, 'wastedNs')) / 1e6 AS wasted_ms,
  max(time) AS last_seen
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(kind) = 'REDUNDANT_ZAP'
  AND ${filters}
GROUP BY hostname, device, driver, kernel_release
ORDER BY wasted_ms DESC, hostname, device
LIMIT 20` }],
    links: [deviceLink],
    overrides: [{ name: 'wasted_ms', properties: { unit: 'ms', decimals: 3, 'custom.cellOptions': { type: 'gauge', mode: 'basic' } } }],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'bargauge', title: 'Hosts by skipped zaps', w: 12, h: 8, unit: 'short',
    queries: [{ format: 'table', columns: ['hostname', 'skipped_zaps'], sql: `SELECT hostname, count() AS skipped_zaps
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(kind) = 'SKIPPED_ZAP'
  AND ${filters}
GROUP BY hostname
ORDER BY skipped_zaps DESC, hostname
LIMIT 15` }],
    defaults: { thresholds: redIfPositive, color: { mode: 'thresholds' } },
    options: { displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true, valueMode: 'color',
      reduceOptions: { calcs: [], fields: '/^skipped_zaps$/', values: true }, namePlacement: 'left' },
  },
  {
    type: 'bargauge', title: 'Hosts by wasted zap time', w: 12, h: 8, unit: 'ms', decimals: 3,
    queries: [{ format: 'table', columns: ['hostname', 'wasted_ms'], sql: `SELECT hostname, sum(JSONExtractUInt(evidence, 'wastedNs')) / 1e6 AS wasted_ms
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND toString(kind) = 'REDUNDANT_ZAP'
  AND ${filters}
GROUP BY hostname
ORDER BY wasted_ms DESC, hostname
LIMIT 15` }],
    defaults: { color: { mode: 'continuous-YlRd' } },
    options: { displayMode: 'gradient', orientation: 'horizontal', showUnfilled: true, valueMode: 'color',
      reduceOptions: { calcs: [], fields: '/^wasted_ms$/', values: true }, namePlacement: 'left' },
  },
];

/** The certain CRITICAL and WARNING findings, newest first, each linked to its explanation (what `analyze` lists). */
const toActOn: PanelSpec = {
  type: 'table', title: 'Findings to act on', w: 24, h: 8,
  description: 'Certain CRITICAL and WARNING findings, newest first. A row\'s links: Explain this finding (its timeline, the device state the ' +
    'rule judged with the fact behind each piece, what to check next, from the API at $api) and the device drill-down.',
  queries: [{ format: 'table', columns: ['time', 'severity', 'kind', 'hostname', 'device', 'rule', 'finding_id'], sql: `SELECT time,
  toString(severity) AS severity, toString(kind) AS kind, hostname, device, driver, kernel_release,
  JSONExtractString(evidence, 'rule') AS rule, finding_id
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND NOT inconclusive AND toString(severity) IN ('CRITICAL', 'WARNING')
  AND ${filters}
ORDER BY time DESC, finding_id
LIMIT 200` }],
  links: [explainLink, deviceLink],
  overrides: [{ name: 'severity', properties: { 'custom.cellOptions': { type: 'color-text' }, mappings: [{ type: 'value', options: {
    CRITICAL: { color: 'red', index: 0 }, WARNING: { color: 'orange', index: 1 } } }] } }],
  options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
};

export const fleetOverview: DashboardSpec = {
  uid: UID.fleet,
  title: 'revokescope / Fleet overview',
  description: 'Revoke latency, faults while revoked, skipped and redundant BAR zaps, memory_lock hold time, inconclusive findings across the fleet.',
  tags: ['revokescope', 'vfio'],
  variables: [
    { type: 'datasource', name: 'datasource', label: 'ClickHouse' },
    { type: 'query', name: 'kernel', label: 'Kernel', multi: true, includeAll: true,
      sql: `SELECT DISTINCT kernel_release FROM ${T.latency} WHERE $__timeFilter(minute) ORDER BY kernel_release` },
    { type: 'query', name: 'driver', label: 'Driver', multi: true, includeAll: true,
      sql: `SELECT DISTINCT driver FROM ${T.latency} WHERE $__timeFilter(minute) AND ${inVar('kernel_release', 'kernel')} ORDER BY driver` },
    { type: 'query', name: 'host', label: 'Host', multi: true, includeAll: true,
      sql: `SELECT DISTINCT hostname FROM ${T.latency} WHERE $__timeFilter(minute) AND ${inVar('kernel_release', 'kernel')} AND ${inVar('driver', 'driver')} ORDER BY hostname` },
    apiVariable,
  ],
  links: [
    { title: 'Kernel rollout', url: dashboardPath(UID.rollout) },
    { title: 'Collector health', url: dashboardPath(UID.collectors) },
  ],
  rows: [
    { title: 'Summary', panels: stats },
    { title: 'Revoke latency and memory_lock', panels: latency },
    { title: 'Findings', panels: [toActOn, ...findings] },
  ],
};

