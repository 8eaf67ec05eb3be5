// Security and operations endpoints on real HTTP: bearer scopes (also through amtool's http config), rate
// limit, body limit, validation errors with reasons, health/readiness, Prometheus metrics, OpenAPI.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeWithFleet } from './support/api-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';
import { amtool, ensureGoTool } from './support/amtool.js';

const ADMIN = 'admin-token-0123456789abcdef';
const READ = 'read-token-0123456789abcdef';
let client: ClickHouseClient;
let api: TestApi;

const req = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(api.url + path, { ...init, headers: { ...(init.token ? { authorization: `Bearer ${init.token}` } : {}), ...(init.headers as object) } });
const silence = () => ({ matchers: [{ name: 'alertname', value: 'RevokeSkippedZap', isRegex: false }],
  startsAt: new Date().toISOString(), endsAt: new Date(Date.now() + 3600_000).toISOString(), createdBy: 't', comment: 'c' });

beforeAll(async () => {
  ({ client } = await storeWithFleet(Date.now()));
  api = await startApi(client, { env: { REVOKESCOPE_API_TOKENS: `admin:${ADMIN},read:${READ}` }, security: { rateLimitMax: 1000 } });
  await api.engine.evaluate();
});
afterAll(async () => { await api?.app.close(); await client?.close(); });

describe('bearer tokens', () => {
  it('401 without or with an unknown token, 403 for a read token on a write, 2xx with the right scope', async () => {
    const none = await req('/api/v2/alerts');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await none.json()).message).toBe('bearer token required');
    expect((await req('/api/v2/alerts', { token: 'nope' })).status).toBe(401);
    expect((await req('/api/v2/alerts', { token: READ })).status).toBe(200);
    expect((await req('/api/v1/episodes?limit=1', { token: READ })).status).toBe(200);
    const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(silence()) };
    const forbidden = await req('/api/v2/silences', { ...post, token: READ });
    expect(forbidden.status).toBe(403);
    expect((await forbidden.json()).message).toMatch(/admin scope/);
    expect((await req('/api/v2/silences', { ...post, token: ADMIN })).status).toBe(200);
    expect((await req('/api/v1/alerts/evaluate', { method: 'POST', token: READ })).status).toBe(403);
    expect((await req('/api/v1/alerts/evaluate', { method: 'POST', token: ADMIN })).status).toBe(200);
    for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json']) expect((await req(p)).status, p).toBe(200);
  });

  const tool = ensureGoTool('amtool');
  (tool.path ? it : it.skip)('amtool authenticates with a bearer token from its http config file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rs-amtool-'));
    writeFileSync(join(dir, 'read.yml'), `authorization:\n  type: Bearer\n  credentials: ${READ}\n`);
    writeFileSync(join(dir, 'admin.yml'), `authorization:\n  type: Bearer\n  credentials: ${ADMIN}\n`);
    expect((await amtool(tool.path!, api.url, ['alert', 'query'])).code).not.toBe(0);
    const ok = await amtool(tool.path!, api.url, ['alert', 'query', '-o', 'json'], { httpConfigFile: join(dir, 'read.yml') });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout).length).toBeGreaterThan(0);
    const denied = await amtool(tool.path!, api.url, ['silence', 'add', 'alertname=X', '--comment=c'], { httpConfigFile: join(dir, 'read.yml') });
    expect(denied.code).not.toBe(0);
    const added = await amtool(tool.path!, api.url, ['silence', 'add', 'alertname=X', '--comment=c'], { httpConfigFile: join(dir, 'admin.yml') });
    expect(added.code, added.stderr).toBe(0);
  });
});

describe('bad input is a 4xx with a reason', () => {
  const json = { 'content-type': 'application/json' };
  it('body limit 413, malformed JSON 400, wrong media type 415', async () => {
    const big = { ...silence(), comment: 'x'.repeat(300 * 1024) };
    expect((await req('/api/v2/silences', { method: 'POST', headers: json, body: JSON.stringify(big), token: ADMIN })).status).toBe(413);
    const bad = await req('/api/v2/silences', { method: 'POST', headers: json, body: '{"matchers": [', token: ADMIN });
    expect(bad.status).toBe(400);
    expect((await req('/api/v2/silences', { method: 'POST', headers: { 'content-type': 'text/csv' }, body: 'a,b', token: ADMIN })).status).toBe(415);
  });

  it.each([
    ['/api/v2/alerts?filter=alertname%3D', 200],
    ['/api/v2/alerts?filter=%3D%3Dx', 400],
    ['/api/v2/alerts?filter=a%3D~%22(a%2B)%2B%22', 200], // nested quantifiers are fine for a linear-time engine
    [`/api/v2/alerts?filter=${encodeURIComponent('a=~"(?=x)y"')}`, 400], // lookaround: not RE2
    [`/api/v2/alerts?filter=${encodeURIComponent('a=~"(x)\\\\1"')}`, 400], // backreference: not RE2
    [`/api/v2/alerts?filter=${encodeURIComponent('a=~"(.?){999}x"')}`, 400], // program too large
    ['/api/v2/alerts?filter=a%3D~%22%5B%22', 400],
    ['/api/v2/alerts?receiver=(', 400],
    ['/api/v2/alerts?active=maybe', 400],
    ['/api/v2/alerts?bogus=1', 400],
    ['/api/v2/silence/not-a-uuid', 400],
    ['/api/v2/silence/6f1a3c2e-0000-4000-8000-000000000000', 404],
    ['/api/v1/rules/NOPE', 400],
    ['/api/v1/hosts?window=forever', 400],
    ['/api/v1/notifications?limit=0', 400],
  ])('GET %s → %i', async (path, status) => {
    const r = await req(path, { token: READ });
    expect(r.status).toBe(status);
    if (status >= 400) expect((await r.json()).message.length).toBeGreaterThan(3);
  });

  it('silence validation: endsAt in the past, no matcher that can fail, bad regex', async () => {
    const post = (b: unknown) => req('/api/v2/silences', { method: 'POST', headers: json, body: JSON.stringify(b), token: ADMIN });
    const past = await post({ ...silence(), startsAt: new Date(Date.now() - 7200_000).toISOString(), endsAt: new Date(Date.now() - 1000).toISOString() });
    expect(past.status).toBe(400);
    expect((await past.json()).message).toMatch(/past/);
    const empty = await post({ ...silence(), matchers: [{ name: 'a', value: '.*', isRegex: true }] });
    expect((await empty.json()).message).toMatch(/empty string/);
    expect((await post({ ...silence(), matchers: [{ name: 'a', value: '(x*)*', isRegex: true }] })).status).toBe(400);
    expect((await post({ ...silence(), id: '6f1a3c2e-0000-4000-8000-000000000000' })).status).toBe(404);
  });
});

describe('operations', () => {
  it('readiness checks the store and the alerting engine; metrics expose latency, evaluation time and alert states', async () => {
    expect(await (await req('/readyz')).json()).toEqual({ status: 'ready', checks: { store: 'ok', alerting: 'ok' } });
    const text = await (await req('/metrics')).text();
    expect(text).toMatch(/revokescope_http_request_duration_seconds_bucket\{.*route="\/api\/v2\/alerts".*status_code="200"/);
    expect(text).toMatch(/revokescope_rule_evaluation_duration_seconds_count\{rule_id="skipped-zap"\} [1-9]/);
    expect(text).toMatch(/revokescope_alerts\{state="firing"\} [1-9]/);
    const doc = await (await req('/openapi.json')).json();
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components.securitySchemes.bearerAuth).toEqual({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/api/v2/alerts'].get.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/episodes', '/api/v1/findings', '/api/v1/latency', '/api/v1/hosts',
      '/api/v1/rules', '/api/v2/silences', '/api/v2/silence/{silenceID}', '/api/v2/status', '/api/v2/receivers']));
  });

  it('hosts: last seen, rates and loss from collector health', async () => {
    const { hosts } = await (await req('/api/v1/hosts?window=2h', { token: READ })).json();
    expect(hosts.map((h: any) => h.hostname)).toEqual(['host-a', 'host-b', 'host-c']);
    const b = hosts[1];
    expect(b).toMatchObject({ bootId: 'boot-b', events: 20000, lost: 240, capabilities: ['LOCK', 'ZAP'] });
    expect(b.eventsPerSecond).toBeCloseTo(20000 / 600, 3);
    expect(hosts[2].silentSeconds).toBeGreaterThan(1600); // last sample 28 min before the data's t0
  });

  it('rate limit: 429 with a reason once a client exceeds its budget', async () => {
    const limited = await startApi(client, { security: { rateLimitMax: 5 }, alerting: { seedDefaultRules: false } });
    try {
      const codes = [];
      for (let i = 0; i < 7; i++) codes.push((await fetch(`${limited.url}/api/v2/status`)).status);
      expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const r = await fetch(`${limited.url}/api/v2/status`);
      expect((await r.json()).message).toMatch(/rate limit of 5/);
      expect((await fetch(`${limited.url}/healthz`)).status).toBe(200); // health stays reachable
    } finally {
      await limited.app.close();
    }
  });
});
