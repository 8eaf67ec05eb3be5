// `revokescope serve`: the read API alone, over an existing store (chDB data dir or a ClickHouse server).
import { parseArgs } from 'node:util';
import { buildApi, listen } from '../../api/server.js';
import { onSignals, storeFlags, waitForSignal } from '../../pipeline/cli.js';
import { connectOptionsFrom, defaultSchemaOptions, openStore } from '../../store/index.js';

const HELP = `usage: revokescope serve [options]

Serves the API (default on 127.0.0.1) from the store a previous \`revokescope run\` (or the fleet correlator) wrote.

  --port N               (default 8080; 0 = any free port; env REVOKESCOPE_API_PORT)
  --host ADDR            listen address (default 127.0.0.1; 0.0.0.0 in a container; env REVOKESCOPE_API_HOST)
  --data-dir DIR         chDB data directory (default ./data)
  --clickhouse-url URL   a ClickHouse server instead (env REVOKESCOPE_CLICKHOUSE_URL, _USER, _PASSWORD, _DATABASE)
  --clickhouse-user U, --clickhouse-password P, --clickhouse-database D, --cluster NAME
`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false,
      options: { help: { type: 'boolean', short: 'h' }, port: { type: 'string' }, host: { type: 'string' }, ...storeFlags } }));
  } catch (err) {
    console.error(`revokescope serve: ${(err as Error).message}`);
    return 2;
  }
  if (values.help) { console.log(HELP); return 0; }
  const portText = values.port ?? process.env.REVOKESCOPE_API_PORT;
  const port = portText === undefined ? 8080 : Number(portText);
  if (!/^[0-9]+$/.test(portText ?? '0') || port > 65535) {
    console.error(`revokescope serve: --port must be an integer 0..65535, got '${portText}'`);
    return 2;
  }
  const host = values.host ?? process.env.REVOKESCOPE_API_HOST ?? '127.0.0.1';
  const controller = new AbortController();
  const signals = onSignals(() => controller.abort());
  const database = values['clickhouse-database'] ?? process.env.REVOKESCOPE_CLICKHOUSE_DATABASE ?? defaultSchemaOptions.database;
  const opened = await openStore(connectOptionsFrom(values), { schema: { database, cluster: values.cluster } });
  const api = await buildApi({ reader: opened.reader });
  try {
    const url = await listen(api, port, host);
    console.log(`API: ${url}/api/v1/episodes  ${url}/api/v1/findings  ${url}/api/v1/latency  (store: ${opened.connection.location}; Ctrl-C to stop)`);
    await waitForSignal(controller.signal);
    return 0;
  } finally {
    signals.dispose();
    await api.close();
    await opened.store.close();
  }
}
