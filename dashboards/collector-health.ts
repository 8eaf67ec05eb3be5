// Collector health: whether the numbers on the other dashboards can be trusted. Event rates and losses per
// host (host_health counters are cumulative per host boot), which probe kinds attached where, hosts that
// went silent, the correlator's Kafka consumer lag and the messages it dead-lettered.
import { DLQ_TABLE } from '../services/transport/kafka/bookkeeping.js';
import { defaultSchemaOptions, HOST_CLOCK_NS } from '../services/store/schema.js';
import { dashboardPath, dashboardUrl, field, inVar, type DashboardSpec, type PanelSpec } from './builder.js';
import { CAPABILITIES, counterDeltas, T } from './sql.js';
import { UID } from './uids.js';

const hosts = inVar('hostname', 'host');
const inRange = `$__timeFilter(observed_at)\n      AND ${hosts}`;
/** The fleet correlator's DLQ counts (its own bookkeeping table, next to the store's schema). */
const dlqEvents = `${defaultSchemaOptions.database}.${DLQ_TABLE}`;
const series = { drawStyle: 'line', lineWidth: 1, fillOpacity: 10, showPoints: 'never', spanNulls: true };

/** Per host, the newest sample at or before the end of the range (one day back at most). */
const latestWindow = `observed_at <= $__toTime AND observed_at > $__toTime - INTERVAL 1 DAY\n  AND ${hosts}`;

const rates: PanelSpec[] = [
  {
    type: 'timeseries', title: 'Events/s per host', w: 12, h: 8, unit: 'short',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(observed_at) AS time, hostname, sum(d_events) / $__interval_s AS events_per_s
FROM (
  ${counterDeltas(['events'], inRange)}
)
GROUP BY time, hostname
ORDER BY time` }],
    custom: series,
    defaults: { displayName: '${__field.labels.hostname}' },
    options: { legend: { displayMode: 'table', placement: 'right', calcs: ['mean', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
  {
    type: 'timeseries', title: 'Dropped and lost events/s per host', w: 12, h: 8, unit: 'short',
    description: 'dropped: the collector\'s ring buffer overflowed (EventBatch.dropped); lost: dropped plus sequence gaps seen by the correlator.',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(observed_at) AS time, hostname,
  sum(d_dropped) / $__interval_s AS dropped_per_s, sum(d_lost) / $__interval_s AS lost_per_s
FROM (
  ${counterDeltas(['dropped', 'lost'], inRange)}
)
GROUP BY time, hostname
ORDER BY time` }],
    custom: series,
    defaults: { displayName: '${__field.labels.hostname} ${__field.name}' },
    options: { legend: { displayMode: 'table', placement: 'right', calcs: ['sum', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
  {
    type: 'timeseries', title: 'Kafka consumer lag per host', w: 12, h: 8, unit: 'short',
    description: 'Messages of the host\'s partition not yet consumed by the correlator (0 in embedded mode).',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(observed_at) AS time, hostname, max(lag) AS lag
FROM ${T.health} FINAL
WHERE $__timeFilter(observed_at)
  AND ${hosts}
GROUP BY time, hostname
ORDER BY time` }],
    custom: series,
    defaults: { displayName: '${__field.labels.hostname}' },
    options: { legend: { displayMode: 'table', placement: 'right', calcs: ['lastNotNull', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
  {
    type: 'timeseries', title: 'Loss ratio', w: 12, h: 8, unit: 'percentunit', min: 0,
    description: 'lost / (events + lost) over the fleet: the share of kernel events the correlator never saw.',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(observed_at) AS time, sum(d_lost) / greatest(sum(d_events) + sum(d_lost), 1) AS loss_ratio
FROM (
  ${counterDeltas(['events', 'lost'], inRange)}
)
GROUP BY time
ORDER BY time` }],
    custom: series,
    options: { legend: { displayMode: 'hidden', placement: 'bottom', calcs: [] }, tooltip: { mode: 'single', sort: 'none' } },
  },
  {
    type: 'timeseries', title: 'DLQ rate', w: 24, h: 8, unit: 'short', min: 0,
    description: 'Messages/s the fleet correlator sent to the dead-letter topic, by reason (counted per minute; empty in embedded mode).',
    queries: [{ format: 'time_series', sql: `SELECT $__timeInterval(d.time) AS time, reason, sum(count) / $__interval_s AS per_s
FROM ${dlqEvents} AS d
WHERE $__timeFilter(d.time)
GROUP BY time, reason
ORDER BY time` }],
    custom: series,
    defaults: { displayName: '${__field.labels.reason}' },
    options: { legend: { displayMode: 'table', placement: 'right', calcs: ['sum', 'max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
];

// The first and last sample that reported each newest host clock (the collector's heartbeat clock now_ns, or the
// newest event ts from collectors that do not send it): when it stops advancing, the host is silent.
const silentSql = `SELECT hostname, kernel_release, last_sample, last_alive,
  dateDiff('second', last_alive, $__toTime) AS silent_for_s,
  silent_for_s > \${silent_after} AS silent, heartbeats
FROM (
  SELECT hostname,
    argMax(kernel, (last_at, clock)) AS kernel_release,
    max(last_at) AS last_sample,
    argMax(first_at, (last_at, clock)) AS last_alive,
    max(clock_is_now) AS heartbeats
  FROM (
    SELECT hostname, boot_id, ${HOST_CLOCK_NS} AS clock, any(kernel_release) AS kernel, max(now_ns > 0) AS clock_is_now,
      min(observed_at) AS first_at, max(observed_at) AS last_at
    FROM ${T.health} FINAL
    WHERE ${latestWindow}
    GROUP BY hostname, boot_id, clock
  )
  GROUP BY hostname
)`;

const status: PanelSpec[] = [
  {
    type: 'stat', title: 'Silent hosts', w: 6, h: 8, unit: 'short',
    description: 'Hosts whose clock has not advanced for longer than $silent_after s: collectors send a heartbeat batch (EventBatch.now_ns) ' +
      'at least once a second, so an idle host stays alive; for collectors without heartbeats the newest event ts is the clock.',
    queries: [{ format: 'table', sql: `SELECT countIf(silent) AS silent_hosts, count() AS hosts
FROM (
${silentSql}
)` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'background', graphMode: 'none', textMode: 'value_and_name' },
    defaults: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: 1 }] } },
    overrides: [{ name: 'hosts', properties: { color: { mode: 'fixed', fixedColor: 'text' } } }],
  },
  {
    type: 'table', title: 'Hosts by silence', w: 18, h: 8,
    queries: [{ format: 'table', columns: ['hostname', 'silent_for_s', 'silent'], sql: `${silentSql}
ORDER BY silent DESC, silent_for_s DESC, hostname` }],
    links: [{ title: 'Device drill-down', url: dashboardUrl(UID.device, { host: field('hostname') }) }],
    overrides: [
      { name: 'silent_for_s', properties: { unit: 's' } },
      { name: 'silent', properties: { 'custom.cellOptions': { type: 'color-background' }, mappings: [{ type: 'value', options: {
        true: { color: 'red', index: 0, text: 'silent' }, false: { color: 'green', index: 1, text: 'ok' } } }] } },
    ],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'table', title: 'Episodes not fully observed', w: 24, h: 8,
    description: 'Per host: episodes that began before observation (the collector started inside a memory_lock window: no wait, ' +
      'hold or revoke time) and episodes loss touched (incomplete: their findings are inconclusive). Neither counts in the latency panels.',
    queries: [{ format: 'table', columns: ['hostname', 'episodes', 'began_before_observation', 'incomplete'], sql: `SELECT hostname,
  count() AS episodes, countIf(acquire_ts_ns = 0) AS began_before_observation, countIf(NOT complete) AS incomplete,
  countIf(NOT complete) / count() AS incomplete_share
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${hosts}
GROUP BY hostname
ORDER BY incomplete_share DESC, hostname` }],
    links: [{ title: 'Device drill-down', url: dashboardUrl(UID.device, { host: field('hostname') }) }],
    overrides: [{ name: 'incomplete_share', properties: { unit: 'percentunit', decimals: 1 } }],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'table', title: 'Capability matrix', w: 24, h: 10,
    description: 'Probe kinds attached on each host (newest sample): which kernel functions this kernel has decides what can be observed.',
    queries: [{ format: 'table', columns: ['hostname', ...CAPABILITIES], sql: `SELECT hostname, kernel_release, collector_version,
  ${CAPABILITIES.map((c) => `has(caps, '${c}') AS ${c}`).join(', ')}
FROM (
  SELECT hostname,
    argMax(kernel_release, observed_at) AS kernel_release,
    argMax(collector_version, observed_at) AS collector_version,
    arrayMap(c -> toString(c), argMax(capabilities, observed_at)) AS caps
  FROM ${T.health} FINAL
  WHERE ${latestWindow}
  GROUP BY hostname
)
ORDER BY hostname` }],
    overrides: CAPABILITIES.map((name) => ({ name, properties: {
      'custom.cellOptions': { type: 'color-background' }, 'custom.align': 'center', 'custom.width': 110,
      mappings: [{ type: 'value', options: { 1: { color: 'green', index: 0, text: 'yes' }, 0: { color: 'red', index: 1, text: 'no' },
        true: { color: 'green', index: 2, text: 'yes' }, false: { color: 'red', index: 3, text: 'no' } } }],
    } })),
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
];

export const collectorHealth: DashboardSpec = {
  uid: UID.collectors,
  title: 'revokescope / Collector health',
  description: 'Collector event rates and losses, probe capabilities per host, silent hosts, Kafka lag, DLQ rate.',
  tags: ['revokescope', 'vfio'],
  variables: [
    { type: 'datasource', name: 'datasource', label: 'ClickHouse' },
    { type: 'query', name: 'host', label: 'Host', multi: true, includeAll: true,
      sql: `SELECT DISTINCT hostname FROM ${T.health} WHERE $__timeFilter(observed_at) ORDER BY hostname` },
    { type: 'custom', name: 'silent_after', label: 'Silent after (s)', values: ['60', '300', '900', '3600'], current: '300' },
  ],
  links: [{ title: 'Fleet overview', url: dashboardPath(UID.fleet) }],
  rows: [
    { title: 'Status', panels: status },
    { title: 'Rates', panels: rates },
  ],
};

