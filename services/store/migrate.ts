// The one place the schema is applied: every table (events, episodes, findings, rollups, host health, the alerting
// tables, the pipeline's bookkeeping) is a numbered migration in schema.ts, applied here, oldest first, once each.
import type { ClickHouseClient } from '@clickhouse/client';
import { bootstrapStatements, listMigrations, migrationChecksum, TABLES, type SchemaOptions } from './schema.js';

/** Applies the migrations not applied yet (`through`: only up to that version, as an older release would have;
 * tests build old stores with it). Safe at every start and from several processes: every statement is IF NOT
 * EXISTS, and a migration interrupted half way is simply run again. */
export async function applyMigrations(client: ClickHouseClient, schema: SchemaOptions,
  o: { through?: number; now?: () => number } = {}): Promise<void> {
  for (const query of bootstrapStatements(schema)) await client.command({ query });
  const table = `${schema.database}.${TABLES.migrations}`;
  const rs = await client.query({ query: `SELECT version FROM ${table} FINAL`, format: 'JSONEachRow' });
  const applied = new Set((await rs.json<{ version: number }>()).map((r) => Number(r.version)));
  const now = o.now ?? Date.now;
  for (const m of listMigrations()) {
    if (applied.has(m.version) || m.version > (o.through ?? Infinity)) continue;
    for (const query of m.statements(schema)) await client.command({ query });
    await client.insert({
      table, format: 'JSONEachRow',
      values: [{ version: m.version, name: m.name, checksum: migrationChecksum(m, schema), applied_at: now() }],
      clickhouse_settings: { async_insert: 0 },
    });
  }
}
