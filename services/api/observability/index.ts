// Health, readiness, Prometheus metrics and the OpenAPI document + docs UI: two plugins.
//
//   await app.register(metricsPlugin, { metrics });      // app.apiMetrics, request durations
//   await app.register(observabilityPlugin, { docsUi });  // before the routes it should document
//
// Both are fastify-plugin plugins (not encapsulated): the swagger onRoute hook sees every route registered after
// it, and the decorations `apiMetrics` and `registerReadinessCheck(name, fn)` are visible to the resources
// (alerting uses both).
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { ApiMetrics } from './metrics.js';

export { ApiMetrics } from './metrics.js';

export interface ObservabilityOptions {
  /** Serve the Swagger UI at /docs (default true). */
  docsUi?: boolean;
  version?: string;
}

declare module 'fastify' {
  interface FastifyInstance {
    registerReadinessCheck: (name: string, fn: () => Promise<void> | void) => void;
    apiMetrics: ApiMetrics;
  }
}

/** `app.apiMetrics` (the given registry or a new one) and the request duration histogram. */
async function apiMetrics(app: FastifyInstance, opts: { metrics?: ApiMetrics }): Promise<void> {
  const metrics = opts.metrics ?? new ApiMetrics();
  app.decorate('apiMetrics', metrics);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    if (route.startsWith('/docs')) return;
    metrics.requestDuration.observe({ method: req.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
}

/** /healthz, /readyz (the store answers SELECT 1, and every registered check passes), /metrics, /openapi.json, /docs. */
async function observability(app: FastifyInstance, opts: ObservabilityOptions): Promise<void> {
  const metrics = app.apiMetrics;
  const checks = new Map<string, () => Promise<void> | void>();
  {
    const client = app.store.client;
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
export const metricsPlugin = fp(apiMetrics, { name: 'revokescope-metrics', fastify: '5.x' });
export const observabilityPlugin = fp(observability, { name: 'revokescope-observability', fastify: '5.x',
  dependencies: ['revokescope-security', 'revokescope-store', 'revokescope-metrics'] });
