// The store as the API's plugins see it: one decoration, `app.store` (the ClickHouse client, its database, the
// read queries and the clock), registered once at the root (services/api/app.ts).
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { checkIdentifier } from '../store/schema.js';
import { StoreReader } from '../store/queries.js';

export interface ApiStore {
  client: ClickHouseClient;
  database: string;
  reader: StoreReader;
  /** Clock (ms; tests pin it). */
  now: () => number;
}

export interface StorePluginOptions {
  client: ClickHouseClient;
  /** Default revokescope. */
  database?: string;
  /** Read queries (default: a StoreReader over client and database). */
  reader?: StoreReader;
  now?: () => number;
}

declare module 'fastify' {
  interface FastifyInstance {
    store: ApiStore;
  }
}

async function storePlugin(app: FastifyInstance, o: StorePluginOptions): Promise<void> {
  const database = checkIdentifier('database', o.database ?? 'revokescope');
  app.decorate('store', { client: o.client, database, reader: o.reader ?? new StoreReader(o.client, database), now: o.now ?? Date.now });
}

export default fp(storePlugin, { name: 'revokescope-store', fastify: '5.x' });
