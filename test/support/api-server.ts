// The full API as `serve` will run it: a fastify app with security, observability, hosts and alerting
// (services/api/alerting/wire.ts) registered first, then the store helper's read routes.
import type { ClickHouseClient } from '@clickhouse/client';
import Fastify, { type FastifyInstance } from 'fastify';
import { registerOperationsApi, type OperationsApiOptions } from '../../services/api/alerting/wire.js';
import { episodesRoutes } from '../../services/api/routes/episodes.js';
import { findingsRoutes } from '../../services/api/routes/findings.js';
import { latencyRoutes } from '../../services/api/routes/latency.js';
import { StoreReader } from '../../services/store/queries.js';
import type { AlertingEngine } from '../../services/api/alerting/engine.js';

export interface TestApi { app: FastifyInstance; url: string; engine: AlertingEngine }

export async function startApi(client: ClickHouseClient, o: Omit<OperationsApiOptions, 'client'> = {}): Promise<TestApi> {
  const app = Fastify({
    logger: false,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false } },
    maxParamLength: 256,
  });
  const { engine } = await registerOperationsApi(app, { client, env: {}, evaluate: false, docsUi: false, ...o });
  const reader = new StoreReader(client, 'revokescope');
  await app.register(episodesRoutes, { reader });
  await app.register(findingsRoutes, { reader });
  await app.register(latencyRoutes, { reader });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { app, url: `http://127.0.0.1:${port}`, engine };
}
