// The API (DESIGN §6) as `run` and `serve` expose it: one fastify app with, in this order,
//   1. the operations plugins (services/api/alerting/wire.ts): security (bearer tokens, rate limits, body
//      limits, the JSON 4xx error and not-found handlers), observability (/healthz, /readyz, /metrics,
//      /openapi.json, /docs), collector hosts (/api/v1/hosts) and alerting (/api/v1/rules, /api/v1/alerts,
//      /api/v2/*);
//   2. the read routes (/api/v1/episodes, /findings, /latency): registered after, so their onRoute hooks
//      document them in the OpenAPI document and put them behind the tokens.
// Configuration comes from the environment (REVOKESCOPE_API_TOKENS, _RATE_LIMIT, _BODY_LIMIT,
// REVOKESCOPE_ALERTMANAGER_URL, REVOKESCOPE_WEBHOOK_URLS, ...; see the security and alerting plugins).
import type { ClickHouseClient } from '@clickhouse/client';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { StoreReader } from '../store/queries.js';
import type { AlertingEngine } from './alerting/engine.js';
import { registerOperationsApi, type OperationsApiOptions } from './alerting/wire.js';
import type { ApiMetrics } from './observability/index.js';
import { isLoopback, listenProblem, securityConfigFrom } from './security/index.js';
import { episodesRoutes } from './routes/episodes.js';
import { findingsRoutes } from './routes/findings.js';
import { latencyRoutes } from './routes/latency.js';

export interface ApiOptions extends Omit<OperationsApiOptions, 'client' | 'database'> {
  /** The store's ClickHouse client (chDB or a server). */
  client: ClickHouseClient;
  /** The store's database (default revokescope). */
  database?: string;
  /** Read queries (default: a StoreReader over client and database). */
  reader?: StoreReader;
  logger?: FastifyServerOptions['logger'];
  /** /api/v1/latency shares a result for this long (ms, default 1000; 0 = none); env REVOKESCOPE_API_LATENCY_CACHE_MS. */
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
  const env = o.env ?? process.env;
  const cacheEnv = env.REVOKESCOPE_API_LATENCY_CACHE_MS;
  const freshMs = latencyCacheMs ?? (cacheEnv && /^[0-9]+$/.test(cacheEnv) ? Number(cacheEnv) : 1000);
  const database = o.database ?? 'revokescope';
  const app = Fastify({
    logger: logger ?? false,
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

/** A configuration error in the API's env vars (a malformed or placeholder REVOKESCOPE_API_TOKENS, a bad
 * REVOKESCOPE_API_RATE_LIMIT or _BODY_LIMIT), or an address it must not listen on without tokens; for a
 * one-line usage error (exit 2). */
export function apiConfigProblem(env: NodeJS.ProcessEnv, listenOn?: { host: string; from: string; insecureNoAuth?: boolean }): string | undefined {
  try {
    const config = securityConfigFrom({}, env);
    return listenOn ? listenProblem(listenOn.host, listenOn.from, config, listenOn.insecureNoAuth ?? false) : undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** The address `serve` listens on: --host, else REVOKESCOPE_API_HOST (set but empty is an error, see
 * listenProblem), else 127.0.0.1; and where it came from, for messages. */
export function apiHost(flag: string | undefined, env: NodeJS.ProcessEnv): { host: string; from: string } {
  if (flag !== undefined) return { host: flag, from: '--host' };
  if (env.REVOKESCOPE_API_HOST !== undefined) return { host: env.REVOKESCOPE_API_HOST, from: 'REVOKESCOPE_API_HOST' };
  return { host: '127.0.0.1', from: 'the default address' };
}

/** What a command prints (stderr) when the API starts: the warning for an open API. */
export function apiStartLines(url: string, env: NodeJS.ProcessEnv, host = '127.0.0.1'): string[] {
  if (securityConfigFrom({}, env).tokens.length) return [];
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
