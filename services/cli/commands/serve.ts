// `revokescope serve`: the read API alone, over an existing store (chDB data dir or a ClickHouse server).
import { parseArgs } from 'node:util';
import { apiConfigProblem, apiHost, apiStartLines, buildApi, listen } from '../../api/server.js';
import { onSignals, storeFlags, waitForSignal } from '../../pipeline/cli.js';
import { connectOptionsFrom, defaultSchemaOptions, openStore } from '../../store/index.js';

const HELP = `usage: revokescope serve [options]

Serves the API (default on 127.0.0.1) from the store a previous \`revokescope run\` (or the fleet correlator) wrote:
/api/v1/{episodes,findings,latency,hosts,rules,alerts}, the Alertmanager v2 API (/api/v2/*), /healthz, /readyz,
/metrics, /openapi.json and /docs. The alerting rules are evaluated while it runs.

  --port N               (default 8080; 0 = any free port; env REVOKESCOPE_API_PORT)
  --host ADDR            listen address (default 127.0.0.1; 0.0.0.0 in a container; env REVOKESCOPE_API_HOST).
                         Beyond loopback the API needs tokens (REVOKESCOPE_API_TOKENS) ...
  --insecure-no-auth     ... or this flag, to serve it open to anyone who can reach it on purpose
  --data-dir DIR         chDB data directory (default ./data)
  --clickhouse-url URL   a ClickHouse server instead (env REVOKESCOPE_CLICKHOUSE_URL, _USER, _PASSWORD, _DATABASE)
  --clickhouse-user U, --clickhouse-password P, --clickhouse-database D, --cluster NAME

environment: REVOKESCOPE_API_TOKENS="admin:TOKEN,read:TOKEN" (tokens of at least 16 characters, e.g. from
\`openssl rand -hex 24\`; none: the API is open, on loopback only unless --insecure-no-auth),
REVOKESCOPE_API_RATE_LIMIT (requests per minute per client, also per address for requests without a valid
token; 0 = off), REVOKESCOPE_API_BODY_LIMIT (bytes), REVOKESCOPE_ALERTMANAGER_URL, REVOKESCOPE_WEBHOOK_URLS,
REVOKESCOPE_EVALUATION_INTERVAL_MS
`;

export async function run(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, strict: true, allowPositionals: false,
      options: { help: { type: 'boolean', short: 'h' }, port: { type: 'string' }, host: { type: 'string' },
        'insecure-no-auth': { type: 'boolean' }, ...storeFlags } }));
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
  const { host, from } = apiHost(values.host, process.env);
  const problem = apiConfigProblem(process.env, { host, from, insecureNoAuth: values['insecure-no-auth'] });
  if (problem) { console.error(`revokescope serve: ${problem}`); return 2; }
  const controller = new AbortController();
  const signals = onSignals(() => controller.abort());
  const database = values['clickhouse-database'] ?? process.env.REVOKESCOPE_CLICKHOUSE_DATABASE ?? defaultSchemaOptions.database;
  const opened = await openStore(connectOptionsFrom(values), { schema: { database, cluster: values.cluster } });
  let api;
  try {
    api = await buildApi({ client: opened.connection.client, database, reader: opened.reader });
  } catch (err) {
    await opened.store.close();
    throw err;
  }
  try {
    const url = await listen(api, port, host);
    for (const line of apiStartLines(url, process.env, host)) console.error(line);
    console.log(`API: ${url}/api/v1/episodes  ${url}/api/v1/findings  ${url}/api/v1/latency  ${url}/api/v2/alerts  ${url}/docs  ` +
      `(store: ${opened.connection.location}; Ctrl-C to stop)`);
    await waitForSignal(controller.signal);
    return 0;
  } finally {
    signals.dispose();
    await api.close();
    await opened.store.close();
  }
}
