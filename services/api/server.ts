// The read API (DESIGN §6, first part): fastify, a JSON Schema on every route, each resource a plugin so
// the alerting API (rules, alerts, silences, auth, metrics) registers next to these.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { StoreReader } from '../store/queries.js';
import { episodesRoutes } from './routes/episodes.js';
import { findingsRoutes } from './routes/findings.js';
import { latencyRoutes } from './routes/latency.js';

export interface ApiOptions {
  reader: StoreReader;
  logger?: FastifyServerOptions['logger'];
}

export async function buildApi(o: ApiOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logger ?? false,
    // unknown query parameters are a 400 with the reason, not silently dropped
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    maxParamLength: 256,
    bodyLimit: 1 << 20,
  });
  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) req.log.error({ err }, 'request failed');
    void reply.status(status).send({
      statusCode: status,
      error: status === 500 ? 'Internal Server Error' : status === 400 ? 'Bad Request' : 'Error',
      message: status === 500 ? 'the store could not answer; see the server log' : err.message,
    });
  });
  app.get('/healthz', { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' } } } } } },
    async () => ({ status: 'ok' }));
  await app.register(episodesRoutes, { reader: o.reader });
  await app.register(findingsRoutes, { reader: o.reader });
  await app.register(latencyRoutes, { reader: o.reader });
  return app;
}

/** Listens on 127.0.0.1 and returns the base URL (port 0: an ephemeral port). */
export async function listen(app: FastifyInstance, port: number, host = '127.0.0.1'): Promise<string> {
  await app.listen({ port, host });
  const addr = app.server.address();
  const actual = typeof addr === 'object' && addr ? addr.port : port;
  return `http://${host}:${actual}`;
}
