// The fleet pipeline's bookkeeping in the store (tables owned by the store's migrations, services/store/schema.ts):
//   correlator_checkpoints — correlator state per (group, topic, partition) with the offset it corresponds to:
//     a restart restores it and seeks there instead of replaying the partition from its earliest offset;
//   dlq_events — messages dead-lettered, counted per minute, topic, partition and reason (Collector health).
// Every value goes in as data (JSONEachRow body or query parameters), never spliced into SQL.
import type { ClickHouseClient } from '@clickhouse/client';
import { checkIdentifier, TABLES } from '../../store/schema.js';

export const CHECKPOINTS_TABLE = TABLES.checkpoints;
export const DLQ_TABLE = TABLES.deadLetters;

export interface Checkpoint { partition: number; offset: number; state: string }
export interface DlqCount { timeMs: number; topic: string; partition: number; reason: string; count: number }

/** A DLQ reason without the per-message detail, so counts group (e.g. "corrupt protobuf", "invalid batch"). */
export function reasonClass(reason: string): string {
  const i = reason.indexOf(':');
  return (i > 0 ? reason.slice(0, i) : reason).slice(0, 100);
}

export class ConsumerBookkeeping {
  private readonly db: string;
  constructor(private readonly client: ClickHouseClient, database: string, private readonly writer = `pid ${process.pid}`) {
    this.db = checkIdentifier('database', database);
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
