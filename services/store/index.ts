// The store: one ClickHouse adapter (chDB embedded or a server), its schema and its read queries.
import { dirname, join } from 'node:path';
import { connect, type ConnectOptions, type StoreConnection } from './connect.js';
import { ClickHouseStore, type ClickHouseStoreOptions } from './clickhouse-store.js';
import { StoreReader } from './queries.js';

export type { BootSeen, EventStore, HostHealth } from './types.js';
export { ClickHouseStore, type ClickHouseStoreOptions } from './clickhouse-store.js';
export { StoreReader, LATENCY_DIMENSIONS, type EpisodeFilter, type FindingFilter, type LatencyQuery, type LatencyRow,
  type LatencyDimension, type Page } from './queries.js';
export { connect, type ConnectOptions, type StoreConnection } from './connect.js';
export { renderSchema, listMigrations, defaultSchemaOptions, LATENCY_METRICS, LATENCY_QUANTILES, TABLES,
  type SchemaOptions, type LatencyMetric } from './schema.js';

export interface OpenStore {
  store: ClickHouseStore;
  reader: StoreReader;
  connection: StoreConnection;
}

/** Connects, migrates (safe at every start) and returns the writer and the reader over one client (raw-event
 * inserts get a lane of their own: StoreConnection.lane). */
export async function openStore(conn: ConnectOptions, opts: ClickHouseStoreOptions = {}): Promise<OpenStore> {
  const connection = await connect(conn);
  const spoolDir = connection.mode === 'chdb' ? join(dirname(connection.location), 'spool') : undefined;
  const store = new ClickHouseStore(connection.client, { spoolDir, eventsClient: connection.lane(), ...opts });
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return { store, reader: new StoreReader(connection.client, store.schema.database), connection };
}
