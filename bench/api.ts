// API under load (issue 6): p50/p99 latency and throughput of GET /api/v1/latency and GET /api/v2/alerts
// with 10 M episodes stored (chDB, generated with INSERT … SELECT FROM numbers()), at a fixed 200 req/s and
// at the most the server does (autocannon). Target: p99 < 100 ms at 200 req/s.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
// @ts-expect-error autocannon ships no type declarations
import autocannonUntyped from 'autocannon';
import { createApi, listen } from '../services/api/server.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { StoreReader, type LatencyQuery } from '../services/store/queries.js';

export interface ApiBenchRow { endpoint: string; mode: string; requests: number; rps: number; p50ms: number; p90ms: number; p99ms: number; maxMs: number; non2xx: number }

interface CannonResult { requests: { total: number; average: number }; latency: { p50: number; p90: number; p99: number; max: number }; non2xx: number; errors: number }
const autocannon = autocannonUntyped as (o: Record<string, unknown>) => Promise<CannonResult>;

const N = Number(process.env.BENCH_API_EPISODES ?? 10_000_000);

export async function benchApi(): Promise<{ episodes: number; loadSeconds: number; rows: ApiBenchRow[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'rs-bench-api-'));
  const { client } = await connect({ dataDir: dir });
  const store = new ClickHouseStore(client);
  await store.migrate();
  const t0 = performance.now();
  // 50 hosts × 8 devices, 4 kernels, 3 drivers, spread over the last 7 days; the rollup MV fills as rows land
  await client.command({
    query: `INSERT INTO revokescope.episodes (episode_id, hostname, boot_id, device, driver, kernel_release, trigger, group_id,
        acquire_ts_ns, release_ts_ns, revoke, lock_wait_ns, hold_ns, revoke_ns, zap_ns, dmabuf_revoke_ns, move_ns, zap_count,
        dmabuf_count, importer_count, legacy_mappings, dmabuf_mappings, complete, time)
      SELECT hex(sipHash64(number)), concat('host-', toString(number % 50)), 'boot-1', concat('0000:3b:0', toString(number % 8), '.0'),
        ['vfio-pci', 'nvgrace-gpu', 'hisi_acc'][1 + number % 3],
        ['6.1.0-27-amd64', '6.12.57+deb13-amd64', '6.19.2-1-amd64', '7.2.0-rc3'][1 + intDiv(number, 7) % 4],
        [1, 3, 4, 6][1 + number % 4], 0, 1000000000000 + number * 1000, 1000000000000 + number * 1000 + 200000, number % 5 != 0,
        number % 97 * 10, 200000, if(number % 5 != 0, 20000 + sipHash64(number) % 5000000, 0), 20000, 30000, 10000, 1, 1, 1, 1, 0, 1,
        fromUnixTimestamp64Milli(toInt64({end_ms:Int64} - (number * 604800000) / {n:UInt64}))
      FROM numbers({n:UInt64})`,
    query_params: { n: N, end_ms: Date.now() },
    clickhouse_settings: { max_insert_block_size: '1000000' },
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  // measure the steady state: let the background merges of the freshly inserted parts finish (at most 120 s)
  for (let i = 0; i < 120; i++) {
    const rs = await client.query({ query: `SELECT count() AS n FROM system.merges WHERE database = 'revokescope'`, format: 'JSONEachRow' });
    if (Number((await rs.json<{ n: string }>())[0]?.n ?? 0) === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }

  // the API as `revokescope serve` builds it (BENCH_API_LATENCY_CACHE_MS=0: every request asks the store)
  const { app, engine } = await createApi({ client, evaluate: false, docsUi: false, security: { rateLimitMax: 0 },
    latencyCacheMs: process.env.BENCH_API_LATENCY_CACHE_MS === undefined ? undefined : Number(process.env.BENCH_API_LATENCY_CACHE_MS) });
  const base = await listen(app, 0);
  await engine.evaluate(); // default rules over the 10 M episodes: alerts to list
  const from = new Date(Date.now() - 3600_000).toISOString();
  const endpoints = [
    ['/api/v1/latency (1 h, by kernel,driver)', `/api/v1/latency?metric=revoke&group_by=kernel,driver&from=${encodeURIComponent(from)}`],
    ['/api/v1/latency (7 d, by host)', `/api/v1/latency?metric=revoke&group_by=host&from=${encodeURIComponent(new Date(Date.now() - 7 * 86400_000).toISOString())}`],
    ['/api/v2/alerts', '/api/v2/alerts'],
  ] as const;
  const rows: ApiBenchRow[] = [];
  // what one /api/v1/latency request costs the store when nothing is shared (sequential, no cache, no coalescing)
  const storeQueries: [string, LatencyQuery][] = [
    [endpoints[0][0], { metric: 'revoke', groupBy: ['kernel', 'driver'], fromMs: Date.parse(from) }],
    [endpoints[1][0], { metric: 'revoke', groupBy: ['host'], fromMs: Date.now() - 7 * 86400_000 }],
  ];
  for (const [name, q] of storeQueries) {
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await new StoreReader(client, 'revokescope').latency(q);
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    const pick = (p: number): number => Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!);
    rows.push({ endpoint: name, mode: 'store query, sequential', requests: ms.length, rps: Math.round(1000 / (ms.reduce((a, b) => a + b, 0) / ms.length)),
      p50ms: pick(0.5), p90ms: pick(0.9), p99ms: pick(0.99), maxMs: Math.round(ms[ms.length - 1]!), non2xx: 0 });
  }
  for (const [name, path] of endpoints) {
    // one request first: the load runs measure the steady state (the store query above is the cold cost)
    await fetch(`${base}${path}`).then((r) => r.arrayBuffer());
    for (const mode of ['200 req/s', 'max'] as const) {
      const r = await autocannon({
        url: `${base}${path}`, duration: Number(process.env.BENCH_API_SECONDS ?? 15), connections: mode === 'max' ? 16 : 10,
        ...(mode === '200 req/s' ? { overallRate: 200 } : {}),
      });
      rows.push({ endpoint: name, mode, requests: r.requests.total, rps: r.requests.average, p50ms: r.latency.p50, p90ms: r.latency.p90,
        p99ms: r.latency.p99, maxMs: r.latency.max, non2xx: r.non2xx + r.errors });
    }
  }
  await app.close();
  await client.close();
  rmSync(dir, { recursive: true, force: true });
  return { episodes: N, loadSeconds, rows };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const res = await benchApi();
  console.log(`episodes stored: ${res.episodes} (generated in ${res.loadSeconds.toFixed(1)} s)`);
  console.table(res.rows);
}
