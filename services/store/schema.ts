// ClickHouse schema (docs/design.md §5) as versioned migrations. The same statements run in chDB and on a server;
// with a cluster name they render as ReplicatedMergeTree local tables + Distributed tables, ON CLUSTER.
//
// Time. ts_ns is the host's CLOCK_MONOTONIC; ClickHouse needs a wall-clock column for TTL, partitions and
// Grafana time ranges. Every row also has `time DateTime64(9)` = monotonic ts + a per-boot offset
// (wall clock − monotonic), captured once when a boot is first ingested and persisted in `boot_clock`, so
// a re-ingest maps the same event to the same time (and the same partition: deduplication holds). The
// offset travels as an insert column, so `time` is computed in the engine with exact Int64 math: stored for
// episodes and findings (EPHEMERAL offset), an ALIAS over the stored offset for raw events (bytes/event).
//
// Idempotent rollups. A materialized view fires per inserted block, so an MV over a ReplacingMergeTree
// counts a re-ingested episode twice. Episodes are therefore inserted into a Null table `episodes_ingest`;
// the MV `episodes_dedup` forwards only rows whose key (hostname, boot_id, device, acquire_ts_ns) is not
// stored yet (a primary-key lookup, not a scan), and the rollup MV hangs off `episodes`. Re-ingesting the
// same trace therefore leaves both `episodes` and `episode_latency_1m` unchanged. The check is not atomic
// across concurrent writers of the same host; a host has one writer (embedded: one process; fleet: one
// Kafka partition owner), and the ReplacingMergeTree still deduplicates the base table in any case.
import { Backing, Capability, FindingKind, Severity, TriggerKind, ZapTarget } from '../core/model.js';

export interface SchemaOptions {
  /** Database the tables live in (an identifier). */
  database: string;
  /** Render ON CLUSTER / ReplicatedMergeTree + Distributed DDL for this cluster. */
  cluster?: string;
  /** Raw events are kept this many days (TTL). */
  eventsTtlDays: number;
  /** Collector health samples are kept this many days. */
  healthTtlDays: number;
}

export const defaultSchemaOptions: SchemaOptions = { database: 'revokescope', eventsTtlDays: 7, healthTtlDays: 90 };

export interface Migration {
  version: number;
  name: string;
  statements(o: SchemaOptions): string[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkIdentifier(kind: string, value: string): string {
  if (!IDENT.test(value)) throw new Error(`invalid ${kind} name '${value}': letters, digits and _ only`);
  return value;
}

function checkOptions(o: SchemaOptions): void {
  checkIdentifier('database', o.database);
  if (o.cluster !== undefined) checkIdentifier('cluster', o.cluster);
  for (const [k, v] of [['eventsTtlDays', o.eventsTtlDays], ['healthTtlDays', o.healthTtlDays]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 36500) throw new Error(`${k} must be an integer 1..36500`);
  }
}

/** Enum8 from a generated protobuf enum: its values up to `through` (a migration names the values of its time,
 * so its text never changes; values added to proto/ later need a migration that widens the column). */
export function enum8(values: Record<string, unknown>, through = 127): string {
  const items = Object.entries(values).filter(([, v]) => typeof v === 'number' && v <= through).map(([k, v]) => `'${k}' = ${v as number}`);
  return `Enum8(${items.join(', ')})`;
}

/** The enum values each migration knows (migration 1: docs/design.md §3; migration 4: rules v2, docs/rules.md). */
const V1 = { trigger: TriggerKind.PERMANENT_REVOKE, finding: FindingKind.SLOW_REVOKE, capability: Capability.DEVICE_INFO };
const V4 = { trigger: TriggerKind.OPEN, finding: FindingKind.FAULT_WHILE_REVOKED, capability: Capability.TRIGGER_END };

/** Raw event kinds (the Event body member set); the index is the Enum8 value. */
export const EVENT_KINDS = ['UNKNOWN', 'deviceInfo', 'lockAcquire', 'lockRelease', 'zap', 'dmabufRevoke', 'moveNotify',
  'barMmap', 'barMunmap', 'barFault', 'trigger', 'triggerEnd', 'powerTransition', 'resetFunction'] as const;
const eventKindEnum = (kinds: readonly string[]): string => `Enum8(${kinds.map((k, i) => `'${k}' = ${i}`).join(', ')})`;
const V1_EVENT_KINDS = EVENT_KINDS.slice(0, EVENT_KINDS.indexOf('trigger') + 1);

/** A protobuf enum's name → value entries up to `through` (what a column of that migration can hold). */
function enumThrough(values: Record<string, unknown>, through: number): Record<string, number> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => typeof v === 'number' && v <= through)) as Record<string, number>;
}

/** The values the newest migration's enum columns hold: writers store anything else as 0 (…_UNSPECIFIED) or drop
 * it (capabilities), so a value added to proto/ before its migration cannot fail an insert. */
export const COLUMN_ENUM_VALUES = {
  trigger: enumThrough(TriggerKind, V4.trigger), finding: enumThrough(FindingKind, V4.finding), capability: enumThrough(Capability, V4.capability),
} as const;

/** Exact types of the raw events' Enum8 columns (Native blocks name them; same strings as the DDL). */
export const EVENT_COLUMN_TYPES = {
  kind: eventKindEnum(EVENT_KINDS),
  zapTarget: enum8(ZapTarget), zapTargetValues: ZapTarget as unknown as Record<string, unknown>,
  backing: enum8(Backing), backingValues: Backing as unknown as Record<string, unknown>,
  trigger: enum8(TriggerKind, V4.trigger), triggerValues: COLUMN_ENUM_VALUES.trigger as Record<string, unknown>,
} as const;

const lc = 'LowCardinality(String)';

type Engine = { kind: 'ReplacingMergeTree' | 'AggregatingMergeTree' | 'SummingMergeTree' | 'MergeTree' | 'Null'; version?: string };

interface TableSpec {
  name: string;
  columns: string[];
  engine: Engine;
  partitionBy?: string;
  orderBy?: string;
  ttl?: string;
  indexes?: string[];
  settings?: string;
  /** A small table every node reads whole (alerting state, pipeline bookkeeping): in cluster mode one replica set for
   * the whole cluster (ReplicatedMergeTree, no shards, no Distributed table). */
  shared?: boolean;
}

/** Table names as readers and writers use them (the Distributed table in cluster mode). */
export const TABLES = {
  migrations: 'schema_migrations',
  events: 'events',
  bootClock: 'boot_clock',
  episodesIngest: 'episodes_ingest',
  episodes: 'episodes',
  latency: 'episode_latency_1m',
  latencyHourly: 'episode_latency_1h',
  latencyDaily: 'episode_latency_1d',
  findings: 'findings',
  /** Each finding's window of raw events (explain), kept with the finding beyond the events TTL (migration 6). */
  findingEvents: 'finding_events',
  hostHealth: 'host_health',
  // alerting (services/api/alerting): mutable rows, ReplacingMergeTree by version, read with FINAL
  alertingRules: 'alerting_rules',
  alertingAlerts: 'alerting_alerts',
  alertingSilences: 'alerting_silences',
  alertingNotifications: 'alerting_notifications',
  /** Which API process evaluates the rules of this store (one evaluator per store, however many replicas). */
  alertingLease: 'alerting_lease',
  // the fleet pipeline's bookkeeping (services/pipeline): correlator checkpoints, dead-letter counts
  checkpoints: 'correlator_checkpoints',
  deadLetters: 'dlq_events',
  // per-boot lookup tables the collectors send (EventBatch.cgroups, EventBatch.stacks): events and episodes name
  // their rows by id
  cgroups: 'cgroups',
  kernelStacks: 'kernel_stacks',
} as const;

function onCluster(o: SchemaOptions): string {
  return o.cluster ? ` ON CLUSTER ${o.cluster}` : '';
}

/** Name of the table that stores data (…_local behind a Distributed table in cluster mode). */
function storage(o: SchemaOptions, name: string): string {
  return `${o.database}.${o.cluster ? `${name}_local` : name}`;
}

function engineClause(o: SchemaOptions, t: TableSpec): string {
  const { kind, version } = t.engine;
  if (kind === 'Null') return 'Null';
  if (!o.cluster) return `${kind}(${version ?? ''})`;
  const replicated = `Replicated${kind}`;
  const args = [`'/clickhouse/tables/${t.shared ? 'all' : '{shard}'}/${o.database}/${t.name}'`, `'{replica}'`];
  if (version) args.push(version);
  return `${replicated}(${args.join(', ')})`;
}

/** CREATE TABLE (+ the Distributed table over it in cluster mode, sharded by host: per-host order and the
 * dedup MV's lookups stay on one shard). */
function createTable(o: SchemaOptions, t: TableSpec): string[] {
  const cols = [...t.columns, ...(t.indexes ?? [])].map((c) => `  ${c}`).join(',\n');
  const name = t.shared ? `${o.database}.${t.name}` : storage(o, t.name);
  const lines = [`CREATE TABLE IF NOT EXISTS ${name}${onCluster(o)}\n(\n${cols}\n)`, `ENGINE = ${engineClause(o, t)}`];
  if (t.partitionBy) lines.push(`PARTITION BY ${t.partitionBy}`);
  if (t.orderBy) lines.push(`ORDER BY ${t.orderBy}`);
  if (t.ttl) lines.push(`TTL ${t.ttl}`);
  if (t.settings) lines.push(`SETTINGS ${t.settings}`);
  const out = [lines.join('\n')];
  if (o.cluster && !t.shared) {
    const sharding = t.columns.some((c) => c.startsWith('hostname ')) ? 'cityHash64(hostname)' : 'rand()';
    out.push(`CREATE TABLE IF NOT EXISTS ${o.database}.${t.name}${onCluster(o)} AS ${storage(o, t.name)}\n` +
      `ENGINE = Distributed(${o.cluster}, ${o.database}, ${t.name}_local, ${sharding})`);
  }
  return out;
}

function createView(o: SchemaOptions, name: string, to: string, select: string): string {
  return `CREATE MATERIALIZED VIEW IF NOT EXISTS ${o.database}.${name}${onCluster(o)} TO ${storage(o, to)}\nAS ${select}`;
}

// The wall-clock column: monotonic ts + the boot's offset, computed in the engine (see the header).
const timeFrom = (tsColumn: string): string[] => [
  'boot_offset_ns Int64 EPHEMERAL',
  `time DateTime64(9) DEFAULT fromUnixTimestamp64Nano(toInt64(${tsColumn}) + boot_offset_ns) CODEC(Delta, ZSTD(3))`,
];

// Raw events keep the boot offset instead of a materialized time (it would cost as much as ts_ns again).
const EVENT_TIME = 'fromUnixTimestamp64Nano(toInt64(ts_ns) + boot_offset_ns)';

/** The episode columns of migration 1 (migration 4 adds the rules-v2 ones). */
const episodeColumns = (): string[] => [
  'episode_id String CODEC(ZSTD(3))',
  `hostname ${lc}`, `boot_id ${lc}`, `device ${lc}`, `driver ${lc}`, `kernel_release ${lc}`,
  `trigger ${enum8(TriggerKind, V1.trigger)}`,
  'group_id UInt64 CODEC(ZSTD(1))',
  'acquire_ts_ns UInt64 CODEC(Delta, ZSTD(3))',
  'release_ts_ns UInt64 CODEC(Delta, ZSTD(3))',
  'revoke Bool',
  'lock_wait_ns UInt64 CODEC(ZSTD(1))', 'hold_ns UInt64 CODEC(ZSTD(1))', 'revoke_ns UInt64 CODEC(ZSTD(1))',
  'zap_ns UInt64 CODEC(ZSTD(1))', 'dmabuf_revoke_ns UInt64 CODEC(ZSTD(1))', 'move_ns UInt64 CODEC(ZSTD(1))',
  'zap_count UInt32', 'dmabuf_count UInt32', 'importer_count UInt32', 'legacy_mappings UInt32', 'dmabuf_mappings UInt32',
  'complete Bool',
  ...timeFrom('acquire_ts_ns'),
];

const LATENCY_LEVELS = '0.5, 0.9, 0.99, 0.999';
/** Metrics kept in the rollup: column prefix, episode column, which episodes count. A latency counts only where it
 * was measured (migration 4): the wait needs the LockAcquire seen (an episode that began before observation has
 * acquire_ts_ns = 0 and no wait, hold or revoke time); hold, revoke, zap and move time need a complete episode
 * (loss inside it can hide its release, a zap or the last revoking step, so its sums are lower bounds). */
export const LATENCY_METRICS = {
  revoke: { column: 'revoke_ns', when: 'revoke AND revoke_ns > 0 AND complete AND acquire_ts_ns > 0' },
  hold: { column: 'hold_ns', when: 'complete AND acquire_ts_ns > 0 AND release_ts_ns > 0' },
  wait: { column: 'lock_wait_ns', when: 'acquire_ts_ns > 0' },
  zap: { column: 'zap_ns', when: 'zap_count > 0 AND complete' },
  move: { column: 'move_ns', when: 'move_ns > 0 AND complete' },
} as const;
/** What migration 1's rollup view counted (every episode's numbers, measured or not). */
const LATENCY_METRICS_V1: Record<LatencyMetric, { column: string; when: string }> = {
  revoke: { column: 'revoke_ns', when: 'revoke AND revoke_ns > 0' },
  hold: { column: 'hold_ns', when: 'release_ts_ns > 0' },
  wait: { column: 'lock_wait_ns', when: '1' },
  zap: { column: 'zap_ns', when: 'zap_count > 0' },
  move: { column: 'move_ns', when: 'move_ns > 0' },
};
export type LatencyMetric = keyof typeof LATENCY_METRICS;
export const LATENCY_QUANTILES = [0.5, 0.9, 0.99, 0.999] as const;
/** The merge expression for a metric's quantile state (levels fixed by the state's type). */
export const quantileMerge = (m: LatencyMetric): string => quantileMergeOf(`${m}_q`);
export const quantileMergeOf = (stateColumn: string): string => `quantilesTDigestIfMerge(${LATENCY_LEVELS})(${stateColumn})`;

/** Dimensions every latency rollup is keyed by (after its time bucket). */
const ROLLUP_KEYS = ['hostname', 'driver', 'kernel_release', 'trigger'] as const;

/** Value columns of every latency rollup: counts, one t-digest state and the max per metric (trigger as of
 * migration 1). */
const rollupColumns = (): string[] => [
  `hostname ${lc}`, `driver ${lc}`, `kernel_release ${lc}`, `trigger ${enum8(TriggerKind, V1.trigger)}`,
  'episodes SimpleAggregateFunction(sum, UInt64)',
  'revoke_episodes SimpleAggregateFunction(sum, UInt64)',
  ...Object.keys(LATENCY_METRICS).flatMap((m) => [
    `${m}_samples SimpleAggregateFunction(sum, UInt64)`,
    `${m}_q AggregateFunction(quantilesTDigestIf(${LATENCY_LEVELS}), UInt64, UInt8)`,
    `${m}_max SimpleAggregateFunction(max, UInt64)`,
  ]),
];

/** SELECT that rolls a finer rollup (`from`, bucket column `fromBucket`) up into coarser buckets: the
 * t-digest states are merged into new states (…MergeState), counts summed, maxima kept. */
function rollUp(source: string, fromBucket: string, bucketExpr: string, bucket: string): string {
  return [
    'SELECT ' + [
      `${bucketExpr} AS ${bucket}`, ...ROLLUP_KEYS,
      'sum(episodes) AS episodes', 'sum(revoke_episodes) AS revoke_episodes',
      ...Object.keys(LATENCY_METRICS).flatMap((m) => [
        `sum(${m}_samples) AS ${m}_samples`,
        `quantilesTDigestIfMergeState(${LATENCY_LEVELS})(${m}_q) AS ${m}_q`,
        `max(${m}_max) AS ${m}_max`]),
    ].join(',\n  '),
    `FROM ${source}`,
    `GROUP BY ${bucket}, ${ROLLUP_KEYS.join(', ')}`,
  ].join('\n').replace(/\bsource_bucket\b/g, fromBucket);
}

/** The latency rollups, finest first: table, time-bucket column and bucket width. A query over a range
 * reads whole days from the daily table, whole hours from the hourly one and the ragged minutes at the
 * edges from the minute table (queries.ts), so every range keeps minute resolution. */
export const LATENCY_ROLLUPS = [
  { table: TABLES.latency, bucket: 'minute', seconds: 60 },
  { table: TABLES.latencyHourly, bucket: 'hour', seconds: 3600 },
  { table: TABLES.latencyDaily, bucket: 'day', seconds: 86400 },
] as const;

/** The episodes' deduplication key: migration 1 keyed an episode by its acquire; migration 4 adds the release of
 * an episode that began before observation (acquire_ts_ns = 0: several of them on one device and boot, after
 * collector restarts or loss, must stay apart). */
const EPISODE_KEY_V1 = ['hostname', 'boot_id', 'device', 'acquire_ts_ns'];
const EPISODE_KEY_V4 = [...EPISODE_KEY_V1, 'before_observation_release_ns'];

/** The MV that forwards from the ingest table only episodes whose key is not stored yet (see the header). */
function episodesDedupView(o: SchemaOptions, key: readonly string[]): string {
  const k = `(${key.join(', ')})`;
  return createView(o, 'episodes_dedup', TABLES.episodes, [
    `SELECT * FROM ${storage(o, TABLES.episodesIngest)}`,
    `WHERE ${k} NOT IN (`,
    `  SELECT ${key.join(', ')} FROM ${storage(o, TABLES.episodes)}`,
    `  WHERE ${k} IN`,
    `    (SELECT ${key.join(', ')} FROM ${storage(o, TABLES.episodesIngest)}))`,
    `LIMIT 1 BY ${key.join(', ')}`,
  ].join('\n'));
}

/** The MV that rolls episodes up into per-minute t-digest states, counting each metric where `when` holds. */
function latencyRollupView(o: SchemaOptions, metrics: Record<LatencyMetric, { column: string; when: string }>): string {
  return createView(o, 'episode_latency_1m_mv', TABLES.latency, [
    'SELECT ' + [
      'toStartOfMinute(time) AS minute', ...ROLLUP_KEYS,
      'count() AS episodes', 'countIf(revoke) AS revoke_episodes',
      ...Object.entries(metrics).flatMap(([m, { column, when }]) => [
        `countIf(${when}) AS ${m}_samples`,
        `quantilesTDigestIfState(${LATENCY_LEVELS})(${column}, toUInt8(${when})) AS ${m}_q`,
        `maxIf(${column}, ${when}) AS ${m}_max`]),
    ].join(',\n  '),
    `FROM ${storage(o, TABLES.episodes)}`,
    `GROUP BY minute, ${ROLLUP_KEYS.join(', ')}`,
  ].join('\n'));
}

/** ALTER TABLE of a table's column set: the storage table and, in cluster mode, the Distributed table over it (it
 * keeps its own copy of the columns). `storageOnly` clauses (MODIFY ORDER BY) go to the storage table's ALTER. */
function alterColumns(o: SchemaOptions, table: string, clauses: string[], storageOnly: string[] = []): string[] {
  const body = (cs: string[]): string => cs.map((c) => `  ${c}`).join(',\n');
  const out = [`ALTER TABLE ${storage(o, table)}${onCluster(o)}\n${body([...clauses, ...storageOnly])}`];
  if (o.cluster) out.push(`ALTER TABLE ${o.database}.${table}${onCluster(o)}\n${body(clauses)}`);
  return out;
}

const dropView = (o: SchemaOptions, name: string): string => `DROP VIEW IF EXISTS ${o.database}.${name}${onCluster(o)}`;

/** Host clock of a collector health sample: the collector's clock when it cut its newest batch (heartbeats too),
 * or the newest event ts for collectors that do not send it (0: neither seen). */
export const HOST_CLOCK_NS = 'greatest(now_ns, last_ts_ns)';

const migrations: Migration[] = [
  {
    version: 1,
    name: 'events, boot clock, episodes with deduplicating ingest, per-minute latency rollup, findings, host health',
    statements: (o) => [
      ...createTable(o, {
        name: TABLES.events,
        columns: [
          `hostname ${lc}`, `boot_id ${lc}`,
          'seq UInt64 CODEC(Delta, ZSTD(3))',
          'ts_ns UInt64 CODEC(Delta, ZSTD(3))',
          // stored (constant per boot: ~0 bytes after Delta) instead of a second 64-bit time column
          'boot_offset_ns Int64 CODEC(Delta, ZSTD(3))',
          `time DateTime64(9) ALIAS ${EVENT_TIME}`,
          'cpu UInt32 CODEC(ZSTD(3))', 'pid UInt32 CODEC(ZSTD(3))', 'tid UInt32 CODEC(ZSTD(3))',
          `comm ${lc}`, `device ${lc}`,
          `kind ${eventKindEnum(V1_EVENT_KINDS)}`,
          // body fields; each is default (sparse on disk) unless its kind uses it
          `driver ${lc}`, 'zap_bars_on_revoke Bool', 'dmabuf_bar_mmap Bool',
          'wait_ns UInt64 CODEC(ZSTD(3))',
          'start UInt64 CODEC(ZSTD(3))', 'length UInt64 CODEC(ZSTD(3))', 'duration_ns UInt64 CODEC(ZSTD(3))',
          `zap_target ${enum8(ZapTarget)}`, 'had_vmas Nullable(Bool)',
          'revoked Bool', 'dmabuf_count UInt32 CODEC(ZSTD(3))', 'device_has_vmas Nullable(Bool)',
          'dmabuf_id UInt64 CODEC(ZSTD(3))', 'importer_count UInt32 CODEC(ZSTD(3))',
          'bar UInt8', `backing ${enum8(Backing)}`, 'mapping_id UInt64 CODEC(ZSTD(3))', 'map_length UInt64 CODEC(ZSTD(3))',
          'snapshot Bool', 'ok Bool',
          `trigger ${enum8(TriggerKind, V1.trigger)}`, 'group_id UInt64 CODEC(ZSTD(3))',
        ],
        engine: { kind: 'ReplacingMergeTree' },
        partitionBy: `toDate(${EVENT_TIME})`,
        orderBy: '(hostname, boot_id, seq)',
        ttl: `toDateTime(${EVENT_TIME}) + INTERVAL ${o.eventsTtlDays} DAY`,
        settings: 'ttl_only_drop_parts = 1',
      }),
      ...createTable(o, {
        name: TABLES.bootClock,
        columns: [`hostname ${lc}`, `boot_id ${lc}`, 'offset_ns Int64', 'first_seen DateTime64(3)'],
        engine: { kind: 'ReplacingMergeTree' },
        orderBy: '(hostname, boot_id)',
      }),
      ...createTable(o, {
        name: TABLES.episodes,
        columns: episodeColumns().filter((c) => !c.includes('EPHEMERAL')).map((c) => c.replace(/ DEFAULT .* CODEC/, ' CODEC')),
        engine: { kind: 'ReplacingMergeTree' },
        partitionBy: 'toYYYYMM(time)',
        orderBy: '(hostname, boot_id, device, acquire_ts_ns)',
        indexes: ['INDEX time_idx time TYPE minmax GRANULARITY 1', 'INDEX episode_idx episode_id TYPE bloom_filter GRANULARITY 4'],
      }),
      ...createTable(o, { name: TABLES.episodesIngest, columns: episodeColumns(), engine: { kind: 'Null' } }),
      episodesDedupView(o, EPISODE_KEY_V1),
      ...createTable(o, {
        name: TABLES.latency,
        columns: ['minute DateTime', ...rollupColumns()],
        engine: { kind: 'AggregatingMergeTree' },
        partitionBy: 'toYYYYMM(minute)',
        orderBy: `(minute, ${ROLLUP_KEYS.join(', ')})`,
      }),
      latencyRollupView(o, LATENCY_METRICS_V1),
      ...createTable(o, {
        name: TABLES.findings,
        columns: [
          'finding_id String CODEC(ZSTD(3))',
          `kind ${enum8(FindingKind, V1.finding)}`, `severity ${enum8(Severity)}`,
          `hostname ${lc}`, `boot_id ${lc}`, `device ${lc}`, `driver ${lc}`, `kernel_release ${lc}`,
          'episode_id String CODEC(ZSTD(3))',
          'ts_ns UInt64 CODEC(Delta, ZSTD(3))',
          ...timeFrom('ts_ns'),
          'inconclusive Bool',
          'evidence String CODEC(ZSTD(3))',
        ],
        engine: { kind: 'ReplacingMergeTree' },
        partitionBy: 'toYYYYMM(time)',
        orderBy: '(hostname, boot_id, device, ts_ns, finding_id)',
        indexes: ['INDEX time_idx time TYPE minmax GRANULARITY 1'],
      }),
      ...createTable(o, {
        name: TABLES.hostHealth,
        columns: [
          'observed_at DateTime64(3)', `hostname ${lc}`, `boot_id ${lc}`, `kernel_release ${lc}`, `collector_version ${lc}`,
          `capabilities Array(${enum8(Capability, V1.capability)})`,
          'events UInt64', 'dropped UInt64', 'lost UInt64', 'lag UInt64', 'last_ts_ns UInt64',
        ],
        engine: { kind: 'ReplacingMergeTree' },
        partitionBy: 'toYYYYMM(observed_at)',
        orderBy: '(hostname, boot_id, observed_at)',
        ttl: `toDateTime(observed_at) + INTERVAL ${o.healthTtlDays} DAY`,
      }),
    ],
  },
  {
    version: 2,
    name: 'hourly and daily latency rollups (cascaded from the per-minute rollup), backfilled',
    // Long ranges merged millions of per-minute states (issue 6: /api/v1/latency over a week). The hourly
    // rollup's MV hangs off the minute table and the daily one off the hourly table: each insert block of
    // `episodes` cascades minute → hour → day, so they inherit the minute rollup's idempotency. Buckets are
    // UTC (toStartOfHour/Day in 'UTC'). The backfill empties and refills them from the minute rollup, so a
    // migration interrupted half way and run again is exact; like every migration it runs at start, before
    // this process writes (a writer running elsewhere during the backfill could be counted twice).
    statements: (o) => {
      const hourly = TABLES.latencyHourly;
      const daily = TABLES.latencyDaily;
      const hourOf = "toStartOfHour(source_bucket, 'UTC')";
      const dayOf = "toStartOfDay(source_bucket, 'UTC')";
      const dist = (name: string): string => `${o.database}.${name}`;
      return [
        ...createTable(o, {
          name: hourly, columns: ["hour DateTime('UTC')", ...rollupColumns()], engine: { kind: 'AggregatingMergeTree' },
          partitionBy: 'toYYYYMM(hour)', orderBy: `(hour, ${ROLLUP_KEYS.join(', ')})`,
        }),
        ...createTable(o, {
          name: daily, columns: ["day DateTime('UTC')", ...rollupColumns()], engine: { kind: 'AggregatingMergeTree' },
          partitionBy: 'toYear(day)', orderBy: `(day, ${ROLLUP_KEYS.join(', ')})`,
        }),
        createView(o, `${hourly}_mv`, hourly, rollUp(storage(o, TABLES.latency), 'minute', hourOf, 'hour')),
        createView(o, `${daily}_mv`, daily, rollUp(storage(o, hourly), 'hour', dayOf, 'day')),
        // backfill what the minute rollup already holds (a fresh store: nothing)
        `TRUNCATE TABLE IF EXISTS ${storage(o, hourly)}${onCluster(o)}`,
        `TRUNCATE TABLE IF EXISTS ${storage(o, daily)}${onCluster(o)}`,
        // the hourly insert cascades into the daily table through its MV
        `INSERT INTO ${dist(hourly)}\n${rollUp(dist(TABLES.latency), 'minute', hourOf, 'hour')}`,
      ];
    },
  },
  {
    version: 3,
    name: 'compact parts for fresh inserts; ZSTD(1) for the raw events\' one-byte and dictionary columns',
    // Measured on 700k simulated events (BENCHMARKS.md): an insert of 100k rows made a wide part (two files per
    // column, ~70 files for events), and creating and merging those files was a visible share of the engine's
    // CPU; compact parts (one file) until 128 MiB cut the raw-event insert cost ≈ 30%. Enum8/Bool/UInt8 and
    // LowCardinality columns had the default LZ4; ZSTD(1) takes them from ≈ 4 to ≈ 1.5 bytes per event in all
    // (11.6 → 10.1 bytes per event after merges) at no measurable CPU. Both apply to parts written from now on.
    statements: (o) => {
      const wide = 'min_bytes_for_wide_part = 134217728';
      const lowCardinality = ['hostname', 'boot_id', 'comm', 'device', 'driver'];
      const oneByte = ['kind', 'zap_bars_on_revoke', 'dmabuf_bar_mmap', 'zap_target', 'had_vmas', 'revoked', 'device_has_vmas',
        'bar', 'backing', 'snapshot', 'ok', 'trigger'];
      return [
        ...[TABLES.events, TABLES.episodes, TABLES.findings].map((t) => `ALTER TABLE ${storage(o, t)}${onCluster(o)} MODIFY SETTING ${wide}`),
        `ALTER TABLE ${storage(o, TABLES.events)}${onCluster(o)}\n` +
          [...lowCardinality, ...oneByte].map((c) => `  MODIFY COLUMN ${c} CODEC(ZSTD(1))`).join(',\n'),
      ];
    },
  },
  {
    version: 4,
    name: 'rules v2 (docs/rules.md): episode task, trigger return, stale triggers, intended empty zaps; episodes that began before observation; latency only where measured; FAULT_WHILE_REVOKED; new raw-event bodies and DeviceInfo state; collector clock in host health',
    // Enum columns widen in place (metadata only). zap_bars_on_revoke becomes Nullable like the other DeviceInfo
    // state fields (absent = not read, never a default): a rewrite of that one-byte column, old rows keep their
    // value (the field was always sent then). Raw-event columns of the new bodies are sparse like the others.
    // Findings keep `evidence` as a String that holds a JSON object (queried with JSONExtract*): ClickHouse's JSON
    // type drops null members (an unknown fact) and reorders keys, and the evidence is read whole far more often
    // than by path. The episodes' key gains before_observation_release_ns (0 for every episode whose acquire was
    // seen, so old rows and their re-ingest keep their key); the dedup and rollup views are re-created with the new
    // key and the measured-only latency conditions (like migration 2, run at start before this process writes).
    statements: (o) => {
      const trigger = `trigger ${enum8(TriggerKind, V4.trigger)}`;
      const episodeAdds = [
        'ADD COLUMN IF NOT EXISTS pid UInt32 CODEC(ZSTD(1))', `ADD COLUMN IF NOT EXISTS comm ${lc} CODEC(ZSTD(1))`,
        'ADD COLUMN IF NOT EXISTS trigger_ret Int32 CODEC(ZSTD(1))', 'ADD COLUMN IF NOT EXISTS stale_triggers UInt32 CODEC(ZSTD(1))',
        'ADD COLUMN IF NOT EXISTS intended_empty_zaps UInt32 CODEC(ZSTD(1))',
        'ADD COLUMN IF NOT EXISTS before_observation_release_ns UInt64 CODEC(ZSTD(1))',
      ];
      return [
        ...alterColumns(o, TABLES.events, [
          `MODIFY COLUMN kind ${eventKindEnum(EVENT_KINDS)}`, `MODIFY COLUMN ${trigger}`,
          'MODIFY COLUMN zap_bars_on_revoke Nullable(Bool)',
          // DeviceInfo state (Nullable: absent = not read)
          'ADD COLUMN IF NOT EXISTS memory_enabled Nullable(Bool) CODEC(ZSTD(1))',
          'ADD COLUMN IF NOT EXISTS power_state Nullable(UInt8) CODEC(ZSTD(1))',
          'ADD COLUMN IF NOT EXISTS device_revoked Nullable(Bool) CODEC(ZSTD(1))',
          'ADD COLUMN IF NOT EXISTS open_count Nullable(UInt32) CODEC(ZSTD(1))',
          'ADD COLUMN IF NOT EXISTS no_command_memory Nullable(Bool) CODEC(ZSTD(1))',
          'ADD COLUMN IF NOT EXISTS custom_vm_ops_bars Nullable(UInt8) CODEC(ZSTD(1))',
          // TriggerEnd (kind in `trigger`), ResetFunction (and duration_ns), PowerTransition (and duration_ns)
          'ADD COLUMN IF NOT EXISTS ret Int32 CODEC(ZSTD(3))',
          'ADD COLUMN IF NOT EXISTS power_from UInt8 CODEC(ZSTD(1))', 'ADD COLUMN IF NOT EXISTS power_to UInt8 CODEC(ZSTD(1))',
        ]),
        // a key column can only join the sorting key in the ALTER that adds it
        ...alterColumns(o, TABLES.episodes, [`MODIFY COLUMN ${trigger}`, ...episodeAdds], [`MODIFY ORDER BY (${EPISODE_KEY_V4.join(', ')})`]),
        ...alterColumns(o, TABLES.episodesIngest, [`MODIFY COLUMN ${trigger}`, ...episodeAdds,
          // an episode that began before observation has no acquire: its time is its release
          'MODIFY COLUMN time DateTime64(9) DEFAULT fromUnixTimestamp64Nano(toInt64(if(acquire_ts_ns > 0, acquire_ts_ns, release_ts_ns)) ' +
            '+ boot_offset_ns) CODEC(Delta, ZSTD(3))']),
        ...LATENCY_ROLLUPS.flatMap(({ table }) => alterColumns(o, table, [`MODIFY COLUMN ${trigger}`])),
        dropView(o, 'episodes_dedup'),
        episodesDedupView(o, EPISODE_KEY_V4),
        dropView(o, 'episode_latency_1m_mv'),
        latencyRollupView(o, LATENCY_METRICS),
        ...alterColumns(o, TABLES.findings, [`MODIFY COLUMN kind ${enum8(FindingKind, V4.finding)}`]),
        `ALTER TABLE ${storage(o, TABLES.findings)}${onCluster(o)} COMMENT COLUMN evidence ` +
          `'a JSON object: rule (id), mirrors (kernel function), the facts, unknown (why inconclusive)'`,
        ...alterColumns(o, TABLES.hostHealth, ['ADD COLUMN IF NOT EXISTS now_ns UInt64',
          `MODIFY COLUMN capabilities Array(${enum8(Capability, V4.capability)})`]),
      ];
    },
  },
  {
    version: 5,
    name: 'one schema owner (issue 15): the alerting tables, the rule evaluator lease, the pipeline\'s checkpoints and dead-letter counts',
    // These were created by their own modules (IF NOT EXISTS) before; on a store that has them this is a no-op. In
    // cluster mode they are shared: one replica set for the whole cluster, every API and pipeline reads them whole.
    statements: (o) => [
      ...createTable(o, { name: TABLES.alertingRules, shared: true, engine: { kind: 'ReplacingMergeTree', version: 'version' },
        columns: ['id String', 'version UInt64', 'deleted UInt8', 'body String CODEC(ZSTD(3))', 'updated_at_ms Int64'], orderBy: 'id' }),
      ...createTable(o, { name: TABLES.alertingAlerts, shared: true, engine: { kind: 'ReplacingMergeTree', version: 'version' },
        columns: ['fingerprint String', 'version UInt64', 'deleted UInt8', `rule_id ${lc}`, "state Enum8('pending' = 1, 'firing' = 2, 'resolved' = 3)",
          'labels Map(String, String)', 'annotations Map(String, String)', 'value Float64', 'active_at_ms Int64', 'fired_at_ms Int64',
          'resolved_at_ms Int64', 'updated_at_ms Int64'], orderBy: 'fingerprint' }),
      ...createTable(o, { name: TABLES.alertingSilences, shared: true, engine: { kind: 'ReplacingMergeTree', version: 'version' },
        columns: ['id String', 'version UInt64', 'matchers String', 'starts_at_ms Int64', 'ends_at_ms Int64', 'created_by String', 'comment String',
          'updated_at_ms Int64'], orderBy: 'id' }),
      ...createTable(o, { name: TABLES.alertingNotifications, shared: true, engine: { kind: 'MergeTree' },
        columns: ['at_ms Int64', `receiver ${lc}`, 'group_key String', `status ${lc}`, 'alerts UInt32', 'fingerprints String', 'attempts UInt8',
          'ok Bool', 'error String', 'http_status UInt16'], orderBy: '(receiver, group_key, at_ms)', ttl: 'toDateTime(intDiv(at_ms, 1000)) + INTERVAL 30 DAY' }),
      // one row per API process that wants to evaluate: the oldest claim still renewed holds the lease
      ...createTable(o, { name: TABLES.alertingLease, shared: true, engine: { kind: 'ReplacingMergeTree', version: 'renewed_ms' },
        columns: ['name String', 'holder String', 'since_ms Int64', 'renewed_ms Int64'], orderBy: '(name, holder)',
        ttl: 'toDateTime(intDiv(renewed_ms, 1000)) + INTERVAL 1 DAY' }),
      // ReplacingMergeTree(offset): the newest checkpoint of a partition wins; any (offset, state) pair is a valid
      // restart point whoever wrote it (it is written only after the outputs before `offset` are durable)
      ...createTable(o, { name: TABLES.checkpoints, shared: true, engine: { kind: 'ReplacingMergeTree', version: 'offset' },
        columns: ['group String', 'topic String', 'partition UInt32', 'offset UInt64', 'state String CODEC(ZSTD(3))',
          "written_at DateTime64(3, 'UTC')", 'writer String'], orderBy: '(group, topic, partition)' }),
      ...createTable(o, { name: TABLES.deadLetters, shared: true, engine: { kind: 'SummingMergeTree', version: 'count' },
        columns: ["time DateTime('UTC')", `topic ${lc}`, 'partition UInt32', `reason ${lc}`, 'count UInt64'],
        orderBy: '(time, topic, partition, reason)', ttl: 'time + INTERVAL 90 DAY' }),
    ],
  },
  {
    version: 6,
    name: 'finding_events (issue 17): each finding\'s window of raw events, kept with the finding after the events TTL, for explain',
    // Written by the store when it flushes findings (clickhouse-store.ts): an INSERT … SELECT from `events` of the
    // device's events in the finding's window (services/report/explain.ts explainSpan: from a minute before the
    // episode's lock wait to a second after its release), the newest 2,000 per finding (EXPLAIN_LIMITS.maxEvents).
    // The columns are the raw events' as of migration 4 (a later migration that widens an enum of `events` widens it
    // here too); no TTL: the rows live as long as the finding. Keyed by (finding_id, seq): a re-copy replaces. Findings
    // are looked up by id (explain, GET /api/v1/findings/{id}/explain): a bloom filter index on finding_id.
    statements: (o) => [...createTable(o, {
      name: TABLES.findingEvents,
      columns: [
        'finding_id String CODEC(ZSTD(3))',
        `hostname ${lc}`, `boot_id ${lc}`,
        'seq UInt64 CODEC(Delta, ZSTD(3))', 'ts_ns UInt64 CODEC(Delta, ZSTD(3))', 'boot_offset_ns Int64 CODEC(Delta, ZSTD(3))',
        'cpu UInt32 CODEC(ZSTD(3))', 'pid UInt32 CODEC(ZSTD(3))', 'tid UInt32 CODEC(ZSTD(3))', `comm ${lc}`, `device ${lc}`,
        `kind ${eventKindEnum(EVENT_KINDS)}`,
        `driver ${lc}`, 'zap_bars_on_revoke Nullable(Bool)', 'dmabuf_bar_mmap Bool', 'wait_ns UInt64 CODEC(ZSTD(3))',
        'start UInt64 CODEC(ZSTD(3))', 'length UInt64 CODEC(ZSTD(3))', 'duration_ns UInt64 CODEC(ZSTD(3))',
        `zap_target ${enum8(ZapTarget)}`, 'had_vmas Nullable(Bool)', 'revoked Bool', 'dmabuf_count UInt32 CODEC(ZSTD(3))',
        'device_has_vmas Nullable(Bool)', 'dmabuf_id UInt64 CODEC(ZSTD(3))', 'importer_count UInt32 CODEC(ZSTD(3))',
        'bar UInt8', `backing ${enum8(Backing)}`, 'mapping_id UInt64 CODEC(ZSTD(3))', 'map_length UInt64 CODEC(ZSTD(3))',
        'snapshot Bool', 'ok Bool', `trigger ${enum8(TriggerKind, V4.trigger)}`, 'group_id UInt64 CODEC(ZSTD(3))',
        'memory_enabled Nullable(Bool)', 'power_state Nullable(UInt8)', 'device_revoked Nullable(Bool)', 'open_count Nullable(UInt32)',
        'no_command_memory Nullable(Bool)', 'custom_vm_ops_bars Nullable(UInt8)', 'ret Int32 CODEC(ZSTD(3))',
        'power_from UInt8', 'power_to UInt8',
      ],
      engine: { kind: 'ReplacingMergeTree' },
      orderBy: '(finding_id, seq)',
      settings: 'min_bytes_for_wide_part = 134217728',
    }),
    `ALTER TABLE ${storage(o, TABLES.findings)}${onCluster(o)} ADD INDEX IF NOT EXISTS finding_idx finding_id TYPE bloom_filter GRANULARITY 4`,
    `ALTER TABLE ${storage(o, TABLES.findings)}${onCluster(o)} MATERIALIZE INDEX finding_idx`],
  },
  {
    version: 7,
    name: 'who and which code path (issue 17): cgroup and stack ids on raw events; the acquiring task\'s workload (cgroup id, VM, pod, container) and the acquire\'s stack on episodes; the per-boot cgroup and kernel stack tables',
    // The dedup view is SELECT * of the ingest table, expanded when it was created: re-created after the ingest table
    // gains columns (as in migration 4). The lookup tables are small (one row per cgroup or distinct stack and boot)
    // and referenced by findings that outlive the raw events: no TTL. vm / pod_uid / pod_name are what the cgroup path
    // names (core/workload.ts), stored with the table so that readers need no parser.
    statements: (o) => {
      const episodeAdds = [
        'ADD COLUMN IF NOT EXISTS cgroup_id UInt64 CODEC(ZSTD(1))', `ADD COLUMN IF NOT EXISTS vm ${lc} CODEC(ZSTD(1))`,
        `ADD COLUMN IF NOT EXISTS pod_uid ${lc} CODEC(ZSTD(1))`, `ADD COLUMN IF NOT EXISTS pod_name ${lc} CODEC(ZSTD(1))`,
        'ADD COLUMN IF NOT EXISTS container_id String CODEC(ZSTD(3))', 'ADD COLUMN IF NOT EXISTS acquire_stack_id UInt64 CODEC(ZSTD(1))',
      ];
      return [
        ...alterColumns(o, TABLES.events, ['ADD COLUMN IF NOT EXISTS cgroup_id UInt64 CODEC(ZSTD(3))',
          'ADD COLUMN IF NOT EXISTS stack_id UInt64 CODEC(ZSTD(3))']),
        // finding_events keeps raw events (migration 6) with the raw events' columns
        ...alterColumns(o, TABLES.findingEvents, ['ADD COLUMN IF NOT EXISTS cgroup_id UInt64 CODEC(ZSTD(3))',
          'ADD COLUMN IF NOT EXISTS stack_id UInt64 CODEC(ZSTD(3))']),
        ...alterColumns(o, TABLES.episodes, episodeAdds),
        ...alterColumns(o, TABLES.episodesIngest, episodeAdds),
        dropView(o, 'episodes_dedup'),
        episodesDedupView(o, EPISODE_KEY_V4),
        ...createTable(o, {
          name: TABLES.cgroups,
          columns: [`hostname ${lc}`, `boot_id ${lc}`, 'cgroup_id UInt64', 'path String CODEC(ZSTD(3))', `vm ${lc}`, `pod_uid ${lc}`,
            `pod_name ${lc}`, 'container_id String CODEC(ZSTD(3))'],
          engine: { kind: 'ReplacingMergeTree' },
          orderBy: '(hostname, boot_id, cgroup_id)',
        }),
        ...createTable(o, {
          name: TABLES.kernelStacks,
          columns: [`hostname ${lc}`, `boot_id ${lc}`, 'stack_id UInt64', 'frames Array(String) CODEC(ZSTD(3))'],
          engine: { kind: 'ReplacingMergeTree' },
          orderBy: '(hostname, boot_id, stack_id)',
        }),
      ];
    },
  },
];

export function listMigrations(): readonly Migration[] {
  return migrations;
}

/** The bookkeeping table and database: created before anything else, every start. */
export function bootstrapStatements(o: SchemaOptions): string[] {
  checkOptions(o);
  return [
    `CREATE DATABASE IF NOT EXISTS ${o.database}${onCluster(o)}`,
    ...createTable(o, {
      name: TABLES.migrations,
      columns: ['version UInt32', 'name String', 'checksum String', 'applied_at DateTime64(3)'],
      engine: { kind: 'ReplacingMergeTree' },
      orderBy: 'version',
    }),
  ];
}

/** The whole schema as DDL text (what `--cluster NAME` renders; also what migrate runs). */
export function renderSchema(o: SchemaOptions): string {
  checkOptions(o);
  const all = [...bootstrapStatements(o), ...migrations.flatMap((m) => m.statements(o))];
  return all.map((s) => `${s};\n`).join('\n');
}

/** A stable fingerprint of a migration's statements (for the single-node rendering), recorded when applied. */
export function migrationChecksum(m: Migration, o: SchemaOptions): string {
  const text = m.statements({ ...o, cluster: undefined }).join('\n');
  let h = 0xcbf29ce484222325n;
  for (let i = 0; i < text.length; i++) h = BigInt.asUintN(64, (h ^ BigInt(text.charCodeAt(i))) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
}
