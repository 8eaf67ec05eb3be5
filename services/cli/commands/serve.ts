// `revokescope serve`: the API alone, over an existing store (chDB data dir or a ClickHouse server).
import { apiStartLines, buildApi, listen } from '../../api/server.js';
import { listenProblem, securityConfig } from '../../api/security/index.js';
import { openStore } from '../../store/index.js';
import { createLogger } from '../logger.js';
import { helpText, parseCommand, text, UsageError, type OptionTable } from '../options.js';
import { onSignals, waitForSignal } from '../process.js';
import { alertingSettings, apiOptions, logOptions, securitySettings, storeOptions, storeSettings } from '../settings.js';

const listenOptions = {
  host: { flag: 'host', env: 'REVOKESCOPE_API_HOST', arg: 'ADDR', parse: text,
    help: 'listen address (default 127.0.0.1; 0.0.0.0 in a container). Beyond loopback the API needs tokens (REVOKESCOPE_API_TOKENS) ...' },
  insecureNoAuth: { flag: 'insecure-no-auth', boolean: true, help: '... or this flag, to serve it open to anyone who can reach it on purpose' },
} satisfies OptionTable;

const HELP = helpText('revokescope serve [options]', `
Serves the API from the store a previous \`revokescope run\` (or the fleet pipeline) wrote:
/api/v1/{episodes,findings,latency,hosts,rules,alerts}, the Alertmanager v2 API (/api/v2/*), /healthz, /readyz,
/metrics, /openapi.json and /docs. The alerting rules are evaluated while it runs (one API process per store
evaluates them, however many serve it).`, [['api', { ...apiOptions, ...listenOptions }], ['store', storeOptions], ['logging', logOptions]]);

export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let o;
  try {
    o = parseCommand(argv, { ...apiOptions, ...listenOptions, ...storeOptions, ...logOptions }, env);
    if (o.help) { console.log(HELP); return 0; }
    const host = o.values.host ?? '127.0.0.1';
    const security = securitySettings(o.values);
    const problem = listenProblem(host, o.from.host === 'default' ? 'the default address' : o.from.host!, securityConfig(security), o.values.insecureNoAuth);
    if (problem) throw new UsageError(problem);
  } catch (err) {
    if (err instanceof UsageError) { console.error(`revokescope serve: ${err.message}`); return 2; }
    throw err;
  }
  const v = o.values;
  const log = createLogger('serve', v.logLevel);
  const store = storeSettings(v);
  const security = securitySettings(v);
  const host = v.host ?? '127.0.0.1';
  const controller = new AbortController();
  const signals = onSignals(() => controller.abort());
  const opened = await openStore(store.connect, { schema: store.schema });
  let api;
  try {
    api = await buildApi({ client: opened.connection.client, database: v.database, reader: opened.reader, security,
      alerting: alertingSettings(v, store.schema), latencyCacheMs: v.latencyCacheMs, logger: log });
  } catch (err) {
    await opened.store.close();
    throw err;
  }
  try {
    const url = await listen(api, v.port, host);
    for (const line of apiStartLines(url, security, host)) console.error(line);
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
