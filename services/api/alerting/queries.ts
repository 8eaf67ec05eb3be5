// Every ClickHouse query of the alerting API in one module: the parameterised queries rules evaluate (store table names and columns from services/store/schema.ts).
// Values always travel as query parameters ({name:Type}); only identifiers that come from a fixed list
// (column names below, the configured database name, checked) are spliced into the text.
import type { ClickHouseClient } from '@clickhouse/client';
import { checkIdentifier, HOST_CLOCK_NS, LATENCY_METRICS, quantileMerge, TABLES } from '../../store/schema.js';
import { parseDurationMs } from './duration.js';
import { evaluateLatencyRegression } from './regression.js';
import { QUANTILES, type GroupLabel, type QueryType, type RuleQuery } from './types.js';

/** The alerting tables (owned by the store's migrations, services/store/schema.ts). */
export const ALERTING_TABLES = {
  rules: TABLES.alertingRules,
  alerts: TABLES.alertingAlerts,
  silences: TABLES.alertingSilences,
  notifications: TABLES.alertingNotifications,
  lease: TABLES.alertingLease,
} as const;

/** Which labels each query type can be split by, and the column each reads. */
export const GROUPABLE: Record<QueryType, readonly GroupLabel[]> = {
  finding_count: ['hostname', 'boot_id', 'device', 'driver', 'kernel_release', 'kind', 'severity'],
  redundant_zap_ns: ['hostname', 'boot_id', 'device', 'driver', 'kernel_release'],
  latency_quantile: ['hostname', 'driver', 'kernel_release', 'trigger'],
  event_loss: ['hostname', 'kernel_release'],
  host_silent: ['hostname'],
  latency_regression: ['driver', 'trigger'],
};

/** One series of a rule's result: its labels and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface QueryContext {
  client: ClickHouseClient;
  database: string;
  /** Evaluation time, ms since epoch (tests pin it). */
  now: number;
}

async function rows<T>(client: ClickHouseClient, query: string, params: Record<string, unknown>): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONEachRow' });
  return rs.json<T>();
}

function groupCols(q: RuleQuery): string[] {
  const allowed = GROUPABLE[q.type];
  for (const g of q.groupBy) if (!allowed.includes(g)) throw new Error(`groupBy ${g} is not available for ${q.type}`);
  return [...q.groupBy];
}

/** `toString(col) AS col` for each group column (enums come back as their names). */
const selectGroups = (cols: string[]): string => cols.map((c) => `toString(${c}) AS ${c}`).join(', ');
const groupClause = (cols: string[]): string => (cols.length ? `GROUP BY ${cols.join(', ')}` : '');

function toSamples(cols: string[], rs: Record<string, unknown>[]): Sample[] {
  return rs.map((r) => {
    const labels: Record<string, string> = {};
    for (const c of cols) labels[c] = String(r[c] ?? '');
    return { labels, value: Number(r.value) };
  });
}

/** Run a rule's query at ctx.now; one sample per group. */
export async function evaluateQuery(ctx: QueryContext, q: RuleQuery): Promise<Sample[]> {
  const db = checkIdentifier('database', ctx.database);
  const cols = groupCols(q);
  const windowMs = parseDurationMs(q.window);
  const params: Record<string, unknown> = { from_ms: ctx.now - windowMs, now_ms: ctx.now };
  switch (q.type) {
    case 'finding_count':
    case 'redundant_zap_ns': {
      const where = ['time >= fromUnixTimestamp64Milli({from_ms:Int64})', 'time <= fromUnixTimestamp64Milli({now_ms:Int64})'];
      if (q.type === 'redundant_zap_ns') {
        where.push(`toString(kind) = 'REDUNDANT_ZAP'`);
      } else {
        if (q.kinds?.length) { where.push('toString(kind) IN {kinds:Array(String)}'); params.kinds = q.kinds; }
        if (q.severities?.length) { where.push('toString(severity) IN {severities:Array(String)}'); params.severities = q.severities; }
      }
      if (q.inconclusive !== undefined) { where.push('inconclusive = {inconclusive:Bool}'); params.inconclusive = q.inconclusive; }
      const value = q.type === 'redundant_zap_ns' ? `sum(JSONExtractUInt(evidence, 'wastedNs'))` : 'count()';
      const sel = [selectGroups(cols), `${value} AS value`].filter(Boolean).join(', ');
      const sql = `SELECT ${sel} FROM ${db}.${TABLES.findings} FINAL WHERE ${where.join(' AND ')} ${groupClause(cols)}`;
      const out = toSamples(cols, await rows(ctx.client, sql, params));
      // without groups an empty table still yields the one (zero) row; with groups, no row = nothing found
      return out;
    }
    case 'latency_quantile': {
      const metric = q.metric ?? 'revoke';
      if (!(metric in LATENCY_METRICS)) throw new Error(`unknown latency metric ${metric}`);
      const qi = QUANTILES.indexOf((q.quantile ?? 0.99) as (typeof QUANTILES)[number]);
      if (qi < 0) throw new Error(`quantile must be one of ${QUANTILES.join(', ')}`);
      const sel = [selectGroups(cols), `${quantileMerge(metric as keyof typeof LATENCY_METRICS)}[${qi + 1}] AS value`,
        `sum(${metric === 'revoke' ? 'revoke_episodes' : 'episodes'}) AS n`].filter(Boolean).join(', ');
      const sql = `SELECT ${sel} FROM ${db}.${TABLES.latency}
        WHERE minute >= toDateTime(intDiv({from_ms:Int64}, 1000)) AND minute <= toDateTime(intDiv({now_ms:Int64}, 1000))
        ${groupClause(cols)}`;
      const rs = await rows<Record<string, unknown>>(ctx.client, sql, params);
      return toSamples(cols, rs.filter((r) => Number(r.n) > 0 && Number.isFinite(Number(r.value))));
    }
    case 'event_loss': {
      // lost is a cumulative counter per (hostname, boot_id) (sequence gaps + collector drops): the increase
      // in the window is its newest value in the window minus its newest value before (0 for a new boot)
      const inner = `SELECT hostname, boot_id, any(kernel_release) AS kernel_release,
          greatest(maxIf(lost, observed_at >= fromUnixTimestamp64Milli({from_ms:Int64}))
                   - maxIf(lost, observed_at < fromUnixTimestamp64Milli({from_ms:Int64})), 0) AS inc
        FROM ${db}.${TABLES.hostHealth}
        WHERE observed_at >= fromUnixTimestamp64Milli({from_ms:Int64} - {window_ms:Int64})
          AND observed_at <= fromUnixTimestamp64Milli({now_ms:Int64})
        GROUP BY hostname, boot_id`;
      params.window_ms = windowMs;
      const sel = [selectGroups(cols), 'sum(inc) AS value'].filter(Boolean).join(', ');
      return toSamples(cols, await rows(ctx.client, `SELECT ${sel} FROM (${inner}) ${groupClause(cols)}`, params));
    }
    case 'latency_regression':
      return evaluateLatencyRegression(ctx.client, db, q, { fromMs: ctx.now - windowMs, toMs: ctx.now });
    case 'host_silent': {
      // every host seen within the window; value = seconds since its clock last advanced (aliveSince)
      const sel = [selectGroups(cols), `({now_ms:Int64} - toUnixTimestamp64Milli(max(alive_at))) / 1000 AS value`].filter(Boolean).join(', ');
      const sql = `SELECT ${sel} FROM (${aliveSince(db, 'observed_at >= fromUnixTimestamp64Milli({from_ms:Int64}) AND ' +
        'observed_at <= fromUnixTimestamp64Milli({now_ms:Int64})')}) ${groupClause(cols)}`;
      return toSamples(cols, await rows(ctx.client, sql, params));
    }
  }
}

/**
 * Per host: when it was last alive (`alive_at`): the first health sample of its newest boot that reported the
 * host's newest clock (HOST_CLOCK_NS: the collector's EventBatch.now_ns, which heartbeats advance, or its newest
 * event ts). A host that sends heartbeats is alive without events; one whose batches stop, or whose samples keep
 * coming with a clock that no longer moves (a replay, a stuck collector), is silent from the moment it stopped.
 */
function aliveSince(db: string, where: string): string {
  return `SELECT hostname,
      argMaxIf(observed_at, (clock, -toUnixTimestamp64Milli(observed_at)), boot_id = boot_id_last) AS alive_at
    FROM (
      SELECT hostname, boot_id, observed_at, ${HOST_CLOCK_NS} AS clock,
        argMax(boot_id, observed_at) OVER (PARTITION BY hostname) AS boot_id_last
      FROM ${db}.${TABLES.hostHealth} FINAL WHERE ${where}
    )
    GROUP BY hostname`;
}

export interface HostRow {
  hostname: string;
  bootId: string;
  kernelRelease: string;
  collectorVersion: string;
  capabilities: string[];
  /** When the host was last alive (its clock last advanced: aliveSince). */
  lastSeen: string;
  silentSeconds: number;
  /** The newest sample's event ts and collector clock (host CLOCK_MONOTONIC ns, as decimal strings). */
  lastTsNs: string;
  nowNs: string;
  events: number;
  dropped: number;
  lost: number;
  lag: number;
  eventsPerSecond: number;
  dropsPerSecond: number;
}

/** Collector health per host: its newest sample, and rates over the samples of its current boot in the window. */
export async function hostsQuery(client: ClickHouseClient, database: string, f: { nowMs: number; windowMs: number; host?: string; limit: number }): Promise<HostRow[]> {
  const db = checkIdentifier('database', database);
  const where = ['observed_at >= fromUnixTimestamp64Milli({from_ms:Int64})'];
  const params: Record<string, unknown> = { from_ms: f.nowMs - f.windowMs, now_ms: f.nowMs, limit: f.limit };
  if (f.host !== undefined) { where.push('hostname = {host:String}'); params.host = f.host; }
  const sql = `
    SELECT hostname, h_boot AS boot_id, h_kernel AS kernel_release, h_version AS collector_version, h_caps AS capabilities,
      toUnixTimestamp64Milli(h_alive) AS last_seen_ms, toString(h_last_ts) AS last_ts_ns, toString(h_now) AS now_ns,
      h_events AS events, h_dropped AS dropped, h_lost AS lost, h_lag AS lag,
      if(span_s > 0, (h_events - first_events) / span_s, 0) AS eps, if(span_s > 0, (h_dropped - first_dropped) / span_s, 0) AS dps
    FROM (
      SELECT hostname,
        argMax(boot_id, observed_at) AS h_boot, argMax(kernel_release, observed_at) AS h_kernel,
        argMax(collector_version, observed_at) AS h_version, argMax(capabilities, observed_at) AS h_caps,
        -- alive: the first sample of the newest boot that reported its newest clock (aliveSince)
        argMaxIf(observed_at, (clock, -toUnixTimestamp64Milli(observed_at)), boot_id = boot_id_last) AS h_alive,
        argMax(last_ts_ns, observed_at) AS h_last_ts, argMax(now_ns, observed_at) AS h_now,
        argMax(events, observed_at) AS h_events, argMax(dropped, observed_at) AS h_dropped, argMax(lost, observed_at) AS h_lost,
        argMax(lag, observed_at) AS h_lag,
        -- the oldest sample of the newest boot in the window: the base of the rates
        argMinIf(events, observed_at, boot_id = boot_id_last) AS first_events,
        argMinIf(dropped, observed_at, boot_id = boot_id_last) AS first_dropped,
        (toUnixTimestamp64Milli(max(observed_at)) - toUnixTimestamp64Milli(minIf(observed_at, boot_id = boot_id_last))) / 1000 AS span_s
      FROM (
        SELECT hostname, boot_id, kernel_release, collector_version, capabilities, observed_at, events, dropped, lost, lag,
          last_ts_ns, now_ns, ${HOST_CLOCK_NS} AS clock,
          last_value(boot_id) OVER (PARTITION BY hostname ORDER BY observed_at ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS boot_id_last
        FROM ${db}.${TABLES.hostHealth} FINAL WHERE ${where.join(' AND ')}
      )
      GROUP BY hostname
    )
    ORDER BY hostname LIMIT {limit:UInt32}`;
  const rs = await rows<Record<string, unknown>>(client, sql, params);
  return rs.map((r) => {
    const lastSeenMs = Number(r.last_seen_ms);
    return {
      hostname: String(r.hostname), bootId: String(r.boot_id), kernelRelease: String(r.kernel_release),
      collectorVersion: String(r.collector_version), capabilities: (r.capabilities as string[]).map(String),
      lastSeen: new Date(lastSeenMs).toISOString(), silentSeconds: Math.max(0, (f.nowMs - lastSeenMs) / 1000),
      lastTsNs: String(r.last_ts_ns), nowNs: String(r.now_ns),
      events: Number(r.events), dropped: Number(r.dropped), lost: Number(r.lost), lag: Number(r.lag),
      eventsPerSecond: Number(r.eps), dropsPerSecond: Number(r.dps),
    };
  });
}
