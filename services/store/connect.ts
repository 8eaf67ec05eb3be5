// One @clickhouse/client for both modes: embedded chDB (a real ClickHouse engine in this process, data in a
// directory) or a ClickHouse server by URL. Everything above this file is the same code in both.
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';

export interface ConnectOptions {
  /** Embedded mode: chDB data directory (the engine's files go to `<dataDir>/chdb`). */
  dataDir?: string;
  /** Fleet mode: ClickHouse server URL; wins over dataDir. */
  url?: string;
  username?: string;
  password?: string;
}

export interface StoreConnection {
  client: ClickHouseClient;
  /** Another client to the same store, for work that must not queue behind `client`'s queries. chDB runs one
   * query at a time per connection, so embedded mode opens a new connection to the same directory (close it
   * when done); a server serves concurrent requests on one client, so there it is `client` itself. */
  lane(): ClickHouseClient;
  mode: 'chdb' | 'server';
  /** Where the data lives: the chDB directory or the server URL (without credentials). */
  location: string;
}

/** chDB clients made here, with the directory their inserts spool through (writer.ts: INSERT … FROM INFILE). */
const chdbSpoolDirs = new WeakMap<ClickHouseClient, string>();
export function chdbSpoolDir(client: ClickHouseClient): string | undefined { return chdbSpoolDirs.get(client); }

export async function connect(opts: ConnectOptions): Promise<StoreConnection> {
  if (opts.url) {
    const u = new URL(opts.url);
    const client = createClient({
      url: opts.url,
      username: opts.username ?? (decodeURIComponent(u.username) || undefined),
      password: opts.password ?? (decodeURIComponent(u.password) || undefined),
      request_timeout: 120_000,
      compression: { request: true, response: true },
      clickhouse_settings: { date_time_output_format: 'simple' },
    });
    u.username = '';
    u.password = '';
    return { client, lane: () => client, mode: 'server', location: u.toString() };
  }
  const dir = resolve(opts.dataDir ?? './data', 'chdb');
  mkdirSync(dir, { recursive: true });
  // Loaded lazily: fleet deployments need not load the embedded engine.
  const { createChdbConnection } = await import('chdb/connection');
  // chdb types its Connection against @clickhouse/client-common 1.23.0, the client ships 1.23.1's copy of the
  // same interface: identical at runtime, different declarations.
  type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];
  const open = (): ClickHouseClient => {
    const c = createClient({ connection: createChdbConnection({ path: dir }) as unknown as ClientConnection });
    chdbSpoolDirs.set(c, resolve(opts.dataDir ?? './data', 'spool'));
    return c;
  };
  return { client: open(), lane: open, mode: 'chdb', location: dir };
}
