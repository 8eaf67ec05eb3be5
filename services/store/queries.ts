// Read side of the store: episodes, findings and latency percentiles for the API and the run summary.
// Filters are fixed SQL fragments; every value is a query parameter ({name:Type}); the only identifiers
// that vary (group-by columns, metric columns) come from fixed maps, never from the caller's text.
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { evidenceObject } from '../trace/json.js';
import { LATENCY_METRICS, LATENCY_ROLLUPS, quantileMergeOf, TABLES, type LatencyMetric } from './schema.js';

export interface TimeRange {
  /** Inclusive lower bound, wall clock ms since epoch. */
  fromMs?: number;
  /** Exclusive upper bound, wall clock ms since epoch. */
  toMs?: number;
}

export interface EpisodeFilter extends TimeRange {
  host?: string; device?: string; driver?: string; kernel?: string; trigger?: string;
  revoke?: boolean; complete?: boolean;
  /** The acquiring task (LockAcquire's comm and pid). */
  comm?: string; pid?: number;
  /** The acquiring task's workload: libvirt VM name; Kubernetes pod UID or "namespace/name". */
  vm?: string; pod?: string;
  limit: number;
  /** Continue after this (time ns, id) position, from a previous page's nextCursor. */
  after?: { timeNs: string; id: string };
}

export interface FindingFilter extends TimeRange {
  host?: string; device?: string; driver?: string; kernel?: string; kind?: string; severity?: string;
  inconclusive?: boolean; episodeId?: string;
  /** The rule that made the finding (evidence.rule, e.g. "skipped_zap.unconditional_zap_era"). */
  rule?: string;
  /** Findings of episodes whose acquiring task had this comm, or ran in this VM or pod (as EpisodeFilter). */
  comm?: string; vm?: string; pod?: string;
  limit: number;
  after?: { timeNs: string; id: string };
}

export const LATENCY_DIMENSIONS = { host: 'hostname', driver: 'driver', kernel: 'kernel_release', trigger: 'trigger' } as const;
export type LatencyDimension = keyof typeof LATENCY_DIMENSIONS;

export interface LatencyQuery extends TimeRange {
  metric: LatencyMetric;
  groupBy: LatencyDimension[];
  host?: string; driver?: string; kernel?: string; trigger?: string;
}

export interface LatencyRow {
  group: Partial<Record<LatencyDimension, string>>;
  /** Episodes in the groups (all episodes, not only those the metric applies to). */
  episodes: number;
  /** Episodes the metric applies to (e.g. revoke: revoke episodes that revoked something). */
  count: number;
  p50: number; p90: number; p99: number; p999: number; max: number;
}

export interface Page<T> { items: T[]; nextCursor?: { timeNs: string; id: string } }

type Where = { sql: string[]; params: Record<string, unknown> };

function timeWhere(w: Where, r: TimeRange, column = 'time'): void {
  if (r.fromMs !== undefined) { w.sql.push(`${column} >= fromUnixTimestamp64Milli({from_ms:Int64})`); w.params.from_ms = Math.trunc(r.fromMs); }
  if (r.toMs !== undefined) { w.sql.push(`${column} < fromUnixTimestamp64Milli({to_ms:Int64})`); w.params.to_ms = Math.trunc(r.toMs); }
}

function eq(w: Where, column: string, name: string, value: string | number | boolean | undefined, type = 'String'): void {
  if (value === undefined) return;
  w.sql.push(`${column} = {${name}:${type}}`);
  w.params[name] = value;
}

/** An Enum8 column against a name. Compared as text: chDB 26.7 fails `enum_col = {p:String}` on an empty
 * block (the String → Enum8 cast of the parameter), and a name outside the enum simply matches nothing. */
function enumEq(w: Where, column: string, name: string, value: string | undefined): void {
  if (value === undefined) return;
  w.sql.push(`toString(${column}) = {${name}:String}`);
  w.params[name] = value;
}

/** The workload filters of an episode (EpisodeFilter.vm, .pod, .comm); pod matches the UID or "namespace/name". */
function workloadWhere(w: Where, f: { comm?: string; vm?: string; pod?: string }): void {
  eq(w, 'comm', 'comm', f.comm); eq(w, 'vm', 'vm', f.vm);
  if (f.pod !== undefined) { w.sql.push('(pod_uid = {pod:String} OR pod_name = {pod:String})'); w.params.pod = f.pod; }
}

function whereClause(w: Where): string {
  return w.sql.length ? `WHERE ${w.sql.join(' AND ')}` : '';
}

export const ISO = { date_time_output_format: 'iso', output_format_json_quote_64bit_integers: 1 } as const;

export class StoreReader {
  constructor(readonly client: ClickHouseClient, readonly database: string) {}

  private table(name: string): string { return `${this.database}.${name}`; }

  private async rows<T>(query: string, params: Record<string, unknown>, settings: ClickHouseSettings = {}): Promise<T[]> {
    const rs = await this.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { ...ISO, ...settings } });
    return rs.json<T>();
  }

  /** Newest first. Rows in proto3 JSON shape (camelCase, enums by name, 64-bit integers as strings) plus `time`. */
  async episodes(f: EpisodeFilter): Promise<Page<Record<string, unknown>>> {
    const w: Where = { sql: [], params: { limit: f.limit } };
    timeWhere(w, f);
    eq(w, 'hostname', 'host', f.host); eq(w, 'device', 'device', f.device); eq(w, 'driver', 'driver', f.driver);
    eq(w, 'kernel_release', 'kernel', f.kernel); enumEq(w, 'trigger', 'trigger', f.trigger);
    eq(w, 'revoke', 'revoke', f.revoke, 'Bool'); eq(w, 'complete', 'complete', f.complete, 'Bool');
    workloadWhere(w, f); eq(w, 'pid', 'pid', f.pid, 'UInt32');
    if (f.after) {
      w.sql.push('(time, episode_id) < (fromUnixTimestamp64Nano({after_ns:Int64}), {after_id:String})');
      w.params.after_ns = f.after.timeNs; w.params.after_id = f.after.id;
    }
    const rows = await this.rows<Record<string, unknown>>(`
      SELECT episode_id AS episodeId, hostname, boot_id AS bootId, device, driver, kernel_release AS kernelRelease,
        toString(trigger) AS trigger, group_id AS groupId, acquire_ts_ns AS acquireTsNs, release_ts_ns AS releaseTsNs,
        revoke, lock_wait_ns AS lockWaitNs, hold_ns AS holdNs, revoke_ns AS revokeNs, zap_ns AS zapNs,
        dmabuf_revoke_ns AS dmabufRevokeNs, move_ns AS moveNs, zap_count AS zapCount, dmabuf_count AS dmabufCount,
        importer_count AS importerCount, legacy_mappings AS legacyMappings, dmabuf_mappings AS dmabufMappings, complete,
        pid, comm, trigger_ret AS triggerRet, stale_triggers AS staleTriggers, intended_empty_zaps AS intendedEmptyZaps,
        cgroup_id AS cgroupId, vm, pod_uid AS podUid, pod_name AS podName, container_id AS containerId, acquire_stack_id AS acquireStackId,
        time, toString(toUnixTimestamp64Nano(time)) AS _time_ns
      FROM ${this.table(TABLES.episodes)} FINAL ${whereClause(w)}
      ORDER BY time DESC, episode_id DESC LIMIT {limit:UInt32}`, w.params);
    return page(rows, f.limit, 'episodeId');
  }

  async findings(f: FindingFilter): Promise<Page<Record<string, unknown>>> {
    const w: Where = { sql: [], params: { limit: f.limit } };
    timeWhere(w, f);
    eq(w, 'hostname', 'host', f.host); eq(w, 'device', 'device', f.device); eq(w, 'driver', 'driver', f.driver);
    eq(w, 'kernel_release', 'kernel', f.kernel); enumEq(w, 'kind', 'kind', f.kind); enumEq(w, 'severity', 'severity', f.severity);
    eq(w, 'inconclusive', 'inconclusive', f.inconclusive, 'Bool'); eq(w, 'episode_id', 'episode_id', f.episodeId);
    eq(w, `JSONExtractString(evidence, 'rule')`, 'rule', f.rule);
    if (f.comm !== undefined || f.vm !== undefined || f.pod !== undefined) {
      // a finding's task and workload are its episode's (the acquiring task's); a finding outside an episode
      // (LOCK_NOT_HELD, FAULT_WHILE_REVOKED) names only its task, in its evidence (comm): it matches a comm filter alone
      const e: Where = { sql: [], params: w.params };
      eq(e, 'hostname', 'host', f.host);
      workloadWhere(e, f);
      const byEpisode = `episode_id IN (SELECT episode_id FROM ${this.table(TABLES.episodes)} FINAL ${whereClause(e)})`;
      w.sql.push(f.comm !== undefined && f.vm === undefined && f.pod === undefined
        ? `(${byEpisode} OR (episode_id = '' AND JSONExtractString(evidence, 'comm') = {comm:String}))` : byEpisode);
    }
    if (f.after) {
      w.sql.push('(time, finding_id) < (fromUnixTimestamp64Nano({after_ns:Int64}), {after_id:String})');
      w.params.after_ns = f.after.timeNs; w.params.after_id = f.after.id;
    }
    const rows = await this.rows<Record<string, unknown>>(`
      SELECT finding_id AS findingId, toString(kind) AS kind, toString(severity) AS severity, hostname, boot_id AS bootId,
        device, driver, kernel_release AS kernelRelease, episode_id AS episodeId, ts_ns AS tsNs, inconclusive, evidence,
        time, toString(toUnixTimestamp64Nano(time)) AS _time_ns
      FROM ${this.table(TABLES.findings)} FINAL ${whereClause(w)}
      ORDER BY time DESC, finding_id DESC LIMIT {limit:UInt32}`, w.params);
    // evidence is stored as the text of a JSON object and returned as the object (docs/rules.md)
    for (const r of rows) r.evidence = evidenceObject(r.evidence);
    return page(rows, f.limit, 'findingId');
  }

  /** Kernel stacks of a boot by id (EventBatch.stacks as stored): frames innermost first. */
  async kernelStacks(hostname: string, bootId: string, ids: readonly number[]): Promise<Map<number, string[]>> {
    if (ids.length === 0) return new Map();
    const rows = await this.rows<{ id: string; frames: string[] }>(`
      SELECT toString(stack_id) AS id, frames FROM ${this.table(TABLES.kernelStacks)} FINAL
      WHERE hostname = {host:String} AND boot_id = {boot:String} AND stack_id IN {ids:Array(UInt64)}`,
    { host: hostname, boot: bootId, ids: [...ids] });
    return new Map(rows.map((r) => [Number(r.id), r.frames]));
  }

  /** Percentiles merged from the rollup states, at minute resolution (the range snaps to whole minutes:
   * [start of from's minute, end of to's minute)). Whole UTC days of the range come from the daily rollup,
   * whole hours from the hourly one, the ragged minutes at its edges from the minute rollup. */
  async latency(q: LatencyQuery): Promise<LatencyRow[]> {
    // identical concurrent requests (a dashboard's panels, many viewers) share one store query
    const key = JSON.stringify([q.metric, q.groupBy, q.host, q.driver, q.kernel, q.trigger,
      q.fromMs === undefined ? null : Math.floor(q.fromMs / 60_000), q.toMs === undefined ? null : Math.ceil(q.toMs / 60_000)]);
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.latencyQuery(q).finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  private readonly inflight = new Map<string, Promise<LatencyRow[]>>();

  private async latencyQuery(q: LatencyQuery): Promise<LatencyRow[]> {
    const m = q.metric;
    if (!(m in LATENCY_METRICS)) throw new Error(`unknown metric ${m}`);
    const dims = q.groupBy.map((d) => {
      const column = LATENCY_DIMENSIONS[d];
      if (!column) throw new Error(`unknown dimension ${d}`);
      return { d, column };
    });
    const lo = q.fromMs === undefined ? undefined : Math.floor(q.fromMs / 60_000) * 60;
    const hi = q.toMs === undefined ? undefined : Math.ceil(q.toMs / 60_000) * 60;
    // DateTime buckets end in 2106; a range that starts after that (or is empty) holds nothing
    if (lo !== undefined && (lo > MAX_DATETIME_S || (hi !== undefined && lo >= hi))) return [];
    const filters: Where = { sql: [], params: {} };
    eq(filters, 'hostname', 'host', q.host); eq(filters, 'driver', 'driver', q.driver); eq(filters, 'kernel_release', 'kernel', q.kernel);
    enumEq(filters, 'trigger', 'trigger', q.trigger);
    const params: Record<string, unknown> = { ...filters.params };
    const pieces = latencyPieces(lo, hi === undefined || hi > MAX_DATETIME_S ? undefined : hi).map(({ tier, ranges }) => ({
      tier,
      // a bucket bound past the DateTime range: nothing starts after it, everything ends before it
      ranges: ranges.filter(([a]) => a === undefined || a <= MAX_DATETIME_S)
        .map(([a, b]): [number | undefined, number | undefined] => [a, b !== undefined && b > MAX_DATETIME_S ? undefined : b]),
    })).filter((p) => p.ranges.length > 0);
    if (pieces.length === 0) return [];
    const parts = pieces.map(({ tier, ranges }) => {
      const { table, bucket } = LATENCY_ROLLUPS[tier]!;
      const time = ranges.map(([a, b], i) => {
        const c: string[] = [];
        if (a !== undefined) { c.push(`${bucket} >= toDateTime({t${tier}_${i}_lo:UInt32})`); params[`t${tier}_${i}_lo`] = a; }
        if (b !== undefined) { c.push(`${bucket} < toDateTime({t${tier}_${i}_hi:UInt32})`); params[`t${tier}_${i}_hi`] = b; }
        return c.length ? `(${c.join(' AND ')})` : '1';
      });
      const where = [...(time.length > 1 || time[0] !== '1' ? [`(${time.join(' OR ')})`] : []), ...filters.sql];
      return `SELECT hostname, driver, kernel_release, trigger, episodes, ${m}_samples AS samples, ${m}_q AS q, ${m}_max AS mx
        FROM ${this.table(table)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
    });
    const groupCols = dims.map(({ d, column }) => `toString(${column}) AS g_${d}`);
    const rows = await this.rows<Record<string, string | number | (string | number)[]>>(`
      SELECT ${[...groupCols, 'sum(episodes) AS episodes', 'sum(samples) AS count', `${quantileMergeOf('q')} AS q`, 'max(mx) AS max'].join(', ')}
      FROM (${parts.join('\n      UNION ALL ')})
      ${dims.length ? `GROUP BY ${dims.map(({ d }) => `g_${d}`).join(', ')} ORDER BY ${dims.map(({ d }) => `g_${d}`).join(', ')}` : ''}`,
    // merging states is CPU work: at a lower OS priority it does not starve the API's event loop (embedded
    // chDB shares the process and its cores), so the cached answers the others get stay fast
    params, { os_thread_priority: '10' });
    return rows.filter((r) => Number(r.episodes) > 0).map((r) => {
      const qs = (r.q as (string | number)[]).map((v) => Math.round(Number(v)));
      const count = Number(r.count);
      const group: LatencyRow['group'] = {};
      for (const { d } of dims) group[d] = String(r[`g_${d}`]);
      return {
        group, episodes: Number(r.episodes), count,
        // an empty state merges to NaN/0: report zeros when the metric applies to no episode
        p50: count ? qs[0]! : 0, p90: count ? qs[1]! : 0, p99: count ? qs[2]! : 0, p999: count ? qs[3]! : 0,
        max: Number(r.max),
      };
    });
  }

  /** Deduplicated counts (FINAL): what the store holds. */
  async counts(): Promise<{ events: number; episodes: number; revokeEpisodes: number; incompleteEpisodes: number; findings: number; latencyEpisodes: number }> {
    const [r] = await this.rows<Record<string, string>>(`
      SELECT (SELECT count() FROM ${this.table(TABLES.events)} FINAL) AS events,
        (SELECT count() FROM ${this.table(TABLES.episodes)} FINAL) AS episodes,
        (SELECT countIf(revoke) FROM ${this.table(TABLES.episodes)} FINAL) AS revokeEpisodes,
        (SELECT countIf(NOT complete) FROM ${this.table(TABLES.episodes)} FINAL) AS incompleteEpisodes,
        (SELECT count() FROM ${this.table(TABLES.findings)} FINAL) AS findings,
        (SELECT sum(episodes) FROM ${this.table(TABLES.latency)}) AS latencyEpisodes`, {});
    return {
      events: Number(r!.events), episodes: Number(r!.episodes), revokeEpisodes: Number(r!.revokeEpisodes), incompleteEpisodes: Number(r!.incompleteEpisodes),
      findings: Number(r!.findings), latencyEpisodes: Number(r!.latencyEpisodes ?? 0),
    };
  }

  /** Revoke latency in half-decade buckets (10^(k/2) ns), the same edges as the analyze report (measured
   * revokes only, as the rollups count them). */
  async revokeHistogram(): Promise<{ loNs: number; hiNs: number; count: number }[]> {
    const rows = await this.rows<{ b: number; count: string }>(`
      SELECT toInt32(floor(2 * log10(revoke_ns) + 1e-9)) AS b, count() AS count
      FROM ${this.table(TABLES.episodes)} FINAL WHERE ${LATENCY_METRICS.revoke.when} GROUP BY b ORDER BY b`, {});
    if (rows.length === 0) return [];
    const counts = new Map(rows.map((r) => [Number(r.b), Number(r.count)]));
    const lo = Number(rows[0]!.b);
    const hi = Number(rows[rows.length - 1]!.b);
    const out = [];
    for (let i = lo; i <= hi; i++) out.push({ loNs: Math.round(10 ** (i / 2)), hiNs: Math.round(10 ** ((i + 1) / 2)), count: counts.get(i) ?? 0 });
    return out;
  }

  /** Per finding kind, the devices with the most findings of that kind. */
  async worstDevices(perKind: number): Promise<{ kind: string; hostname: string; device: string; driver: string; count: number; worstSeverity: string }[]> {
    return (await this.rows<{ kind: string; hostname: string; device: string; driver: string; count: string; worstSeverity: string }>(`
      SELECT toString(kind) AS kind, hostname, device, any(driver) AS driver, count() AS count, toString(max(severity)) AS worstSeverity
      FROM ${this.table(TABLES.findings)} FINAL GROUP BY kind, hostname, device
      ORDER BY kind, count DESC, max(severity) DESC, hostname, device LIMIT {per_kind:UInt32} BY kind`, { per_kind: perKind }))
      .map((r) => ({ ...r, count: Number(r.count) }));
  }

  /** Findings by kind and severity (names), deduplicated. */
  async findingCounts(): Promise<{ kind: string; severity: string; inconclusive: boolean; count: number }[]> {
    return (await this.rows<{ kind: string; severity: string; inconclusive: boolean; count: string }>(`
      SELECT toString(kind) AS kind, toString(severity) AS severity, inconclusive, count() AS count
      FROM ${this.table(TABLES.findings)} FINAL GROUP BY kind, severity, inconclusive ORDER BY kind, severity`, {}))
      .map((r) => ({ ...r, count: Number(r.count) }));
  }
}

/** The last second a DateTime bucket holds (2106-02-07T06:28:15Z). */
const MAX_DATETIME_S = 4_294_967_295;

/** Splits the minute-aligned range [lo, hi) (seconds; undefined = unbounded) into bucket ranges per rollup
 * tier (index into LATENCY_ROLLUPS): the coarsest tier takes the whole buckets inside, the next finer tier
 * the remainders at either edge, down to minutes. Exact: every minute is counted once. */
export function latencyPieces(lo: number | undefined, hi: number | undefined, tier = LATENCY_ROLLUPS.length - 1):
  { tier: number; ranges: [number | undefined, number | undefined][] }[] {
  const out = new Map<number, [number | undefined, number | undefined][]>();
  const split = (a: number | undefined, b: number | undefined, t: number): void => {
    const w = LATENCY_ROLLUPS[t]!.seconds;
    const A = a === undefined ? undefined : Math.ceil(a / w) * w;
    const B = b === undefined ? undefined : Math.floor(b / w) * w;
    if (t > 0 && A !== undefined && B !== undefined && A >= B) return split(a, b, t - 1);
    if (!out.has(t)) out.set(t, []);
    out.get(t)!.push([A, B]);
    if (t === 0) return;
    if (a !== undefined && a < A!) split(a, A, t - 1);
    if (b !== undefined && B! < b) split(B, b, t - 1);
  };
  split(lo, hi, tier);
  return [...out].sort(([x], [y]) => x - y).map(([t, ranges]) => ({ tier: t, ranges }));
}

function page(rows: Record<string, unknown>[], limit: number, idKey: string): Page<Record<string, unknown>> {
  const last = rows[rows.length - 1];
  const items = rows.map(({ _time_ns, ...rest }) => rest);
  return rows.length === limit && last ? { items, nextCursor: { timeNs: String(last._time_ns), id: String(last[idKey]) } } : { items };
}

/** The columns of a raw-event row (events, finding_events) as services/store/event-rows.ts reads them. */
export const EVENT_ROW_SELECT = `hostname, boot_id AS bootId, seq, ts_ns AS tsNs, cpu, pid, tid, comm, device, toString(kind) AS kind, driver,
        zap_bars_on_revoke AS zapBarsOnRevoke, dmabuf_bar_mmap AS dmabufBarMmap, wait_ns AS waitNs, start, length,
        duration_ns AS durationNs, toString(zap_target) AS zapTarget, had_vmas AS hadVmas, revoked, dmabuf_count AS dmabufCount,
        device_has_vmas AS deviceHasVmas, dmabuf_id AS dmabufId, importer_count AS importerCount, bar, toString(backing) AS backing,
        mapping_id AS mappingId, map_length AS mapLength, snapshot, ok, toString(trigger) AS trigger, group_id AS groupId,
        memory_enabled AS memoryEnabled, power_state AS powerState, device_revoked AS deviceRevoked, open_count AS openCount,
        no_command_memory AS noCommandMemory, custom_vm_ops_bars AS customVmOpsBars, ret, power_from AS powerFrom, power_to AS powerTo,
        cgroup_id AS cgroupId, stack_id AS stackId`;

/** An episode row in proto3 JSON shape (episodeFromJson reads it). */
export const EPISODE_ROW_SELECT = `episode_id AS episodeId, hostname, boot_id AS bootId, device, driver, kernel_release AS kernelRelease,
        toString(trigger) AS trigger, group_id AS groupId, acquire_ts_ns AS acquireTsNs, release_ts_ns AS releaseTsNs,
        revoke, lock_wait_ns AS lockWaitNs, hold_ns AS holdNs, revoke_ns AS revokeNs, zap_ns AS zapNs,
        dmabuf_revoke_ns AS dmabufRevokeNs, move_ns AS moveNs, zap_count AS zapCount, dmabuf_count AS dmabufCount,
        importer_count AS importerCount, legacy_mappings AS legacyMappings, dmabuf_mappings AS dmabufMappings, complete,
        pid, comm, trigger_ret AS triggerRet, stale_triggers AS staleTriggers, intended_empty_zaps AS intendedEmptyZaps,
        cgroup_id AS cgroupId, vm, pod_uid AS podUid, pod_name AS podName, container_id AS containerId, acquire_stack_id AS acquireStackId`;

/** A finding row in proto3 JSON shape (findingFromJson reads it; evidence is the JSON text). */
export const FINDING_ROW_SELECT = `finding_id AS findingId, toString(kind) AS kind, toString(severity) AS severity, hostname, boot_id AS bootId,
        device, driver, kernel_release AS kernelRelease, episode_id AS episodeId, ts_ns AS tsNs, inconclusive, evidence`;

/** What a trace-event export of a time range needs (export-trace): the raw events of the range, the episodes that
 * overlap it, its findings, and each boot's wall-clock offset. */
export interface TraceRangeQuery {
  /** Inclusive, wall clock ms. */
  fromMs: number;
  /** Exclusive, wall clock ms. */
  toMs: number;
  host?: string;
  /** Most raw events read; one more row is returned when there are more (the caller says so). */
  maxEvents: number;
}

export interface TraceRange {
  /** Raw event rows (columns of `events`, enums by name, 64-bit values as strings), by host, boot and seq. */
  events: Record<string, unknown>[];
  /** Episodes acquired before the range's end and released at or after its start: proto3 JSON rows. */
  episodes: Record<string, unknown>[];
  findings: Record<string, unknown>[];
  /** Per boot: its wall-clock offset − fromMs, in ns (ts_ns + shiftNs = ns since fromMs). */
  clocks: { hostname: string; bootId: string; shiftNs: number }[];
}

/** Reads a time range for a trace-event export. Every row is deduplicated (FINAL). */
export async function readTraceRange(reader: StoreReader, q: TraceRangeQuery): Promise<TraceRange> {
  const table = (name: string): string => `${reader.database}.${name}`;
  const rows = async <T>(query: string, params: Record<string, unknown>): Promise<T[]> =>
    (await reader.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: ISO })).json<T>();
  const w: Where = { sql: [], params: {} };
  timeWhere(w, q);
  eq(w, 'hostname', 'host', q.host);
  const host: Where = { sql: [], params: {} };
  eq(host, 'hostname', 'host', q.host);
  // ns since fromMs as an Int64 computed in the engine: wall-clock ns since the epoch are past 2^53
  const origin = `toInt64({from_ms:Int64}) * 1000000`;
  // one query at a time: embedded chDB runs one per connection
  const events = await rows<Record<string, unknown>>(`
      SELECT ${EVENT_ROW_SELECT}
      FROM ${table(TABLES.events)} FINAL ${whereClause(w)}
      ORDER BY hostname, boot_id, seq LIMIT {limit:UInt32}`, { ...w.params, limit: q.maxEvents + 1 });
  const episodes = await rows<Record<string, unknown>>(`
      SELECT ${EPISODE_ROW_SELECT}
      FROM ${table(TABLES.episodes)} FINAL
      WHERE time >= fromUnixTimestamp64Milli({from_ms:Int64}) - INTERVAL 1 HOUR AND time < fromUnixTimestamp64Milli({to_ms:Int64})
        AND addNanoseconds(time, hold_ns) >= fromUnixTimestamp64Milli({from_ms:Int64}) ${host.sql.length ? `AND ${host.sql.join(' AND ')}` : ''}
      ORDER BY hostname, boot_id, device, acquire_ts_ns LIMIT {limit:UInt32}`, { ...w.params, limit: q.maxEvents + 1 });
  const findings = await rows<Record<string, unknown>>(`
      SELECT ${FINDING_ROW_SELECT}
      FROM ${table(TABLES.findings)} FINAL ${whereClause(w)}
      ORDER BY hostname, boot_id, device, ts_ns, finding_id LIMIT {limit:UInt32}`, { ...w.params, limit: q.maxEvents + 1 });
  const clocks = await rows<{ hostname: string; bootId: string; shiftNs: string }>(`
      SELECT hostname, boot_id AS bootId, toString(offset_ns - ${origin}) AS shiftNs
      FROM ${table(TABLES.bootClock)} FINAL ${whereClause(host)}`, { ...host.params, from_ms: Math.trunc(q.fromMs) });
  return { events, episodes, findings, clocks: clocks.map((c) => ({ hostname: c.hostname, bootId: c.bootId, shiftNs: Number(c.shiftNs) })) };
}

// ---------------------------------------------------------------- kernel A/B (revokescope compare)

/** Episodes whose latency was measured, per metric `revokescope compare` reads: a complete episode whose LockAcquire
 * was seen (services/report/compare.ts measuredLatency says the same in TypeScript). */
export const MEASURED_WHEN = {
  revoke: LATENCY_METRICS.revoke.when,
  hold: LATENCY_METRICS.hold.when,
} as const;

/** A kernel release glob (`*` any run, `?` one character) as a LIKE pattern. */
export function kernelLike(pattern: string): string {
  return pattern.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

export interface KernelSelection extends TimeRange {
  /** A kernel release or a glob of them. */
  kernel: string;
  /** At most this many episodes per trigger × driver stratum give latency values (a uniform subsample by
   * cityHash64(episode_id)); counts are always complete. */
  maxSamples: number;
}

type MetricValues = { count: number; values: number[] };

/** One kernel selection by trigger × driver stratum and host: what services/report/compare.ts compares. */
export interface KernelStrata {
  kernels: string[];
  strata: { trigger: string; driver: string; hosts: { host: string; episodes: number; certain: number; inconclusive: number;
    latency: { revoke: MetricValues; hold: MetricValues } }[] }[];
  unattributed: { certain: number; inconclusive: number };
}

/** Episodes, measured latencies (subsampled per stratum) and findings of the episodes of one kernel selection. */
export async function kernelStrata(client: ClickHouseClient, database: string, sel: KernelSelection): Promise<KernelStrata> {
  const table = (name: string): string => `${database}.${name}`;
  const w: Where = { sql: ['kernel_release LIKE {kernel:String}'], params: { kernel: kernelLike(sel.kernel), cap: Math.max(0, Math.trunc(sel.maxSamples)) } };
  timeWhere(w, sel);
  const where = whereClause(w);
  const rows = async <T>(query: string): Promise<T[]> =>
    (await client.query({ query, query_params: w.params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } })).json<T>();
  const [counts, samples, found] = [
    await rows<{ trigger: string; driver: string; hostname: string; episodes: number; revoke: number; hold: number; kernels: string[] }>(`
      SELECT toString(trigger) AS trigger, driver, hostname, count() AS episodes,
        countIf(${MEASURED_WHEN.revoke}) AS revoke, countIf(${MEASURED_WHEN.hold}) AS hold, groupUniqArray(kernel_release) AS kernels
      FROM ${table(TABLES.episodes)} FINAL ${where}
      GROUP BY trigger, driver, hostname`),
    await rows<{ trigger: string; driver: string; hostname: string; revoke: number[]; hold: number[] }>(`
      SELECT trigger, driver, hostname, groupArrayIf(revoke_ns, r) AS revoke, groupArrayIf(hold_ns, h) AS hold
      FROM (
        SELECT toString(trigger) AS trigger, driver, hostname, revoke_ns, hold_ns, (${MEASURED_WHEN.revoke}) AS r, (${MEASURED_WHEN.hold}) AS h
        FROM ${table(TABLES.episodes)} FINAL ${where} AND (r OR h)
        ORDER BY cityHash64(episode_id) LIMIT {cap:UInt32} BY trigger, driver
      )
      GROUP BY trigger, driver, hostname`),
    await rows<{ matched: number; trigger: string; driver: string; hostname: string; certain: number; inconclusive: number }>(`
      SELECT e.matched AS matched, toString(e.trigger) AS trigger, e.driver AS driver, e.hostname AS hostname,
        countIf(NOT f.inconclusive) AS certain, countIf(f.inconclusive) AS inconclusive
      FROM (SELECT episode_id, inconclusive FROM ${table(TABLES.findings)} FINAL ${where}) AS f
      LEFT JOIN (SELECT episode_id, trigger, driver, hostname, 1 AS matched FROM ${table(TABLES.episodes)} FINAL ${where}) AS e
        ON f.episode_id = e.episode_id
      GROUP BY matched, trigger, driver, hostname`),
  ];
  const key = (r: { trigger: string; driver: string; hostname: string }): string => `${r.trigger}\u0000${r.driver}\u0000${r.hostname}`;
  const sampled = new Map(samples.map((r) => [key(r), r]));
  const findings = new Map(found.filter((r) => Number(r.matched) === 1).map((r) => [key(r), r]));
  const unattributed = { certain: 0, inconclusive: 0 };
  for (const r of found) {
    if (Number(r.matched) === 1) continue;
    unattributed.certain += Number(r.certain);
    unattributed.inconclusive += Number(r.inconclusive);
  }
  const kernels = new Set<string>();
  const strata = new Map<string, KernelStrata['strata'][number]>();
  for (const r of counts) {
    for (const k of r.kernels) kernels.add(k);
    const sk = `${r.trigger}\u0000${r.driver}`;
    let s = strata.get(sk);
    if (!s) strata.set(sk, s = { trigger: r.trigger, driver: r.driver, hosts: [] });
    const v = sampled.get(key(r)), f = findings.get(key(r));
    s.hosts.push({
      host: r.hostname, episodes: Number(r.episodes), certain: Number(f?.certain ?? 0), inconclusive: Number(f?.inconclusive ?? 0),
      latency: { revoke: { count: Number(r.revoke), values: (v?.revoke ?? []).map(Number) }, hold: { count: Number(r.hold), values: (v?.hold ?? []).map(Number) } },
    });
  }
  return { kernels: [...kernels].sort(), strata: [...strata.values()], unattributed };
}
