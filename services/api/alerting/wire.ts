// One call that registers security, strict parameters, observability, collector hosts and alerting on a fastify
// app, in the order they need: security, parameters and observability first (their onRoute hooks must see every later route),
// then the resources. The read routes (episodes, findings, latency) are registered after this call.
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import { ApiMetrics, observabilityPlugin } from '../observability/index.js';
import { hostsPlugin } from '../resources/hosts.js';
import { strictParamsPlugin } from '../params.js';
import { securityConfigFrom, securityPlugin, type SecurityConfig } from '../security/index.js';
import { alertingPlugin, type AlertingPluginOptions } from './index.js';
import type { AlertingEngine } from './engine.js';
import type { AlertingConfig } from './types.js';

export interface OperationsApiOptions {
  client: ClickHouseClient;
  /** ClickHouse database (the store's). */
  database?: string;
  security?: Partial<SecurityConfig>;
  alerting?: Partial<AlertingConfig>;
  metrics?: ApiMetrics;
  now?: () => number;
  /** Run the evaluator loop (default true). */
  evaluate?: boolean;
  env?: NodeJS.ProcessEnv;
  docsUi?: boolean;
}

/** Registers everything; resolves with the alerting engine once its state is loaded. */
export async function registerOperationsApi(app: FastifyInstance, o: OperationsApiOptions): Promise<{ engine: AlertingEngine; metrics: ApiMetrics }> {
  const metrics = o.metrics ?? new ApiMetrics();
  const env = o.env ?? process.env;
  await app.register(securityPlugin, securityConfigFrom(o.security, env));
  await app.register(strictParamsPlugin);
  await app.register(observabilityPlugin, { metrics, client: o.client, docsUi: o.docsUi });
  await app.register(hostsPlugin, { client: o.client, database: o.database, now: o.now });
  let engine: AlertingEngine | undefined;
  const alertingOpts: AlertingPluginOptions = {
    client: o.client, metrics, now: o.now, start: o.evaluate ?? true,
    config: { ...o.alerting, ...(o.database ? { database: o.database } : {}) },
    onEngine: (e) => { engine = e; },
  };
  await app.register(alertingPlugin, alertingOpts);
  await app.after();
  return { engine: engine!, metrics };
}
