// The latency_regression alert rule over real HTTP (the full fastify API) and real chDB data: simulated fleets
// correlated by the real correlator and written by the store's writer. A candidate kernel whose revoke latencies are
// the other fleet's × 1.2 fires with the lower end of the ratio's interval as its value (the number `revokescope
// compare` prints); an identical fleet does not; rules are validated; the OpenAPI document lists the type.
import type { ClickHouseClient } from '@clickhouse/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareKernels } from '../services/report/compare.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { kernelStrata } from '../services/store/queries.js';
import { asKernel, correlatedFleet, writeFleets } from './support/compare-fleets.js';
import { startApi, type TestApi } from './support/api-server.js';

const NOW = Math.floor(Date.now() / 60_000) * 60_000;
const dir = mkdtempSync(join(tmpdir(), 'rs-api-regression-'));
let client: ClickHouseClient;
let api: TestApi;

async function send(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(api.url + path, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

const rule = (id: string, query: Record<string, unknown>, threshold = 1) => ({
  id, name: 'KernelRolloutRegression', query: { type: 'latency_regression', window: '1h', metric: 'revoke', quantile: 0.9, ...query },
  threshold: { op: '>', value: threshold }, for: '0s', labels: { severity: 'warning' },
  annotations: { summary: 'revoke p90 of {{ $labels.candidate }} is at least ×{{ $value }} that of {{ $labels.baseline }}' },
});

beforeAll(async () => {
  const fleet = { hosts: 150, durationNs: 120e9 };
  const a = correlatedFleet({ ...fleet, seed: 51 }), b = correlatedFleet({ ...fleet, seed: 52 });
  client = (await connect({ dataDir: dir })).client;
  const store = new ClickHouseStore(client, { now: () => NOW - 20 * 60_000, writer: { maxDelayMs: 50 } });
  await store.migrate();
  await writeFleets(store, [a, asKernel(b, 'same-'), asKernel(b, 'slow-', 1.2)]);
  api = await startApi(client, { now: () => NOW, alerting: { seedDefaultRules: false } });
}, 600_000);

afterAll(async () => {
  await api?.app.close();
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('latency_regression rules', () => {
  it('fire on the slowed kernel with the interval\'s lower end as value, and stay quiet on the identical one', async () => {
    expect((await send('POST', '/api/v1/rules', rule('rollout-slow', { baseline: '6.12.*', candidate: 'slow-6.12.*' }))).status).toBe(201);
    expect((await send('POST', '/api/v1/rules', rule('rollout-same', { baseline: '6.12.*', candidate: 'same-6.12.*' }))).status).toBe(201);
    await api.engine.evaluate();
    const { alerts } = (await send('GET', '/api/v1/alerts')).body;
    expect(alerts.map((x: any) => x.ruleId)).toEqual(['rollout-slow']);
    const [alert] = alerts;
    expect(alert.state).toBe('firing');
    expect(alert.labels).toMatchObject({ alertname: 'KernelRolloutRegression', baseline: '6.12.*', candidate: 'slow-6.12.*', metric: 'revoke',
      quantile: '0.9', severity: 'warning' });
    expect(alert.value).toBeGreaterThan(1);
    expect(alert.value).toBeLessThan(1.2);
    expect(alert.annotations.summary).toBe(`revoke p90 of slow-6.12.* is at least ×${alert.value.toPrecision(6).replace(/\.?0+$/, '')} that of 6.12.*`);
    // the same number `revokescope compare` computes over the rule's window
    const read = async (kernel: string) => ({ label: kernel, ...await kernelStrata(client, 'revokescope', { kernel, fromMs: NOW - 3600e3, toMs: NOW, maxSamples: 20_000 }) });
    const c = compareKernels(await read('6.12.*'), await read('slow-6.12.*'));
    expect(alert.value).toBe(c.overall.latency.find((l) => l.metric === 'revoke' && l.q === 0.9)!.lower);
    const health = (await send('GET', '/api/v1/rules/rollout-same')).body.health;
    expect(health).toMatchObject({ state: 'ok', series: 0 });
  });

  it('a threshold above the slowdown does not fire; grouped by driver, each driver is its own series', async () => {
    expect((await send('POST', '/api/v1/rules', rule('rollout-high', { baseline: '6.12.*', candidate: 'slow-6.12.*' }, 1.5))).status).toBe(201);
    expect((await send('POST', '/api/v1/rules', rule('rollout-by-driver', { baseline: '6.12.*', candidate: 'slow-6.12.*', quantile: 0.5,
      groupBy: ['driver'] }))).status).toBe(201);
    await api.engine.evaluate();
    const { alerts } = (await send('GET', '/api/v1/alerts')).body;
    expect(alerts.filter((x: any) => x.ruleId === 'rollout-high')).toEqual([]);
    const byDriver = alerts.filter((x: any) => x.ruleId === 'rollout-by-driver').map((x: any) => x.labels.driver).sort();
    expect(byDriver).toContain('vfio-pci');
    expect(new Set(byDriver).size).toBe(byDriver.length);
    expect((await send('GET', '/api/v1/rules/rollout-by-driver')).body.query).toMatchObject({ baseline: '6.12.*', candidate: 'slow-6.12.*', groupBy: ['driver'] });
  });

  it('rejects rules it cannot evaluate, with the reason', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ baseline: '6.12.*' }, /needs query.baseline and query.candidate/],
      [{ baseline: '6.12.*', candidate: 'x', quantile: 0.999 }, /query.quantile must be one of 0.5, 0.9, 0.99/],
      [{ baseline: '6.12.*', candidate: 'x', metric: 'zap' }, /query.metric must be one of revoke, hold/],
      [{ baseline: '6.12.*', candidate: 'x', groupBy: ['hostname'] }, /groupBy: hostname is not available for latency_regression/],
      [{ baseline: '6.12.*', candidate: 'x', alpha: 0.9 }, /alpha/],
      [{ baseline: '', candidate: 'x' }, /baseline/],
    ];
    for (const [query, message] of cases) {
      const r = await send('POST', '/api/v1/rules', rule('bad', query));
      expect(r.status, JSON.stringify(query)).toBe(400);
      expect(r.body.message).toMatch(message);
    }
    const other = await send('POST', '/api/v1/rules', { ...rule('bad', {}), query: { type: 'finding_count', window: '1h', baseline: '6.12.*' } });
    expect(other.status).toBe(400);
    expect(other.body.message).toMatch(/only apply to latency_regression/);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await send('GET', '/openapi.json')).body;
    const text = JSON.stringify(doc);
    expect(text).toContain('"latency_regression"');
    expect(text).toContain('latency_regression: baseline kernel release or glob');
  });
});
