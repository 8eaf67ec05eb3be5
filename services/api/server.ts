// The API (DESIGN §6) as `run` and `serve` expose it: one fastify app with, in this order,
//   1. the operations plugins (services/api/alerting/wire.ts): security (bearer tokens, rate limits, body
//      limits, the JSON 4xx error and not-found handlers), observability (/healthz, /readyz, /metrics,
//      /openapi.json, /docs), collector hosts (/api/v1/hosts) and alerting (/api/v1/rules, /api/v1/alerts,
//      /api/v2/*);
//   2. the read routes (/api/v1/episodes, /findings, /latency): registered after, so their onRoute hooks
//      document them in the OpenAPI document and put them behind the tokens.
// Configuration is given as values (the commands resolve flags and REVOKESCOPE_* variables: services/cli/settings.ts).
import type { ClickHouseClient } from '@clickhouse/client';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { StoreReader } from '../store/queries.js';
import type { AlertingEngine } from './alerting/engine.js';
import { registerOperationsApi, type OperationsApiOptions } from './alerting/wire.js';
import type { ApiMetrics } from './observability/index.js';
import { isLoopback, type SecurityConfig } from './security/index.js';
import { episodesRoutes } from './routes/episodes.js';
import { explainRoutes } from './routes/explain.js';
import { findingsRoutes } from './routes/findings.js';
import { latencyRoutes } from './routes/latency.js';

export interface ApiOptions extends Omit<OperationsApiOptions, 'client' | 'database'> {
  /** The store's ClickHouse client (chDB or a server). */
  client: ClickHouseClient;
  /** The store's database (default revokescope). */
  database?: string;
  /** Read queries (default: a StoreReader over client and database). */
  reader?: StoreReader;
  /** Request and error log (a pino logger: the command's); none: no log. */
  logger?: FastifyBaseLogger;
  /** /api/v1/latency shares a result for this long (ms, default 1000; 0 = none). */
  latencyCacheMs?: number;
}

export interface Api {
  app: FastifyInstance;
  /** The alerting engine (evaluate by hand, inspect alerts). */
  engine: AlertingEngine;
  metrics: ApiMetrics;
}

/** The whole API with its alerting engine; `app.close()` stops the evaluator loop. */
export async function createApi(o: ApiOptions): Promise<Api> {
  const { client, reader: givenReader, logger, latencyCacheMs, ...ops } = o;
  const freshMs = latencyCacheMs ?? 1000;
  const database = o.database ?? 'revokescope';
  const app = Fastify({
    ...(logger ? { loggerInstance: logger } : { logger: false }),
    // unknown query parameters are a 400 with the reason, not silently dropped
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    routerOptions: { maxParamLength: 256 },
    // the security plugin sets each route's limit (REVOKESCOPE_API_BODY_LIMIT); this bounds unrouted requests
    bodyLimit: 1 << 20,
  });
  try {
    const { engine, metrics } = await registerOperationsApi(app, { ...ops, client, database });
    const reader = givenReader ?? new StoreReader(client, database);
    await app.register(episodesRoutes, { reader });
    await app.register(findingsRoutes, { reader });
    await app.register(explainRoutes, { reader });
    await app.register(latencyRoutes, { reader, freshMs });
    await app.ready();
    return { app, engine, metrics };
  } catch (err) {
    await app.close().catch(() => {});
    throw err;
  }
}

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  return (await createApi(o)).app;
}

/** What a command prints (stderr) when the API starts: the warning for an open API. */
export function apiStartLines(url: string, security: Partial<SecurityConfig>, host = '127.0.0.1'): string[] {
  if (security.tokens?.length) return [];
  return isLoopback(host)
    ? [`warning: no API tokens configured, ${url} is open to every user and process of this machine (set REVOKESCOPE_API_TOKENS="admin:TOKEN,read:TOKEN")`]
    : [`warning: --insecure-no-auth: the API on ${host} is open to anyone who can reach it; anyone can delete rules and silence alerts`];
}

/** Listens on 127.0.0.1 and returns the base URL (port 0: an ephemeral port). */
export async function listen(app: FastifyInstance, port: number, host = '127.0.0.1'): Promise<string> {
  await app.listen({ port, host });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  return `http://${shown}:${actual}`;
}
