// The fleet correlator's own tables (DESIGN §5, §8), next to the store's schema but owned by the transport:
//   correlator_checkpoints — correlator state per (group, topic, partition) with the offset it corresponds to:
//     a restart restores it and seeks there instead of replaying the partition from its earliest offset;
//   dlq_events — messages sent to the DLQ, counted per minute, topic, partition and reason (Collector health).
// Idempotent DDL (IF NOT EXISTS) run at every start; every value goes in as data (JSONEachRow body or query
// parameters), never spliced into SQL. Identifiers (database, cluster) are checked.
import type { ClickHouseClient } from '@clickhouse/client';

export const CHECKPOINTS_TABLE = 'correlator_checkpoints';
export const DLQ_TABLE = 'dlq_events';

export interface Checkpoint { partition: number; offset: number; state: string }
export interface DlqCount { timeMs: number; topic: string; partition: number; reason: string; count: number }

function ident(name: string, v: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(v)) throw new Error(`${name} '${v}' is not a plain identifier`);
  return v;
}

/** DDL for both tables. With a cluster: Replicated engines ON CLUSTER, one replica set for the whole cluster
 * (no sharding: a few rows per partition; every correlator must read every checkpoint wherever it connects). */
export function bookkeepingDdl(database: string, cluster?: string): string[] {
  const db = ident('database', database);
  const on = cluster ? ` ON CLUSTER ${ident('cluster', cluster)}` : '';
  const engine = (kind: string, table: string, arg = '') => cluster
    ? `Replicated${kind}('/clickhouse/tables/all/${db}/${table}', '{replica}'${arg ? `, ${arg}` : ''})`
    : `${kind}(${arg})`;
  return [
    `CREATE DATABASE IF NOT EXISTS ${db}${on}`,
    // ReplacingMergeTree(offset): the newest checkpoint of a partition wins; any (offset, state) pair is a
    // valid restart point whoever wrote it (it is written only after the outputs before `offset` are durable)
    `CREATE TABLE IF NOT EXISTS ${db}.${CHECKPOINTS_TABLE}${on} (
  group String, topic String, partition UInt32, offset UInt64,
  state String CODEC(ZSTD(3)), written_at DateTime64(3, 'UTC'), writer String
) ENGINE = ${engine('ReplacingMergeTree', CHECKPOINTS_TABLE, 'offset')}
ORDER BY (group, topic, partition)`,
    `CREATE TABLE IF NOT EXISTS ${db}.${DLQ_TABLE}${on} (
  time DateTime('UTC'), topic LowCardinality(String), partition UInt32, reason LowCardinality(String), count UInt64
) ENGINE = ${engine('SummingMergeTree', DLQ_TABLE, 'count')}
ORDER BY (time, topic, partition, reason)
TTL time + INTERVAL 90 DAY`,
  ];
}

/** A DLQ reason without the per-message detail, so counts group (e.g. "corrupt protobuf", "invalid batch"). */
export function reasonClass(reason: string): string {
  const i = reason.indexOf(':');
  return (i > 0 ? reason.slice(0, i) : reason).slice(0, 100);
}

export class ConsumerBookkeeping {
  private readonly db: string;
  constructor(private readonly client: ClickHouseClient, database: string, private readonly cluster?: string,
    private readonly writer = `pid ${process.pid}`) {
    this.db = ident('database', database);
  }

  async migrate(): Promise<void> {
    for (const q of bookkeepingDdl(this.db, this.cluster)) await this.client.command({ query: q });
  }

  /** The newest checkpoint of each partition of `topic` for `group`. */
  async latest(group: string, topic: string, partitions: number[]): Promise<Map<number, Checkpoint>> {
    const out = new Map<number, Checkpoint>();
    if (partitions.length === 0) return out;
    const rs = await this.client.query({
      query: `SELECT partition, max(offset) AS newest, argMax(state, offset) AS saved
        FROM ${this.db}.${CHECKPOINTS_TABLE}
        WHERE group = {group:String} AND topic = {topic:String} AND partition IN {partitions:Array(UInt32)}
        GROUP BY partition`,
      query_params: { group, topic, partitions },
      format: 'JSONEachRow',
    });
    for (const r of await rs.json<{ partition: number; newest: string; saved: string }>()) {
      out.set(Number(r.partition), { partition: Number(r.partition), offset: Number(r.newest), state: r.saved });
    }
    return out;
  }

  /** Written synchronously (the insert returns once the rows are in the table). */
  async write(group: string, topic: string, cps: Checkpoint[]): Promise<void> {
    if (cps.length === 0) return;
    const now = Date.now();
    await this.client.insert({
      table: `${this.db}.${CHECKPOINTS_TABLE}`, format: 'JSONEachRow',
      values: cps.map((c) => ({ group, topic, partition: c.partition, offset: c.offset, state: c.state,
        written_at: new Date(now).toISOString().replace('T', ' ').replace('Z', ''), writer: this.writer })),
      clickhouse_settings: { async_insert: 0, date_time_input_format: 'best_effort' },
    });
  }

  async writeDlq(rows: DlqCount[]): Promise<void> {
    if (rows.length === 0) return;
    await this.client.insert({
      table: `${this.db}.${DLQ_TABLE}`, format: 'JSONEachRow',
      values: rows.map((r) => ({ time: Math.floor(r.timeMs / 1000), topic: r.topic, partition: r.partition, reason: r.reason, count: r.count })),
      clickhouse_settings: { async_insert: 0 },
    });
  }
}
