// API security: bearer tokens with `read` and `admin` scopes, rate limits (429), body limits (413), and the
// error responses every route documents (the errors themselves: services/api/errors.ts).
//
//   await app.register(securityPlugin, securityConfig({ tokens }));   // (services/api/app.ts) before any route
//
// Scopes: GET/HEAD need `read`, everything else `admin` (admin implies read); a route may set
// `config: { scope: 'public' | 'read' | 'admin' }`. /healthz, /readyz, /metrics, /openapi.json and /docs are
// public. With no token configured the API is open: commands allow that on loopback only, or beyond it with
// --insecure-no-auth (listenProblem). Every request is rate limited, before authentication: a valid token's
// requests by token, all others (no token, an unknown one) by client address.
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import fp from 'fastify-plugin';
import { errorSchema, Forbidden, REASONS, Unauthorized } from '../errors.js';

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

/** Tokens as shipped in deploy/ (the Kubernetes Secret and the compose .env.example): never accepted. */
export const PLACEHOLDER_TOKENS: readonly string[] = [
  'CHANGE-ME-ADMIN-TOKEN', 'CHANGE-ME-READ-TOKEN', 'change-me-admin-token-0001', 'change-me-read-token-00001',
];
const LOOKS_PLACEHOLDER = /change[-_ ]?me/i;
/** RFC 6750 b64token: what a Bearer header can carry. */
const TOKEN_CHARS = /^[A-Za-z0-9\-._~+/]+=*$/;
const MIN_TOKEN_LENGTH = 16;
const HOW_TO_TOKENS = 'generate one per scope, e.g. `openssl rand -hex 24`, and set REVOKESCOPE_API_TOKENS="admin:TOKEN,read:TOKEN"';

function checkToken(variable: string, token: string): void {
  if (token.length < MIN_TOKEN_LENGTH) throw new Error(`${variable}: tokens must have at least ${MIN_TOKEN_LENGTH} characters (${HOW_TO_TOKENS})`);
  if (!TOKEN_CHARS.test(token)) throw new Error(`${variable}: tokens may contain only A-Z a-z 0-9 - . _ ~ + / (and = at the end)`);
  if (PLACEHOLDER_TOKENS.includes(token) || LOOKS_PLACEHOLDER.test(token)) {
    throw new Error(`${variable}: "${token}" is a placeholder, not a token (${HOW_TO_TOKENS})`);
  }
}

/** REVOKESCOPE_API_TOKENS' format: "admin:TOKEN1,read:TOKEN2" (scope:token pairs). A bad list throws an Error naming
 * `variable` (commands exit 2 with it). */
export function parseApiTokens(text: string, variable: string): ApiToken[] {
  const tokens: ApiToken[] = [];
  for (const item of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const i = item.indexOf(':');
    const scope = item.slice(0, i);
    if (i < 1 || (scope !== 'read' && scope !== 'admin')) {
      throw new Error(`${variable}: expected comma separated read:TOKEN or admin:TOKEN, tokens of at least 16 characters`);
    }
    checkToken(variable, item.slice(i + 1));
    tokens.push({ token: item.slice(i + 1), scopes: scope === 'admin' ? ['admin', 'read'] : ['read'], name: `${scope}-${tokens.length + 1}` });
  }
  return tokens;
}

/** One token of one scope (REVOKESCOPE_API_TOKEN, REVOKESCOPE_API_READ_TOKEN). */
export function singleApiToken(token: string, variable: string, scope: 'admin' | 'read'): ApiToken {
  checkToken(variable, token);
  return { token, scopes: scope === 'admin' ? ['admin', 'read'] : ['read'], name: `${scope}-${variable.toLowerCase()}` };
}

/** A partial configuration over the defaults. */
export function securityConfig(partial: Partial<SecurityConfig> = {}): SecurityConfig {
  return { ...defaultSecurityConfig, ...partial, tokens: [...(partial.tokens ?? [])] };
}

/** Loopback addresses: 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Why the API must not listen on `host` with this configuration (undefined: it may). Beyond loopback it
 * needs tokens, or the operator's explicit --insecure-no-auth. `hostFrom` names where the address came from. */
export function listenProblem(host: string, hostFrom: string, config: SecurityConfig, insecureNoAuth: boolean): string | undefined {
  if (host.trim() === '') {
    return `${hostFrom} is empty: give the address to listen on, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, needs tokens)`;
  }
  if (isLoopback(host) || config.tokens.length > 0 || insecureNoAuth) return undefined;
  return `refusing to serve the API on ${host} without tokens: anyone who can reach it could delete rules and silence every alert. ` +
    `Either ${HOW_TO_TOKENS}, or listen on 127.0.0.1, or pass --insecure-no-auth to serve it open on purpose`;
}

/** A constant-time token lookup: the presented token's SHA-256 is compared with every token's (equal-length
 * digests, all of them, no early exit), so neither a token's length nor its position leaks through timing. */
export function tokenLookup(tokens: readonly ApiToken[]): (presented: string) => ApiToken | undefined {
  const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  const known = tokens.map((t) => ({ t, d: digest(t.token) }));
  return (presented) => {
    const d = digest(presented);
    let found: ApiToken | undefined;
    for (const k of known) if (timingSafeEqual(d, k.d) && found === undefined) found = k.t;
    return found;
  };
}

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

async function security(app: FastifyInstance, config: SecurityConfig): Promise<void> {
  const tokens = config.tokens;
  const authEnabled = tokens.length > 0;
  if (!authEnabled) app.log.warn('no API tokens configured: the API is open to anyone who can reach it (set REVOKESCOPE_API_TOKENS)');
  const lookup = tokenLookup(tokens);
  const known = new WeakMap<FastifyRequest, ApiToken | null>();
  /** The request's valid token (looked up once per request), or null. */
  const tokenOf = (req: FastifyRequest): ApiToken | null => {
    let t = known.get(req);
    if (t === undefined) {
      const presented = bearer(req);
      t = presented === undefined || !authEnabled ? null : lookup(presented) ?? null;
      known.set(req, t);
    }
    return t;
  };

  // Rate limit first (its route hook goes in before the authentication below): unauthenticated clients are
  // limited too, by address; a made-up bearer token does not buy a fresh budget.
  if (config.rateLimitMax > 0) {
    await app.register(rateLimit, {
      global: true, max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs,
      keyGenerator: (req) => { const t = tokenOf(req); return t ? `token:${tokens.indexOf(t)}` : `addr:${req.ip}`; },
      allowList: (req) => ['/healthz', '/readyz', '/metrics'].includes(req.routeOptions.url ?? ''),
      errorResponseBuilder: (_req, ctx) => ({ statusCode: 429, error: 'Too Many Requests',
        message: `rate limit of ${ctx.max} requests per ${ctx.after} exceeded, retry in ${ctx.ttl} ms` }),
    });
  }

  const authenticate = async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const scope = (req.routeOptions.config as { scope?: Scope } | undefined)?.scope ?? 'read';
    if (scope === 'public' || req.routeOptions.url === undefined) return;
    const t = tokenOf(req);
    if (!t) {
      reply.header('www-authenticate', 'Bearer realm="revokescope"');
      throw new Unauthorized(bearer(req) === undefined ? 'bearer token required' : 'unknown token');
    }
    if (!t.scopes.includes(scope as 'read' | 'admin') && !(scope === 'read' && t.scopes.includes('admin'))) {
      throw new Forbidden(`this token lacks the ${scope} scope`);
    }
  };

  // every route: the body limit, the 4xx error schema, the bearer scheme in the OpenAPI document, and the
  // token check (after the rate limit's hook, which the plugin above added in its own onRoute hook)
  app.addHook('onRoute', (route: RouteOptions) => {
    if (route.bodyLimit === undefined) route.bodyLimit = config.bodyLimit;
    const scope = routeScope(route);
    (route as { config?: unknown }).config = { ...(route.config as object), scope };
    if (authEnabled && scope !== 'public') {
      const hooks = route.onRequest;
      route.onRequest = hooks === undefined ? [authenticate] : [...(Array.isArray(hooks) ? hooks : [hooks]), authenticate];
    }
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
}

export const securityPlugin = fp(security, { name: 'revokescope-security', fastify: '5.x', dependencies: ['revokescope-errors'] });
