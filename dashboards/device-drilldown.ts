// Device drill-down: one vfio device of one host. Its lock episodes, the lock → revoke → zap → unrevoke →
// unlock sequence in time, what is mapped from its BARs (and how: DMABUF, legacy, custom vm_ops), and the
// findings with the evidence the correlator recorded.
import { apiVariable, dashboardPath, eqVar, explainLink, inVar, type DashboardSpec, type PanelSpec } from './builder.js';
import { measured, T } from './sql.js';
import { UID } from './uids.js';

/** Values of `column` seen in the range, those with critical findings first, then by number of findings. */
function worstFirst(column: string, where: string): string {
  return `SELECT ${column} FROM (
  SELECT ${column}, 0 AS critical, 0 AS n FROM ${T.episodes} WHERE $__timeFilter(time) AND ${where} GROUP BY ${column}
  UNION ALL
  SELECT ${column}, countIf(toString(severity) = 'CRITICAL') AS critical, count() AS n FROM ${T.findings} WHERE $__timeFilter(time) AND ${where} GROUP BY ${column}
) GROUP BY ${column} ORDER BY sum(critical) DESC, sum(n) DESC, ${column}`;
}

const device = `${eqVar('hostname', 'host')}\n  AND ${eqVar('device', 'device')}`;
/** The workload an episode's acquiring task ran in (issue 17): the pod by its name where the collector read it. */
const POD = "if(pod_name != '', pod_name, pod_uid)";
/** Episodes of the selected VMs, pods and task names (each variable's All: no condition, episodes of no VM too). */
const workload = [inVar('vm', 'vm'), inVar(POD, 'pod'), inVar('comm', 'comm')].join('\n  AND ');
/** Findings through their episode, one variable at a time (All: no condition, findings without an episode too); a
 * finding outside an episode (LOCK_NOT_HELD, FAULT_WHILE_REVOKED) names its task in its evidence (comm). */
const findingWorkload = ([['vm', 'vm'], [POD, 'pod'], ['comm', 'comm']] as const).map(([column, v]) => {
  const byEpisode = `episode_id IN (SELECT episode_id FROM ${T.episodes} WHERE ${device} AND ${column} IN (\${${v}:singlequote}))`;
  return `$__conditionalAll(${v === 'comm' ? `(${byEpisode} OR JSONExtractString(evidence, 'comm') IN (\${comm:singlequote}))` : byEpisode}, $${v})`;
}).join('\n  AND ');
/** A workload variable: the values seen on this device's episodes in the range. */
const workloadVariable = (name: string, label: string, column: string) => ({ type: 'query' as const, name, label, multi: true, includeAll: true, sort: 1 as const,
  optional: true,
  sql: `SELECT DISTINCT ${column} FROM ${T.episodes} WHERE $__timeFilter(time) AND ${device} AND ${column} != '' ORDER BY 1` });
const msCols = ['lock_wait_ms', 'hold_ms', 'revoke_ms', 'zap_ms', 'dmabuf_revoke_ms', 'move_ms'];
/** ns → ms where the episode measured it (NULL otherwise: an episode that began before observation has no wait,
 * hold or revoke time; loss inside an episode makes its sums lower bounds). */
const msIf = (column: string, metric: Parameters<typeof measured>[0], alias: string): string =>
  `if(${measured(metric)}, ${column} / 1e6, NULL) AS ${alias}`;

const stats: PanelSpec[] = [
  {
    type: 'stat', title: 'Episodes / revoke episodes', w: 6, h: 4, unit: 'short',
    queries: [{ format: 'table', sql: `SELECT count() AS episodes, countIf(revoke) AS revoke_episodes
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${device}
  AND ${workload}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'none', graphMode: 'none', textMode: 'value_and_name' },
  },
  {
    type: 'stat', title: 'Revoke latency max', w: 6, h: 4, unit: 'ms', decimals: 3,
    description: 'Of the complete revoke episodes whose acquire was seen.',
    queries: [{ format: 'table', sql: `SELECT max(revoke_ns) / 1e6 AS revoke_max_ms
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${measured('revoke')}
  AND ${device}
  AND ${workload}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none' },
    defaults: { thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'orange', value: 10 }, { color: 'red', value: 50 }] } },
  },
  {
    type: 'stat', title: 'Findings by severity', w: 12, h: 4, unit: 'short',
    queries: [{ format: 'table', sql: `SELECT countIf(toString(severity) = 'CRITICAL') AS critical, countIf(toString(severity) = 'WARNING') AS warning,
  countIf(toString(severity) = 'INFO') AS info, countIf(inconclusive) AS inconclusive
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${device}
  AND ${findingWorkload}` }],
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'none', textMode: 'value_and_name' },
    overrides: [{ name: 'critical', properties: { color: { mode: 'fixed', fixedColor: 'red' } } },
      { name: 'warning', properties: { color: { mode: 'fixed', fixedColor: 'orange' } } }],
  },
];

const timeline: PanelSpec[] = [
  {
    type: 'state-timeline', title: 'memory_lock, revoke, zap, unrevoke', w: 24, h: 6,
    description: 'Each kernel step as it happened: the trigger, down_write, vfio_pci_dma_buf_move(revoked), unmap_mapping_range, ' +
      'vfio_pci_set_power_state, pci_try_reset_function, the unrevoke, up_write, the trigger\'s return.',
    queries: [{ format: 'table', columns: ['time', 'step'], sql: `SELECT time,
  multiIf(toString(kind) = 'lockAcquire', 'locked',
          toString(kind) = 'lockRelease', 'unlocked',
          toString(kind) = 'zap', if(toString(zap_target) = 'DMABUF', 'zap (dmabuf)', 'zap (device)'),
          toString(kind) = 'dmabufRevoke' AND revoked, 'revoked',
          toString(kind) = 'dmabufRevoke', 'unrevoked',
          toString(kind) = 'moveNotify', 'move_notify',
          toString(kind) = 'triggerEnd', concat('end ', toString(trigger), if(ret < 0, ' (failed)', '')),
          toString(kind) = 'resetFunction', if(ret < 0, 'reset (failed)', 'reset'),
          toString(kind) = 'powerTransition', concat('D', toString(power_from), ' → D', toString(power_to)),
          concat('trigger ', toString(trigger))) AS step
FROM ${T.events}
WHERE $__timeFilter(time)
  AND ${device}
  AND toString(kind) IN ('lockAcquire', 'lockRelease', 'zap', 'dmabufRevoke', 'moveNotify', 'trigger', 'triggerEnd', 'resetFunction',
    'powerTransition')
ORDER BY time, seq
LIMIT 5000` }],
    options: { mergeValues: false, showValue: 'never', alignValue: 'left', rowHeight: 0.8, legend: { displayMode: 'list', placement: 'bottom', showLegend: true },
      tooltip: { mode: 'single', sort: 'none' } },
    defaults: { color: { mode: 'palette-classic' } },
  },
  {
    type: 'timeseries', title: 'Per episode: revoke latency, zap time, lock hold', w: 12, h: 8, unit: 'ms',
    description: 'Measured episodes only (complete, acquire seen).',
    queries: [{ format: 'time_series', sql: `SELECT time, ${msIf('revoke_ns', 'revoke', 'revoke_ms')}, ${msIf('zap_ns', 'zap', 'zap_ms')},
  ${msIf('hold_ns', 'hold', 'hold_ms')}
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${device}
  AND ${workload}
ORDER BY time
LIMIT 10000` }],
    custom: { drawStyle: 'points', pointSize: 4, showPoints: 'always', scaleDistribution: { type: 'log', log: 10 } },
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: ['max'] }, tooltip: { mode: 'multi', sort: 'desc' } },
  },
  {
    type: 'timeseries', title: 'BAR mappings at lock acquire', w: 12, h: 8, unit: 'short',
    description: 'legacy: through the device fd (need a zap); dmabuf: DMABUF-backed (revoked through the DMABUF).',
    queries: [{ format: 'time_series', sql: `SELECT time, legacy_mappings, dmabuf_mappings
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${device}
  AND ${workload}
ORDER BY time
LIMIT 10000` }],
    custom: { drawStyle: 'line', lineInterpolation: 'stepAfter', fillOpacity: 10, showPoints: 'never' },
    options: { legend: { displayMode: 'list', placement: 'bottom', calcs: ['lastNotNull'] }, tooltip: { mode: 'multi', sort: 'none' } },
  },
];

const tables: PanelSpec[] = [
  {
    type: 'table', title: 'Mapping inventory by backing', w: 12, h: 8,
    description: 'BAR mappings of the newest boot still live at the end of the range (mmap or snapshot without munmap).',
    queries: [{ format: 'table', columns: ['backing', 'bar', 'live_mappings'], sql: `SELECT toString(backing) AS backing, bar, count() AS live_mappings, countIf(snapshot) AS from_snapshot,
  countIf(faulted) AS faulted, sum(map_length) AS bytes
FROM (
  SELECT mapping_id,
    argMaxIf(backing, seq, toString(kind) = 'barMmap') AS backing, argMaxIf(bar, seq, toString(kind) = 'barMmap') AS bar,
    argMaxIf(map_length, seq, toString(kind) = 'barMmap') AS map_length, maxIf(snapshot, toString(kind) = 'barMmap') AS snapshot,
    maxIf(seq, toString(kind) = 'barMmap') AS mapped, maxIf(seq, toString(kind) = 'barMunmap') AS unmapped,
    maxIf(seq, toString(kind) = 'barFault' AND ok) > mapped AS faulted
  FROM ${T.events}
  WHERE time <= $__toTime
    AND ${device}
    AND toString(kind) IN ('barMmap', 'barMunmap', 'barFault')
    AND boot_id = (SELECT argMax(boot_id, time) FROM ${T.events} WHERE time <= $__toTime AND ${eqVar('hostname', 'host')})
  GROUP BY mapping_id
  HAVING mapped > 0 AND unmapped < mapped
)
GROUP BY backing, bar
ORDER BY backing, bar` }],
    overrides: [{ name: 'bytes', properties: { unit: 'bytes' } }],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: true, reducer: ['sum'], countRows: false, fields: ['live_mappings'] } },
  },
  {
    type: 'table', title: 'Findings with evidence', w: 12, h: 8,
    description: 'evidence: the rule (evidence.rule), the kernel function it mirrors, the facts; an inconclusive finding says which state was unknown. ' +
      'Explain this finding (a row\'s link): its timeline, the state the rule judged and what to check next, from the API ($api).',
    queries: [{ format: 'table', columns: ['time', 'kind', 'severity', 'rule', 'evidence', 'finding_id'], sql: `SELECT time, toString(kind) AS kind, toString(severity) AS severity, inconclusive,
  JSONExtractString(evidence, 'rule') AS rule, evidence, episode_id, finding_id
FROM ${T.findings} FINAL
WHERE $__timeFilter(time)
  AND ${device}
  AND ${findingWorkload}
ORDER BY time DESC
LIMIT 500` }],
    overrides: [
      { name: 'severity', properties: { 'custom.cellOptions': { type: 'color-text' }, mappings: [{ type: 'value', options: {
        CRITICAL: { color: 'red', index: 0 }, WARNING: { color: 'orange', index: 1 }, INFO: { color: 'blue', index: 2 } } }] } },
      { name: 'evidence', properties: { 'custom.cellOptions': { type: 'json-view' }, 'custom.width': 420 } },
    ],
    links: [explainLink],
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
  {
    type: 'table', title: 'Episodes', w: 24, h: 10,
    description: 'comm/pid: the task that took memory_lock; vm/pod: the VM or pod it ran in (from its cgroup); trigger_ret < 0: its ioctl or ' +
      'config write failed; began_before_observation: the collector started inside the lock window (no wait, hold or revoke time). ' +
      'Times are empty where not measured.',
    queries: [{ format: 'table', columns: ['time', 'trigger', 'comm', 'pid', 'vm', 'pod', ...msCols, 'episode_id'], sql: `SELECT time, toString(trigger) AS trigger,
  trigger_ret, comm, pid, vm, ${POD} AS pod, revoke, complete, toBool(acquire_ts_ns = 0) AS began_before_observation,
  ${msIf('lock_wait_ns', 'wait', 'lock_wait_ms')}, ${msIf('hold_ns', 'hold', 'hold_ms')}, ${msIf('revoke_ns', 'revoke', 'revoke_ms')},
  ${msIf('zap_ns', 'zap', 'zap_ms')}, if(complete, dmabuf_revoke_ns / 1e6, NULL) AS dmabuf_revoke_ms, ${msIf('move_ns', 'move', 'move_ms')},
  zap_count, intended_empty_zaps, stale_triggers, dmabuf_count, importer_count, legacy_mappings, dmabuf_mappings, group_id, episode_id
FROM ${T.episodes}
WHERE $__timeFilter(time)
  AND ${device}
  AND ${workload}
ORDER BY time DESC
LIMIT 1000` }],
    overrides: msCols.map((name) => ({ name, properties: { unit: 'ms', decimals: 3 } })),
    options: { showHeader: true, cellHeight: 'sm', footer: { show: false, reducer: ['sum'], countRows: false, fields: '' } },
  },
];

export const deviceDrilldown: DashboardSpec = {
  uid: UID.device,
  title: 'revokescope / Device drill-down',
  description: 'One vfio device: episodes, revoke sequence, BAR mapping inventory, findings with evidence; filtered by the VM, pod or task that took the lock.',
  tags: ['revokescope', 'vfio'],
  variables: [
    { type: 'datasource', name: 'datasource', label: 'ClickHouse' },
    // worst first (the default is the first option): critical findings, then any findings
    { type: 'query', name: 'host', label: 'Host', multi: false, includeAll: false, sort: 0, sql: worstFirst('hostname', '1') },
    { type: 'query', name: 'device', label: 'Device', multi: false, includeAll: false, sort: 0, sql: worstFirst('device', eqVar('hostname', 'host')) },
    apiVariable,
    // who took the lock (issue 17): episodes and findings of some VMs, pods or task names only
    workloadVariable('vm', 'VM', 'vm'), workloadVariable('pod', 'Pod', POD),
    // tasks: those that took the lock, and those a finding outside an episode names
    { ...workloadVariable('comm', 'Task', 'comm'), sql: `SELECT DISTINCT c FROM (
  SELECT comm AS c FROM ${T.episodes} WHERE $__timeFilter(time) AND ${device}
  UNION ALL
  SELECT JSONExtractString(evidence, 'comm') AS c FROM ${T.findings} WHERE $__timeFilter(time) AND ${device} AND episode_id = ''
) WHERE c != '' ORDER BY 1` },
  ],
  links: [
    { title: 'Fleet overview', url: dashboardPath(UID.fleet, { host: '${host}' }) },
    { title: 'Collector health of this host', url: dashboardPath(UID.collectors, { host: '${host}' }) },
  ],
  from: 'now-24h',
  rows: [
    { title: 'Summary', panels: stats },
    { title: 'Timeline', panels: timeline },
    { title: 'Mappings, findings, episodes', panels: tables },
  ],
};

