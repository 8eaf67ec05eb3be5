// The error catalogue end to end (real HTTP, real chDB): every error body is { statusCode, error, message, code },
// and a 5xx is logged with its cause through the command's pino logger — the store closed under the running
// API is the fault — while the client sees neither the cause nor a stack.
import { Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusOf, StoreUnavailable, UnknownId } from '../services/api/errors.js';
import { createLogger } from '../services/cli/logger.js';
import { storeWithFleet } from './support/api-fixtures.js';
import { startApi, type TestApi } from './support/api-server.js';

let client: ClickHouseClient;
let api: TestApi;
const lines: Record<string, any>[] = [];
const sink = new Writable({ write(chunk, _enc, done) { for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l)); done(); } });

async function send(method: string, path: string, body?: unknown): Promise<{ status: number; body: any; text: string }> {
  const r = await fetch(api.url + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined, text };
}

beforeAll(async () => {
  ({ client } = await storeWithFleet(Date.now()));
  api = await startApi(client, { logger: createLogger('serve', 'info', sink), security: { rateLimitMax: 0 } });
});
afterAll(async () => { await api?.app.close(); });

describe('the error catalogue', () => {
  it.each([
    ['GET', '/api/v1/rules/no-such-rule', undefined, 404, 'Not Found', 'REVOKESCOPE_NOT_FOUND', /rule no-such-rule not found/],
    ['GET', '/api/v2/silence/2f0e4f0c-7b7e-4b5e-9a4e-3f1a2b3c4d5e', undefined, 404, 'Not Found', 'REVOKESCOPE_NOT_FOUND', /silence .* not found/],
    ['GET', '/no/such/route', undefined, 404, 'Not Found', 'REVOKESCOPE_NOT_FOUND', /no route GET \/no\/such\/route/],
    ['GET', '/api/v1/episodes?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z', undefined, 400, 'Bad Request', 'REVOKESCOPE_BAD_PARAMETER',
      /from must be before/],
    ['GET', '/api/v1/hosts?window=1y', undefined, 400, 'Bad Request', 'FST_ERR_VALIDATION', /querystring\/window/],
    ['GET', '/api/v1/alerts?filter=%7Bbad', undefined, 400, 'Bad Request', 'REVOKESCOPE_BAD_PARAMETER', /unbalanced braces|expected/],
    ['POST', '/api/v1/rules', { id: 'host-silent', name: 'Dup', query: { type: 'host_silent', window: '1h' }, threshold: { op: '>', value: 1 } },
      409, 'Conflict', 'REVOKESCOPE_CONFLICT', /rule host-silent exists/],
    ['PUT', '/api/v1/rules/host-silent', { id: 'other', name: 'X', query: { type: 'host_silent', window: '1h' }, threshold: { op: '>', value: 1 } },
      400, 'Bad Request', 'REVOKESCOPE_BAD_PARAMETER', /id in body differs/],
  ] as const)('%s %s → %i', async (method, path, body, status, error, code, message) => {
    const r = await send(method, path, body);
    expect(r.status, r.text).toBe(status);
    expect(r.body).toMatchObject({ statusCode: status, error, code });
    expect(r.body.message).toMatch(message);
  });
});

describe('statusOf', () => {
  it('keeps a catalogue error\'s status, makes a defect a 500 and any other failure the store\'s 503', () => {
    expect(statusOf(new UnknownId('x'))).toBe(404);
    expect(statusOf(new StoreUnavailable())).toBe(503);
    expect(statusOf(new TypeError('undefined is not a function'))).toBe(500);
    expect(statusOf(new Error('Code: 60. DB::Exception: Unknown table'))).toBe(503);
  });
});

describe('a 5xx', () => {
  it('is logged with its cause and request id; the client gets no internals', async () => {
    await client.close(); // the store goes away under the running API
    const r = await fetch(`${api.url}/api/v1/episodes`, { headers: { 'x-request-id': 'ignored' } });
    const body = await r.json() as any;
    expect(r.status).toBe(503);
    expect(body).toEqual({ statusCode: 503, error: 'Service Unavailable', message: 'the store did not answer; retry later',
      code: 'REVOKESCOPE_STORE_UNAVAILABLE' });
    const failed = lines.filter((l) => l.msg === 'request failed');
    expect(failed).toHaveLength(1);
    const line = failed[0]!;
    expect(line.level).toBe(50);
    expect(line.name).toBe('revokescope serve');
    expect(typeof line.reqId).toBe('string');
    expect(line.err.message.length).toBeGreaterThan(0);
    expect(line.err.stack).toContain(line.err.message);
    expect(JSON.stringify(body)).not.toContain(line.err.message);
    // the same request id on the request's other log lines: the failure can be traced to its request
    const incoming = lines.find((l) => l.msg === 'incoming request' && l.reqId === line.reqId);
    expect(incoming?.req.url).toBe('/api/v1/episodes');
  });
});
