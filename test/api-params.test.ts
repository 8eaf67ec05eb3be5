// Query parameters and body times are strictly typed (issue 16): no `Infinity`, hex, exponents or blanks for
// numbers, no impossible calendar dates; each is a 400 that names the parameter. One parser
// (services/api/params.ts) serves every route; the HTTP cases go through the full API on 127.0.0.1.
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { numberProblem, parseTime, rfc3339Ms } from '../services/api/params.js';
import { storeWithFleet } from './support/api-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';

describe('the parser', () => {
  it.each(['Infinity', '-Infinity', 'NaN', '0x10', '0b11', '0o7', '1e3', '1E3', ' 10', '10 ', '+5', '010', '1.0', '', '-', '9007199254740993'])(
    'integer %j is refused', (text) => {
      expect(numberProblem(text)).toMatch(/must be a decimal integer/);
    });
  it.each([['0', 0], ['7', 7], ['-3', -3], ['10000', 10000]])('integer %j is %d', (text, n) => {
    expect(numberProblem(text)).toBeUndefined();
    expect(Number(text)).toBe(n);
  });
  it('ranges and decimals', () => {
    expect(numberProblem('0', { min: 1, max: 5 })).toMatch(/from 1 to 5, got 0/);
    expect(numberProblem('2.5', { integer: false })).toBeUndefined();
    expect(numberProblem('.5', { integer: false })).toMatch(/decimal number/);
  });

  it.each([
    '2026-02-30T00:00:00Z', '2025-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z',
    '2026-01-00T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01T23:60:00Z', '2026-01-01T23:59:60Z', '2026-01-01T00:00:00+24:00',
    '2026-01-01T00:00:00+01:60', '2026-01-01 00:00:00Z', '2026-01-01T00:00:00', 'yesterday', '1e12', '0x1',
  ])('time %j is refused', (text) => {
    expect(() => parseTime('querystring/from', text)).toThrow(/querystring\/from is not a valid time/);
  });
  it.each([
    ['2024-02-29T00:00:00Z', Date.UTC(2024, 1, 29)], ['2000-02-29T12:00:00Z', Date.UTC(2000, 1, 29, 12)],
    ['2026-03-01T01:30:00+01:30', Date.UTC(2026, 2, 1)], ['2026-03-01T00:00:00.123456789Z', Date.UTC(2026, 2, 1) + 123],
    ['2026-12-31T23:59:59-00:00', Date.UTC(2026, 11, 31, 23, 59, 59)], ['1700000000000', 1700000000000],
  ])('time %j is %d', (text, ms) => {
    expect(parseTime('querystring/from', text)).toBe(ms);
  });
  it('years before 100 are not shifted to the 1900s', () => {
    expect(rfc3339Ms('0099-01-01T00:00:00Z')).toBe(new Date('0099-01-01T00:00:00Z').getTime());
  });
});

describe('over HTTP', () => {
  let client: ClickHouseClient;
  let api: TestApi;
  beforeAll(async () => {
    ({ client } = await storeWithFleet(Date.now()));
    api = await startApi(client, { security: { rateLimitMax: 0 } });
  });
  afterAll(async () => { await api?.app.close(); await client?.close(); });

  it.each([
    ['/api/v1/episodes?limit=Infinity', /querystring\/limit must be a decimal integer from 1 to 10000, got "Infinity"/],
    ['/api/v1/findings?limit=0x10', /querystring\/limit .*"0x10"/],
    ['/api/v1/episodes?limit=1e3', /querystring\/limit .*"1e3"/],
    ['/api/v1/episodes?limit=%2010', /querystring\/limit .*" 10"/],
    ['/api/v1/hosts?limit=Infinity', /querystring\/limit .*"Infinity"/],
    ['/api/v1/notifications?limit=1e1', /querystring\/limit .*"1e1"/],
    ['/api/v1/episodes?from=2026-02-30T00:00:00Z', /querystring\/from is not a valid time/],
    ['/api/v1/findings?to=2025-02-29T10:00:00Z', /querystring\/to is not a valid time/],
    ['/api/v1/latency?from=2026-01-01T24:00:00Z', /querystring\/from is not a valid time/],
    ['/api/v1/latency?to=0x10', /querystring\/to /],
  ])('GET %s → 400', async (path, why) => {
    const r = await fetch(api.url + path);
    expect(r.status).toBe(400);
    expect((await r.json()).message).toMatch(why);
  });

  it.each(['/api/v1/episodes?limit=5', '/api/v1/episodes?from=2024-02-29T00:00:00Z', '/api/v1/findings?from=1700000000000&limit=1',
    '/api/v1/hosts?limit=10', '/api/v1/notifications?limit=1'])('GET %s → 200', async (path) => {
    expect((await fetch(api.url + path)).status).toBe(200);
  });

  it('a silence with an impossible date is a 400', async () => {
    const post = (startsAt: string, endsAt: string) => fetch(`${api.url}/api/v2/silences`, { method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ matchers: [{ name: 'alertname', value: 'X', isRegex: false }], startsAt, endsAt, createdBy: 't', comment: 'c' }) });
    const bad = await post('2026-02-30T00:00:00Z', '2099-01-01T00:00:00Z');
    expect(bad.status).toBe(400);
    expect((await bad.json()).message).toMatch(/startsAt/);
    expect((await post(new Date().toISOString(), '2099-02-29T00:00:00Z')).status).toBe(400);
    expect((await post(new Date().toISOString(), '2096-02-29T00:00:00Z')).status).toBe(200);
  });
});
