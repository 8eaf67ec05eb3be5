// The full API exactly as `run` and `serve` build it (services/api/server.ts createApi: security,
// observability, hosts and alerting first, then the read routes), listening on 127.0.0.1.
import type { ClickHouseClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import { createApi, listen, type ApiOptions } from '../../services/api/server.js';
import { securityConfig, type SecurityConfig } from '../../services/api/security/index.js';
import { parseCommand } from '../../services/cli/options.js';
import { apiOptions, securitySettings } from '../../services/cli/settings.js';
import type { AlertingEngine } from '../../services/api/alerting/engine.js';

export interface TestApi { app: FastifyInstance; url: string; engine: AlertingEngine }

export async function startApi(client: ClickHouseClient, o: Omit<ApiOptions, 'client'> = {}): Promise<TestApi> {
  const { app, engine } = await createApi({ client, evaluate: false, docsUi: false, ...o });
  const url = await listen(app, 0);
  return { app, url, engine };
}

/** The API's security as the commands resolve it from these variables (services/cli/settings.ts). */
export function securityFromEnv(env: NodeJS.ProcessEnv, extra: Partial<SecurityConfig> = {}): SecurityConfig {
  return securityConfig({ ...securitySettings(parseCommand([], apiOptions, env).values), ...extra });
}
