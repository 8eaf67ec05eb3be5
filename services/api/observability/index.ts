// Health, readiness, Prometheus metrics and the OpenAPI document + docs UI.
//
//   const metrics = new ApiMetrics();
//   await app.register(observabilityPlugin, { metrics, client });   // before the routes it should document
//
// Registered with skip-override: its swagger onRoute hook sees every route registered after it, and its
// decorator `registerReadinessCheck(name, fn)` is visible to sibling plugins (alerting uses it).
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import { ApiMetrics } from './metrics.js';

export { ApiMetrics } from './metrics.js';

export interface ObservabilityOptions {
  metrics: ApiMetrics;
  /** /readyz asks the store with SELECT 1. */
  client?: ClickHouseClient;
  /** Serve the Swagger UI at /docs (default true). */
  docsUi?: boolean;
  version?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    registerReadinessCheck: (name: string, fn: () => Promise<void> | void) => void;
  }
}

export async function observabilityPlugin(app: FastifyInstance, opts: ObservabilityOptions): Promise<void> {
  const { metrics } = opts;
  const checks = new Map<string, () => Promise<void> | void>();
  if (opts.client) {
    const client = opts.client;
    checks.set('store', async () => {
      const rs = await client.query({ query: 'SELECT 1 AS ok', format: 'JSONEachRow' });
      await rs.json();
    });
  }
  app.decorate('registerReadinessCheck', (name: string, fn: () => Promise<void> | void) => { checks.set(name, fn); });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'revokescope API',
        description: 'Revoke episodes, findings, latency, collector health, alerting rules, alerts and silences. ' +
          '/api/v2 follows the Prometheus Alertmanager v2 API so amtool and Grafana read it.',
        version: opts.version ?? '0.1.0',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  });
  if (opts.docsUi ?? true) await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });

  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    if (route.startsWith('/docs')) return;
    metrics.requestDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });

  const status = { type: 'object', required: ['status'], properties: { status: { type: 'string' },
    checks: { type: 'object', additionalProperties: { type: 'string' } } } } as const;

  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness: the process answers', response: { 200: status } } },
    async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: { tags: ['operations'], summary: 'Readiness: the store answers and every component is initialised',
      response: { 200: status, 503: status } },
  }, async (_req, reply) => {
    const results: Record<string, string> = {};
    let ok = true;
    await Promise.all([...checks].map(async ([name, fn]) => {
      try {
        await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout after 5 s')), 5000).unref())]);
        results[name] = 'ok';
      } catch (e) {
        ok = false;
        results[name] = (e as Error).message.slice(0, 200);
      }
    }));
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', checks: results });
  });

  app.get('/metrics', {
    schema: { tags: ['operations'], summary: 'Prometheus metrics', produces: ['text/plain'],
      response: { 200: { type: 'string', description: 'Prometheus text exposition format' } } },
  }, async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
(observabilityPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
