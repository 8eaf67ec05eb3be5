// The API as `run` and `serve` start it: the root app (app.ts) with its alerting engine and metrics at hand, the
// warning for an open API, and listening. Configuration is given as values (the commands resolve flags and
// REVOKESCOPE_* variables: services/cli/settings.ts).
import type { FastifyInstance } from 'fastify';
import type { AlertingEngine } from './alerting/engine.js';
import { buildApp, type AppOptions } from './app.js';
import type { ApiMetrics } from './observability/index.js';
import { isLoopback, type SecurityConfig } from './security/index.js';

export type ApiOptions = AppOptions;

export interface Api {
  app: FastifyInstance;
  /** The alerting engine (evaluate by hand, inspect alerts). */
  engine: AlertingEngine;
  metrics: ApiMetrics;
}

/** The whole API with its alerting engine; `app.close()` stops the evaluator loop. */
export async function createApi(o: ApiOptions): Promise<Api> {
  const app = await buildApp(o);
  return { app, engine: app.alerting, metrics: app.apiMetrics };
}

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  return buildApp(o);
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
