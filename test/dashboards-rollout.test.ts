// The kernel-rollout dashboard's A/B row shows the numbers `revokescope compare` prints: its SQL, expanded as the
// Grafana plugin expands it and run in chDB over simulated fleets (the baseline a fleet's 6.12 era as one release, the
// candidate another fleet's with revoke latency × 1.2), against the command's JSON over the same store.
import type { ClickHouseClient } from '@clickhouse/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { overallLatency, overallRates, stratumLatency, stratumRates } from '../dashboards/rollout-strata.js';
import type { PanelSpec } from '../dashboards/builder.js';
import { interpolate, type TimeRange, type Variables } from '../dashboards/interpolate.js';
import { run } from '../services/cli/commands/compare.js';
import type { Comparison } from '../services/report/compare.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { asKernel, correlatedFleet, writeFleets } from './support/compare-fleets.js';

const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
const RANGE: TimeRange = { fromMs: NOW_MS - 3 * 3600e3, toMs: NOW_MS, intervalMs: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'rs-rollout-'));
const dataDir = join(dir, 'store');
let client: ClickHouseClient;
let release: string;
const candidate = (): string => release.replace(/^a-/, 'slow-');

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void { this.text += chunk.toString(); cb(); }
}

beforeAll(async () => {
  const fleet = { hosts: 200, durationNs: 120e9 };
  const a = correlatedFleet({ ...fleet, seed: 61 }), b = correlatedFleet({ ...fleet, seed: 62 });
  // every 6.12 release of a fleet as one release (the dashboard compares two releases; this gives each 40 hosts)
  const one = (r: string): string => (r.startsWith('6.12.') ? '6.12.57+rollout' : r);
  release = 'a-6.12.57+rollout';
  const conn = await connect({ dataDir });
  const store = new ClickHouseStore(conn.client, { now: () => NOW_MS - 30 * 60_000, writer: { maxDelayMs: 50 } });
  await store.migrate();
  await writeFleets(store, [asKernel(a, 'a-', 1, one), asKernel(b, 'slow-', 1.2, one)]);
  await store.close();
  client = (await connect({ dataDir })).client;
}, 600_000);

afterAll(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function compareJson(): Promise<Comparison> {
  const stdout = new Capture(), stderr = new Capture();
  await run(['--data-dir', dataDir, '--baseline', release, '--candidate', candidate(), '--format', 'json'], { stdout, stderr }, NOW_MS);
  expect(stderr.text).toBe('');
  return JSON.parse(stdout.text) as Comparison;
}

async function panel(p: PanelSpec, metric: string, quantile: string): Promise<Record<string, unknown>[]> {
  const one = (v: string) => ({ multi: false, values: [v], options: [v] });
  const vars: Variables = { baseline: one(release), candidate: one(candidate()), driver: { multi: true, all: true, values: ['$__all'], options: [] },
    metric: one(metric), quantile: one(quantile) };
  const rs = await client.query({ query: interpolate(p.queries[0]!.sql, vars, RANGE), format: 'JSONEachRow' });
  return rs.json<Record<string, unknown>>();
}

const close = (x: unknown, y: number | undefined): void => {
  expect(y).toBeDefined();
  expect(Number(x) / y!).toBeCloseTo(1, 12);
};

describe('kernel-rollout: the A/B row shows what revokescope compare prints', () => {
  for (const [metric, quantile] of [['revoke', 0.99], ['revoke', 0.5], ['hold', 0.9]] as const) {
    it(`${metric} p${quantile * 100}: per-stratum quantiles, ratios and weights, and the overall ratio`, async () => {
      const c = await compareJson();
      const rows = await panel(stratumLatency, metric, String(quantile));
      const compared = c.strata.map((s) => ({ s, l: s.latency.find((x) => x.metric === metric && x.q === quantile)! })).filter(({ l }) => l.baseline.n + l.candidate.n > 0);
      expect(rows).toHaveLength(compared.length);
      const ratios = compared.filter(({ l }) => l.ratio !== undefined);
      expect(ratios.length).toBeGreaterThan(0);
      for (const { s, l } of compared) {
        const r = rows.find((x) => x.trigger === s.trigger && x.driver === s.driver)!;
        expect(r, `${s.trigger} ${s.driver}`).toBeDefined();
        expect([Number(r.baseline_values), Number(r.candidate_values), Number(r.baseline_hosts), Number(r.candidate_hosts)])
          .toEqual([l.baseline.n, l.candidate.n, l.baseline.hosts, l.candidate.hosts]);
        if (l.baseline.value !== undefined) close(Number(r.baseline_ms) * 1e6, l.baseline.value);
        if (l.candidate.value !== undefined) close(Number(r.candidate_ms) * 1e6, l.candidate.value);
        if (l.ratio === undefined) expect(r.ratio).toBeNull();
        else close(r.ratio, l.ratio);
      }
      const [o] = await panel(overallLatency, metric, String(quantile));
      const expected = c.overall.latency.find((x) => x.metric === metric && x.q === quantile)!;
      expect(Number(o!.strata)).toBe(expected.strata);
      close(o!.ratio, expected.ratio);
      close(o!.coverage, expected.coverage);
      if (metric === 'revoke') expect(Number(o!.ratio)).toBeGreaterThan(1.1);
    });
  }

  it('finding rates per 1000 episodes by stratum and standardized to the baseline mix', async () => {
    const c = await compareJson();
    const rows = await panel(stratumRates, 'revoke', '0.99');
    expect(rows).toHaveLength(c.strata.length);
    for (const s of c.strata) {
      const r = rows.find((x) => x.trigger === s.trigger && x.driver === s.driver)!;
      expect([Number(r.baseline_episodes), Number(r.candidate_episodes)]).toEqual([s.baselineEpisodes, s.candidateEpisodes]);
      const [certain, inconclusive] = s.rates;
      if (s.baselineEpisodes > 0) expect(Number(r.baseline_certain_per_1k)).toBeCloseTo(certain!.baseline.per1k, 10);
      if (s.candidateEpisodes > 0) expect(Number(r.candidate_inconclusive_per_1k)).toBeCloseTo(inconclusive!.candidate.per1k, 10);
    }
    const [o] = await panel(overallRates, 'revoke', '0.99');
    const [certain, inconclusive] = c.overall.rates;
    expect(c.baseline.findings.certain + c.candidate.findings.certain).toBeGreaterThan(0);
    expect(Number(o!.baseline_certain_per_1k)).toBeCloseTo(certain!.baseline.per1k, 10);
    expect(Number(o!.candidate_certain_per_1k)).toBeCloseTo(certain!.candidate.per1k, 10);
    expect(Number(o!.baseline_inconclusive_per_1k)).toBeCloseTo(inconclusive!.baseline.per1k, 10);
    expect(Number(o!.candidate_inconclusive_per_1k)).toBeCloseTo(inconclusive!.candidate.per1k, 10);
  });
});
