// The dashboards over a simulated fleet (every kernel era, driver and fault the simulator knows), correlated
// by the real correlator, written through the store's writer into chDB, with collector health from the
// pipeline's HostHealthTracker: every panel query must run and return rows in the shape its panel needs.
// (dashboards-queries.test.ts checks exact values on a small hand-built fleet.)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { simulate } from '../collectors/simulator/index.js';
import { checkDashboard, type PanelRun, type RunSql } from '../dashboards/check.js';
import { DASHBOARDS } from '../dashboards/index.js';
import type { TimeRange } from '../dashboards/interpolate.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { v1 } from '../services/core/model.js';
import { BatchScan } from '../services/core/wire.js';
import { HostHealthTracker } from '../services/pipeline/health.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { ConsumerBookkeeping } from '../services/transport/kafka/bookkeeping.js';

const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
const DURATION_NS = 6 * 60e9;
const SAMPLES = 12;
// the simulated window ends a minute before NOW
const START_MS = NOW_MS - DURATION_NS / 1e6 - 60_000;
const RANGE: TimeRange = { fromMs: NOW_MS - 3600e3, toMs: NOW_MS, intervalMs: 60_000 };

let dir: string;
let client: ClickHouseClient;
let store: ClickHouseStore;

const run: RunSql = async (sql) => {
  const rs = await client.query({ query: sql, format: 'JSONCompactEachRowWithNamesAndTypes' });
  const [names, types, ...rows] = await rs.json<unknown[]>();
  return { names: names as string[], types: types as string[], rows };
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'revokescope-dash-sim-'));
  client = (await connect({ dataDir: dir })).client;
  store = new ClickHouseStore(client, { now: () => START_MS, wallClockShiftNs: 0, writer: { maxDelayMs: 50 } });
  await store.migrate();
  // the fleet correlator's bookkeeping tables, with a few dead-lettered messages in the simulated window
  const bookkeeping = new ConsumerBookkeeping(client, 'revokescope', 'test'); // its tables come with the store's migrations
  await bookkeeping.writeDlq([0, 1, 2, 3].map((m) => ({ timeMs: START_MS + m * 60e3, topic: 'revokescope.events',
    partition: m % 2, reason: m % 2 ? 'invalid batch' : 'corrupt protobuf', count: 5 + m })));
  const { batches } = simulate({ hosts: 10, durationNs: DURATION_NS, seed: 11 });
  const { episodes, findings } = analyzeBatches(batches);
  // collector health as the pipeline records it: the tracker sees the batches in arrival order, a sample of
  // every host boot at regular intervals
  let clock = START_MS;
  const health = new HostHealthTracker(() => clock);
  const scan = new BatchScan();
  const per = Math.ceil(batches.length / SAMPLES);
  for (let i = 0; i < batches.length; i++) {
    health.observeScan(scan.read(v1.EventBatch.encode(batches[i]!).finish()));
    await store.writeBatch(batches[i]!);
    if ((i + 1) % per === 0 || i === batches.length - 1) {
      clock = START_MS + Math.round(((i + 1) / batches.length) * (DURATION_NS / 1e6));
      await store.writeHostHealth(health.rows());
    }
  }
  await store.writeEpisodes(episodes);
  await store.writeFindings(findings);
  await store.flush();
}, 300_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const report = (runs: PanelRun[], file: string): string[] =>
  runs.filter((r) => r.problems.length > 0).map((r) => `${file} / ${r.panel.title}: ${r.problems.join('; ')}\n${r.sql}`);

describe('dashboards over a simulated fleet', () => {
  it('the store holds the simulated fleet', async () => {
    const [[episodes, findings, health]] = (await run(`SELECT (SELECT count() FROM revokescope.episodes), (SELECT count() FROM revokescope.findings),
      (SELECT uniqExact(hostname) FROM revokescope.host_health)`)).rows as number[][];
    expect(Number(episodes)).toBeGreaterThan(100);
    expect(Number(findings)).toBeGreaterThan(0);
    expect(Number(health)).toBe(10);
    const [[dlq]] = (await run('SELECT sum(count) FROM revokescope.dlq_events')).rows as number[][];
    expect(Number(dlq)).toBe(5 + 6 + 7 + 8);
  });

  for (const { file, spec } of DASHBOARDS) {
    it(`${file}: every panel returns rows in its panel's shape (All, then every value listed)`, async () => {
      expect(report(await checkDashboard(spec, run, RANGE, 'all', true), file)).toEqual([]);
      expect(report(await checkDashboard(spec, run, RANGE, 'list', true), file)).toEqual([]);
    });
  }
});
