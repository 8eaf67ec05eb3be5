// API security: bearer tokens with `read` and `admin` scopes, rate limits (429), body limits (413), JSON
// errors for every 4xx, and an error handler so that no client input yields a 5xx with internals.
//
//   await app.register(securityPlugin, securityConfigFrom({}, process.env));   // before any route
//
// Scopes: GET/HEAD need `read`, everything else `admin` (admin implies read); a route may set
// `config: { scope: 'public' | 'read' | 'admin' }`. /healthz, /readyz, /metrics, /openapi.json and /docs are
// public. With no token configured the API is open (embedded mode on 127.0.0.1) and says so in the log.
import { timingSafeEqual } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';

export type Scope = 'public' | 'read' | 'admin';

export interface ApiToken {
  token: string;
  scopes: ('read' | 'admin')[];
  /** Shown in logs instead of the token. */
  name?: string;
}

export interface SecurityConfig {
  tokens: ApiToken[];
  /** Requests per client (token, else IP) per window; 0 = no limit. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** Largest request body in bytes (413 above). */
  bodyLimit: number;
}

export const defaultSecurityConfig: SecurityConfig = { tokens: [], rateLimitMax: 6000, rateLimitWindowMs: 60_000, bodyLimit: 256 * 1024 };

const PUBLIC_PREFIXES = ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs'];

/** Tokens from env: REVOKESCOPE_API_TOKENS="admin:TOKEN1,read:TOKEN2" (scope:token pairs), or the
 * shorthands REVOKESCOPE_API_TOKEN (admin) and REVOKESCOPE_API_READ_TOKEN (read). */
export function securityConfigFrom(partial: Partial<SecurityConfig> = {}, env: NodeJS.ProcessEnv = process.env): SecurityConfig {
  const tokens: ApiToken[] = [...(partial.tokens ?? [])];
  for (const item of (env.REVOKESCOPE_API_TOKENS ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = item.indexOf(':');
    const scope = item.slice(0, i);
    if (i < 1 || (scope !== 'read' && scope !== 'admin') || item.length - i - 1 < 16) {
      throw new Error('REVOKESCOPE_API_TOKENS: expected comma separated read:TOKEN or admin:TOKEN, tokens of at least 16 characters');
    }
    tokens.push({ token: item.slice(i + 1), scopes: scope === 'admin' ? ['admin', 'read'] : ['read'], name: `env-${scope}-${tokens.length + 1}` });
  }
  if (env.REVOKESCOPE_API_TOKEN) tokens.push({ token: env.REVOKESCOPE_API_TOKEN, scopes: ['admin', 'read'], name: 'env-admin' });
  if (env.REVOKESCOPE_API_READ_TOKEN) tokens.push({ token: env.REVOKESCOPE_API_READ_TOKEN, scopes: ['read'], name: 'env-read' });
  const num = (v: string | undefined, d: number): number => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);
  return {
    tokens,
    rateLimitMax: partial.rateLimitMax ?? num(env.REVOKESCOPE_API_RATE_LIMIT, defaultSecurityConfig.rateLimitMax),
    rateLimitWindowMs: partial.rateLimitWindowMs ?? defaultSecurityConfig.rateLimitWindowMs,
    bodyLimit: partial.bodyLimit ?? num(env.REVOKESCOPE_API_BODY_LIMIT, defaultSecurityConfig.bodyLimit),
  };
}

export const errorSchema = {
  type: 'object', required: ['statusCode', 'error', 'message'],
  properties: { statusCode: { type: 'integer' }, error: { type: 'string' }, message: { type: 'string' }, code: { type: 'string' } },
} as const;

const REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 406: 'Not Acceptable',
  409: 'Conflict', 413: 'Payload Too Large', 414: 'URI Too Long', 415: 'Unsupported Media Type', 429: 'Too Many Requests',
  431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

function routeScope(route: { url?: string; method?: string | string[]; config?: unknown }): Scope {
  const explicit = (route.config as { scope?: Scope } | undefined)?.scope;
  if (explicit) return explicit;
  const url = route.url ?? '';
  if (PUBLIC_PREFIXES.some((p) => url === p || url.startsWith(`${p}/`))) return 'public';
  const methods = Array.isArray(route.method) ? route.method : [route.method ?? 'GET'];
  return methods.every((m) => m === 'GET' || m === 'HEAD') ? 'read' : 'admin';
}

function bearer(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m?.[1];
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function securityPlugin(app: FastifyInstance, config: SecurityConfig): Promise<void> {
  const tokens = config.tokens;
  const authEnabled = tokens.length > 0;
  if (!authEnabled) app.log.warn('no API tokens configured: the API is open to anyone who can reach it (set REVOKESCOPE_API_TOKENS)');

  // every route: the body limit, the 4xx error schema, and the bearer scheme in the OpenAPI document
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.bodyLimit === undefined) route.bodyLimit = config.bodyLimit;
    const scope = routeScope(route);
    (route as { config?: unknown }).config = { ...(route.config as object), scope };
    if (route.schema && !(route.schema as { hide?: boolean }).hide) {
      const schema = route.schema as Record<string, unknown> & { response?: Record<string, unknown> };
      schema.response = { ...schema.response };
      // 431: Node's HTTP parser refuses an over-long URL or header before any route runs
      const codes = ['400', '404', '413', '429', '431'];
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      if (methods.some((m) => m === 'POST' || m === 'PUT' || m === 'PATCH')) codes.push('409', '415');
      for (const code of codes) schema.response[code] ??= { ...errorSchema, description: REASONS[Number(code)] };
      if (scope !== 'public' && authEnabled) {
        schema.response['401'] ??= { ...errorSchema, description: 'Missing or unknown bearer token' };
        schema.response['403'] ??= { ...errorSchema, description: `Token lacks the ${scope} scope` };
        schema.security ??= [{ bearerAuth: [] }];
      }
    }
  });

  if (authEnabled) {
    app.addHook('onRequest', async (req, reply) => {
      const scope = (req.routeOptions.config as { scope?: Scope } | undefined)?.scope ?? 'read';
      if (scope === 'public' || req.routeOptions.url === undefined) return;
      const presented = bearer(req);
      const t = presented === undefined ? undefined : tokens.find((x) => safeEqual(x.token, presented));
      if (!t) {
        return reply.code(401).header('www-authenticate', 'Bearer realm="revokescope"')
          .send({ statusCode: 401, error: 'Unauthorized', message: presented === undefined ? 'bearer token required' : 'unknown token' });
      }
      if (!t.scopes.includes(scope as 'read' | 'admin') && !(scope === 'read' && t.scopes.includes('admin'))) {
        return reply.code(403).send({ statusCode: 403, error: 'Forbidden', message: `this token lacks the ${scope} scope` });
      }
    });
  }

  if (config.rateLimitMax > 0) {
    await app.register(rateLimit, {
      global: true, max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs,
      keyGenerator: (req) => bearer(req) ?? req.ip,
      allowList: (req) => ['/healthz', '/readyz', '/metrics'].includes(req.routeOptions.url ?? ''),
      errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, error: 'Too Many Requests',
        message: `rate limit of ${ctx.max} requests per ${ctx.after} exceeded, retry in ${ctx.ttl} ms` }),
    });
  }

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${req.method} ${req.url.split('?')[0]}` });
  });

  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    // an error a client caused keeps its 4xx status; validation errors say which field
    const status = err.validation ? 400 : (err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500);
    if (status >= 500) {
      req.log.error({ err }, 'request failed');
      // a store that is down is not the client's fault, but says so without internals
      return reply.code(503).send({ statusCode: 503, error: 'Service Unavailable', message: 'the store did not answer; retry later' });
    }
    return reply.code(status).send({ statusCode: status, error: REASONS[status] ?? 'Client Error', message: err.message,
      ...(err.code ? { code: err.code } : {}) });
  });
}
(securityPlugin as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
