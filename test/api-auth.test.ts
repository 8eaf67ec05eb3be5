// Secure defaults of the API (issue 16): no open API beyond loopback unless asked for, no empty listen address,
// no placeholder tokens from deploy/, a rate limit that also holds for clients without a valid token, and token
// comparison that leaks neither length nor position. Over real HTTP (fastify on 127.0.0.1) and through the
// built CLI.
import { spawn, spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isLoopback, listenProblem, securityConfigFrom } from '../services/api/security/index.js';
import { storeWithFleet } from './support/api-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';
import { tempDir } from './store-fixtures.js';

// Count the constant-time comparisons the API makes (the real function does the work).
vi.mock('node:crypto', async (original) => {
  const real = await original<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const compare = crypto.timingSafeEqual as unknown as ReturnType<typeof vi.fn>;

const ADMIN = 'a'.repeat(8) + crypto.randomBytes(16).toString('hex'); // 40 characters
const READ = crypto.randomBytes(10).toString('hex'); // 20 characters
let client: ClickHouseClient;
const apis: TestApi[] = [];
beforeAll(async () => { ({ client } = await storeWithFleet(Date.now())); });
afterAll(async () => { for (const a of apis) await a.app.close(); await client?.close(); });

async function api(env: NodeJS.ProcessEnv, rateLimitMax: number): Promise<TestApi> {
  const a = await startApi(client, { env, security: { rateLimitMax }, alerting: { seedDefaultRules: false } });
  apis.push(a);
  return a;
}
const get = (a: TestApi, path: string, token?: string): Promise<Response> =>
  fetch(a.url + path, { headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

describe('rate limit before authentication', () => {
  it('clients without a valid token are limited by address, made-up tokens share that budget, a valid token has its own', async () => {
    const a = await api({ REVOKESCOPE_API_TOKENS: `admin:${ADMIN},read:${READ}` }, 5);
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await get(a, '/api/v2/alerts')).status);
    expect(codes).toEqual([401, 401, 401, 401, 401, 429, 429]);
    for (let i = 0; i < 3; i++) expect((await get(a, '/api/v2/alerts', crypto.randomBytes(12).toString('hex'))).status).toBe(429);
    const limited = await get(a, '/api/v2/alerts');
    expect((await limited.json()).message).toMatch(/rate limit of 5/);
    expect((await get(a, '/api/v2/alerts', READ)).status).toBe(200);
    expect((await get(a, '/healthz')).status).toBe(200); // health stays reachable
  });
});

describe('token comparison', () => {
  it('compares the presented token with every token in constant time, whatever its length or which one matches', async () => {
    const a = await api({ REVOKESCOPE_API_TOKENS: `admin:${ADMIN},read:${READ}` }, 0);
    const presented: [string, number][] = [
      [ADMIN, 200], [READ, 200], ['x', 401], [READ.slice(0, 19), 401], [`${READ}0`, 401], ['y'.repeat(40), 401], ['z'.repeat(200), 401],
    ];
    for (const [token, status] of presented) {
      compare.mockClear();
      expect((await get(a, '/api/v2/status', token)).status).toBe(status);
      // one comparison per configured token, each of two 32-byte digests: no length check first, no early exit
      expect(compare.mock.calls.length, `token of length ${token.length}`).toBe(2);
      for (const [x, y] of compare.mock.calls) expect([x.length, y.length]).toEqual([32, 32]);
    }
  });
});

describe('settings', () => {
  const tokensIn = (text: string): string => /REVOKESCOPE_API_TOKENS[=:]\s*(\S+)/.exec(text)![1]!;
  const ROOT = join(__dirname, '..');
  const placeholders = {
    'deploy/.env.example': tokensIn(readFileSync(join(ROOT, 'deploy/.env.example'), 'utf8')),
    'deploy/k8s/secret.yaml': (parse(readFileSync(join(ROOT, 'deploy/k8s/secret.yaml'), 'utf8')) as { stringData: Record<string, string> })
      .stringData.REVOKESCOPE_API_TOKENS!,
  };

  it.each(Object.entries(placeholders))('the placeholder tokens of %s are refused', (_file, tokens) => {
    expect(() => securityConfigFrom({}, { REVOKESCOPE_API_TOKENS: tokens })).toThrow(/REVOKESCOPE_API_TOKENS: .*placeholder/);
  });

  it.each([
    [{ REVOKESCOPE_API_TOKEN: 'short' }, /REVOKESCOPE_API_TOKEN: tokens must have at least 16/],
    [{ REVOKESCOPE_API_READ_TOKEN: 'CHANGE-ME-please-1234' }, /REVOKESCOPE_API_READ_TOKEN: .*placeholder/],
    [{ REVOKESCOPE_API_TOKENS: 'admin:has space in it 0123456789' }, /REVOKESCOPE_API_TOKENS: tokens may contain only/],
    [{ REVOKESCOPE_API_RATE_LIMIT: '-1' }, /REVOKESCOPE_API_RATE_LIMIT must be a decimal integer from 0/],
    [{ REVOKESCOPE_API_RATE_LIMIT: 'abc' }, /REVOKESCOPE_API_RATE_LIMIT must be/],
    [{ REVOKESCOPE_API_RATE_LIMIT: '1e3' }, /REVOKESCOPE_API_RATE_LIMIT must be/],
    [{ REVOKESCOPE_API_RATE_LIMIT: '' }, /REVOKESCOPE_API_RATE_LIMIT must be/],
    [{ REVOKESCOPE_API_BODY_LIMIT: '-1' }, /REVOKESCOPE_API_BODY_LIMIT must be a decimal integer from 1024/],
    [{ REVOKESCOPE_API_BODY_LIMIT: '0x100000' }, /REVOKESCOPE_API_BODY_LIMIT must be/],
  ])('%j is refused', (env, why) => {
    expect(() => securityConfigFrom({}, env)).toThrow(why);
  });

  it('good values are taken', () => {
    expect(securityConfigFrom({}, { REVOKESCOPE_API_RATE_LIMIT: '0', REVOKESCOPE_API_BODY_LIMIT: '65536' }))
      .toMatchObject({ rateLimitMax: 0, bodyLimit: 65536, tokens: [] });
  });

  it('beyond loopback the API needs tokens or --insecure-no-auth; an empty address is an error', () => {
    const open = securityConfigFrom({}, {});
    const closed = securityConfigFrom({}, { REVOKESCOPE_API_TOKENS: `read:${READ}` });
    for (const h of ['127.0.0.1', '127.3.2.1', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) {
      expect(isLoopback(h), h).toBe(true);
      expect(listenProblem(h, '--host', open, false)).toBeUndefined();
    }
    for (const h of ['0.0.0.0', '::', '10.1.2.3', 'api.example.net', '128.0.0.1']) {
      expect(isLoopback(h), h).toBe(false);
      expect(listenProblem(h, '--host', open, false)).toMatch(/REVOKESCOPE_API_TOKENS.*--insecure-no-auth/);
      expect(listenProblem(h, '--host', open, true)).toBeUndefined();
      expect(listenProblem(h, '--host', closed, false)).toBeUndefined();
    }
    expect(listenProblem('', 'REVOKESCOPE_API_HOST', closed, true)).toMatch(/^REVOKESCOPE_API_HOST is empty/);
  });
});

describe('revokescope serve', () => {
  const CLI = 'dist/services/cli/main.js';
  const tmp = tempDir('revokescope-auth-');
  afterAll(() => tmp.remove());
  beforeAll(() => { if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`); });
  const env = (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
    const e = { ...process.env, ...extra };
    for (const k of Object.keys(e)) if (k.startsWith('REVOKESCOPE_API_') && !(k in extra)) delete e[k];
    return e;
  };
  const serve = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [CLI, 'serve', '--data-dir', tmp.dir, '--port', '0', ...args], { encoding: 'utf8', env: env(extra), timeout: 60_000 });

  it.each([
    ['--host 0.0.0.0 without tokens', ['--host', '0.0.0.0'], {}, /refusing to serve the API on 0\.0\.0\.0 without tokens.*REVOKESCOPE_API_TOKENS.*--insecure-no-auth/],
    ['REVOKESCOPE_API_HOST= (empty)', [], { REVOKESCOPE_API_HOST: '' }, /REVOKESCOPE_API_HOST is empty/],
    ['--host "" (empty)', ['--host', ''], { REVOKESCOPE_API_TOKENS: `read:${READ}` }, /--host is empty/],
    ['REVOKESCOPE_API_HOST=0.0.0.0 without tokens', [], { REVOKESCOPE_API_HOST: '0.0.0.0' }, /refusing to serve/],
    ['the placeholder tokens of deploy/.env.example', ['--host', '0.0.0.0'],
      { REVOKESCOPE_API_TOKENS: 'admin:change-me-admin-token-0001,read:change-me-read-token-00001' }, /placeholder/],
    ['a negative rate limit', [], { REVOKESCOPE_API_RATE_LIMIT: '-1' }, /REVOKESCOPE_API_RATE_LIMIT must be/],
  ])('%s: exit 2 with the reason', (_name, args, extra, why) => {
    const r = serve(args, extra);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim()).toMatch(why);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('revokescope run refuses a bad API setting the same way', () => {
    const r = spawnSync(process.execPath, [CLI, 'run', '--duration', '1', '--data-dir', tmp.dir], { encoding: 'utf8',
      env: env({ REVOKESCOPE_API_BODY_LIMIT: 'lots' }), timeout: 60_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/REVOKESCOPE_API_BODY_LIMIT must be/);
  });

  it('--insecure-no-auth serves an open API beyond loopback, saying so', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '--data-dir', tmp.dir, '--port', '0', '--host', '0.0.0.0', '--insecure-no-auth'],
      { env: env({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no API line:\n${out}`)), 90_000);
        const poll = setInterval(() => {
          const m = /API: (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
          if (m) { clearInterval(poll); clearTimeout(t); resolve(m[1]!); }
        }, 50);
      });
      expect(out).toMatch(/warning: --insecure-no-auth: the API on 0\.0\.0\.0 is open to anyone/);
      expect((await fetch(`${url}/api/v2/status`)).status).toBe(200);
    } finally {
      child.kill('SIGINT');
    }
    expect(await exited).toBe(0);
  });
});
