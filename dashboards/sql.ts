// Table names and SQL fragments shared by the dashboards. Names come from the store's schema, so a renamed
// table or rollup metric breaks generation here, and the query test catches renamed columns.
import { Capability } from '../services/core/model.js';
import { defaultSchemaOptions, LATENCY_METRICS, LATENCY_QUANTILES, quantileMerge, TABLES, type LatencyMetric } from '../services/store/schema.js';

const db = defaultSchemaOptions.database;
export const T = {
  events: `${db}.${TABLES.events}`,
  episodes: `${db}.${TABLES.episodes}`,
  latency: `${db}.${TABLES.latency}`,
  findings: `${db}.${TABLES.findings}`,
  health: `${db}.${TABLES.hostHealth}`,
} as const;

/** 1-based index of a level in the rollup's quantile arrays. */
function level(q: number): number {
  const i = LATENCY_QUANTILES.indexOf(q as (typeof LATENCY_QUANTILES)[number]);
  if (i < 0) throw new Error(`quantile ${q} is not kept by the rollup`);
  return i + 1;
}

/** The episodes a metric was measured in (as the rollups count them: no acquire seen, or loss inside the episode,
 * leaves it unmeasured), for queries over the raw episodes table. */
export const measured = (m: LatencyMetric): string => `(${LATENCY_METRICS[m].when})`;

/** The rollup's merged quantile array of a metric, as `alias`. */
export const merged = (m: LatencyMetric, alias: string): string => `${quantileMerge(m)} AS ${alias}`;

/** Element of a merged quantile array, ns → ms. */
export const ms = (array: string, q: number, alias: string): string => `${array}[${level(q)}] / 1e6 AS ${alias}`;

/** Capability names a collector can report (the enum without UNSPECIFIED). */
export const CAPABILITIES: string[] = Object.entries(Capability)
  .filter(([k, v]) => typeof v === 'number' && v !== 0 && k !== 'CAPABILITY_UNSPECIFIED').map(([k]) => k);

/** Upper bounds (ms) of the revoke latency heatmap's buckets: roughly 1-2.5-5 steps from 10 µs to 1 s. */
export const LATENCY_BUCKETS_MS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000];

/** One count column per bucket, named by its upper bound (the heatmap's `le` layout), plus +Inf. */
export function latencyBuckets(column: string): string {
  const cols: string[] = [];
  let prev = -1;
  for (const ub of LATENCY_BUCKETS_MS) {
    const ns = Math.round(ub * 1e6);
    cols.push(`countIf(${column} > ${prev < 0 ? 0 : prev} AND ${column} <= ${ns}) AS \`${ub}\``);
    prev = ns;
  }
  cols.push(`countIf(${column} > ${prev}) AS \`+Inf\``);
  return cols.join(',\n  ');
}

/** Per-sample increase of a cumulative host_health counter (counters restart with a new boot or a restarted
 * correlator: a decrease means a reset, and the new value is the increase). */
export function counterDeltas(columns: string[], where: string): string {
  const lagged = columns.map((c) =>
    `toInt64(${c}) - lagInFrame(toInt64(${c}), 1, toInt64(${c})) OVER w AS ${c}_step, toInt64(${c}) AS ${c}_now`).join(',\n      ');
  const deltas = columns.map((c) => `if(${c}_step < 0, ${c}_now, ${c}_step) AS d_${c}`).join(', ');
  return `SELECT observed_at, hostname, ${deltas}
  FROM (
    SELECT observed_at, hostname,
      ${lagged}
    FROM ${T.health} FINAL
    WHERE ${where}
    WINDOW w AS (PARTITION BY hostname, boot_id ORDER BY observed_at ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
  )`;
}
