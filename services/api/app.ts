// The API (DESIGN §6) as `run` and `serve` expose it: the root fastify app and its plugins, in the order their
// declared dependencies ask for (fastify-plugin checks them):
//   errors         the error catalogue's handler and the not-found handler (errors.ts)
//   security       bearer tokens, rate limits, body limits, the documented error responses (security/)
//   params         strict numbers in query strings (params.ts)
//   store          app.store: client, database, read queries, clock (store.ts)
//   metrics        app.apiMetrics and request durations; observability: /healthz, /readyz, /metrics, OpenAPI (observability/)
//   alerting       app.alerting: the engine and its evaluator loop, one evaluator per store (alerting/plugin.ts)
//   resources      hosts, episodes, findings (and their explanation), latency, rules, alerts, silences, receivers/status: each encapsulated,
//                  after the plugins whose onRoute hooks must see its routes (security, params, OpenAPI)
// fastify logs through the command's pino logger (requests, and a 5xx with its cause).
import type { ClickHouseClient } from '@clickhouse/client';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { StoreReader } from '../store/queries.js';
import { alertingEnginePlugin } from './alerting/plugin.js';
import { alertsPlugin } from './alerting/routes/alerts.js';
import { receiversPlugin } from './alerting/routes/receivers.js';
import { rulesPlugin } from './alerting/routes/rules.js';
import { silencesPlugin } from './alerting/routes/silences.js';
import type { AlertingConfig } from './alerting/types.js';
import errorsPlugin from './errors.js';
import { metricsPlugin, observabilityPlugin, type ApiMetrics } from './observability/index.js';
import { strictParamsPlugin } from './params.js';
import { hostsPlugin } from './resources/hosts.js';
import { episodesRoutes } from './routes/episodes.js';
import { explainRoutes } from './routes/explain.js';
import { findingsRoutes } from './routes/findings.js';
import { latencyRoutes } from './routes/latency.js';
import { securityConfig, securityPlugin, type SecurityConfig } from './security/index.js';
import storePlugin from './store.js';

export interface AppOptions {
  /** The store's ClickHouse client (chDB or a server). */
  client: ClickHouseClient;
  /** The store's database (default revokescope). */
  database?: string;
  /** Read queries (default: a StoreReader over client and database). */
  reader?: StoreReader;
  /** Request and error log (a pino logger: the command's); none: no log. */
  logger?: FastifyBaseLogger;
  security?: Partial<SecurityConfig>;
  alerting?: Partial<AlertingConfig>;
  metrics?: ApiMetrics;
  /** Clock (tests pin it). */
  now?: () => number;
  /** Run the evaluator loop (default true). */
  evaluate?: boolean;
  /** This process's id in the rule evaluator lease (default: hostname/pid/random). */
  holder?: string;
  /** Serve the Swagger UI at /docs (default true). */
  docsUi?: boolean;
  /** /api/v1/latency shares a result for this long (ms, default 1000; 0 = none). */
  latencyCacheMs?: number;
}

/** The whole API, ready (the alerting engine initialised, its loop started); `app.close()` stops the loop and
 * withdraws the evaluator lease. */
export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(o.logger ? { loggerInstance: o.logger } : { logger: false }),
    // unknown query parameters are a 400 with the reason, not silently dropped
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    routerOptions: { maxParamLength: 256 },
    // the security plugin sets each route's limit (REVOKESCOPE_API_BODY_LIMIT); this bounds unrouted requests
    bodyLimit: 1 << 20,
  });
  try {
    await app.register(errorsPlugin);
    await app.register(securityPlugin, securityConfig(o.security));
    await app.register(strictParamsPlugin);
    await app.register(storePlugin, { client: o.client, database: o.database ?? o.alerting?.database, reader: o.reader, now: o.now });
    await app.register(metricsPlugin, { metrics: o.metrics });
    await app.register(observabilityPlugin, { docsUi: o.docsUi });
    await app.register(alertingEnginePlugin, { config: o.alerting, start: o.evaluate ?? true, holder: o.holder });
    await app.register(hostsPlugin);
    await app.register(episodesRoutes);
    await app.register(findingsRoutes);
    await app.register(explainRoutes);
    await app.register(latencyRoutes, { freshMs: o.latencyCacheMs ?? 1000 });
    await app.register(rulesPlugin);
    await app.register(alertsPlugin);
    await app.register(silencesPlugin);
    await app.register(receiversPlugin);
    await app.ready();
    return app;
  } catch (err) {
    await app.close().catch(() => {});
    throw err;
  }
}
