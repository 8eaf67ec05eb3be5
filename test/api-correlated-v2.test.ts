// End to end with the rules-v2 correlator: a hand-written trace (the collector starts inside a write section,
// memory is disabled, then a fault installs PTEs, then only heartbeats) analyzed by the correlator, written
// through the store (raw events, episodes, findings, host health from the pipeline's tracker) into chDB, read
// and alerted on over real HTTP. What the correlator emits is what the store keeps and the API serves.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBatches } from '../services/core/analysis.js';
import { FindingKind, TriggerKind, v1 } from '../services/core/model.js';
import { BatchScan } from '../services/core/wire.js';
import { HostHealthTracker } from '../services/pipeline/health.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { startApi, type TestApi } from './support/api-server.js';
import { TraceBuilder, us } from './support/trace-builder.js';

const D = '0000:3b:00.0';
const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
let client: ClickHouseClient;
let api: TestApi;
let result: ReturnType<typeof analyzeBatches>;
let lastHeartbeatNs = 0;

async function get(path: string): Promise<any> {
  const r = await fetch(api.url + path);
  expect(r.status, path).toBe(200);
  return r.json();
}

beforeAll(async () => {
  const b = new TraceBuilder('6.12', 'e2e-host', 'boot-e2e');
  b.zap(10, D, { durationNs: 5_000 }).release(20, D); // started inside a write section: no acquire seen
  b.info(30, D).mmap(31, D, 7, { snapshot: true });
  b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D, { durationNs: 20_000 }).release(200, D).triggerEnd(201, D, TriggerKind.RESET, 0);
  b.trigger(2_000, D, TriggerKind.MEM_DISABLE).acquire(2_002, D).zap(2_005, D).release(2_100, D).triggerEnd(2_101, D, TriggerKind.MEM_DISABLE, 0);
  b.fault(3_000, D, 7); // PTEs installed while memory is known off
  const batches = b.batches(4, { heartbeatUntil: 60e6 }); // then a minute of heartbeats
  result = analyzeBatches(batches);
  lastHeartbeatNs = Math.max(...batches.map((x) => Number(x.nowNs)));

  client = (await connect({ dataDir: mkdtempSync(join(tmpdir(), 'rs-e2e-v2-')) })).client;
  // the trace's last heartbeat (60 s after its start) is NOW
  const store = new ClickHouseStore(client, { now: () => NOW_MS, wallClockShiftNs: -(us(60e6) - us(10)) });
  await store.migrate();
  const health = new HostHealthTracker(() => NOW_MS);
  const scan = new BatchScan();
  for (const batch of batches) {
    const frame = v1.EventBatch.encode(batch).finish();
    scan.read(frame);
    health.observeScan(scan);
    await store.writeScan(scan);
    await store.flush(); // the scan is reused: its rows are written before the next read
  }
  await store.writeEpisodes(result.episodes);
  await store.writeFindings(result.findings);
  await store.writeHostHealth(health.rows());
  await store.flush();
  api = await startApi(client, { now: () => NOW_MS });
}, 120_000);

afterAll(async () => {
  await api?.app.close();
  await client?.close();
});

describe('correlated rules-v2 outputs through the store and the API', () => {
  it('the correlator finds what the trace holds', () => {
    expect(result.findings.map((f) => [FindingKind[f.kind], f.inconclusive])).toEqual([['FAULT_WHILE_REVOKED', false]]);
    expect(result.episodes.map((e) => [e.acquireTsNs === 0, e.complete])).toEqual([[true, false], [false, true], [false, true]]);
  });

  it('the episode that began before observation is stored with its release time and no measured latency', async () => {
    const { episodes } = await get('/api/v1/episodes?host=e2e-host');
    expect(episodes).toHaveLength(3);
    const early = episodes.find((e: any) => e.acquireTsNs === '0');
    expect(early).toMatchObject({ complete: false, holdNs: '0', revokeNs: '0', releaseTsNs: String(us(20)), comm: 'qemu', pid: 100 });
    const reset = episodes.find((e: any) => e.trigger === 'RESET');
    expect(Date.parse(reset.time) - Date.parse(early.time)).toBe(Math.round((us(102) - us(20)) / 1e6)); // one clock for both
    const wait = (await get('/api/v1/latency?metric=wait&host=e2e-host')).rows[0];
    expect([wait.episodes, wait.count]).toEqual([3, 2]);
    const revoke = (await get('/api/v1/latency?metric=revoke&host=e2e-host')).rows[0];
    expect(revoke.count).toBe(2);
  });

  it('FAULT_WHILE_REVOKED is served with its evidence object and pages at the first evaluation', async () => {
    const { findings } = await get('/api/v1/findings?kind=FAULT_WHILE_REVOKED&inconclusive=false');
    expect(findings).toHaveLength(1);
    expect(findings[0].evidence).toMatchObject({ rule: 'fault_while_revoked', mirrors: expect.stringContaining('vfio_pci_mmap_huge_fault'),
      mappingId: 7, backing: 'LEGACY', memoryEnabled: false });
    expect((await get(`/api/v1/findings?rule=fault_while_revoked`)).findings).toHaveLength(1);
    await api.engine.evaluate();
    const { alerts } = await get('/api/v1/alerts?state=firing');
    expect(alerts.map((a: any) => [a.labels.alertname, a.labels.hostname, a.labels.severity])).toContainEqual(['RevokeFaultWhileRevoked', 'e2e-host', 'critical']);
    // heartbeats kept the idle host alive up to NOW
    expect(alerts.filter((a: any) => a.labels.alertname === 'CollectorSilent')).toEqual([]);
    const { hosts } = await get('/api/v1/hosts');
    expect(hosts).toEqual([expect.objectContaining({ hostname: 'e2e-host', silentSeconds: 0, nowNs: String(lastHeartbeatNs),
      lastTsNs: String(us(3_000)) })]);
  });

  it('the raw events keep the new bodies and DeviceInfo state', async () => {
    const rs = await client.query({ query: `SELECT kind, trigger, ret, memory_enabled, open_count FROM revokescope.events
      WHERE hostname = 'e2e-host' AND kind IN ('triggerEnd', 'deviceInfo') ORDER BY seq`, format: 'JSONEachRow' });
    expect(await rs.json()).toEqual([
      { kind: 'deviceInfo', trigger: 'TRIGGER_UNSPECIFIED', ret: 0, memory_enabled: true, open_count: 1 },
      { kind: 'triggerEnd', trigger: 'RESET', ret: 0, memory_enabled: null, open_count: null },
      { kind: 'triggerEnd', trigger: 'MEM_DISABLE', ret: 0, memory_enabled: null, open_count: null },
    ]);
  });
});
