// The ClickHouse store on a real chDB engine in temp directories.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Backing, FindingKind, Severity, TriggerKind, ZapTarget, type Episode, type EventBatch, type Finding } from '../services/core/model.js';
import { listMigrations, renderSchema, defaultSchemaOptions, type OpenStore } from '../services/store/index.js';
import { latencyPieces } from '../services/store/queries.js';
import { openTemp, rng, tempDir } from './store-fixtures.js';

const tmp = tempDir();
let s: OpenStore;

async function q<T = Record<string, unknown>>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await s.connection.client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 1 } });
  return rs.json<T>();
}

beforeAll(async () => { s = await openTemp(tmp.dir); });
afterAll(async () => { await s?.store.close(); tmp.remove(); });

function episode(i: number, over: Partial<Episode> = {}): Episode {
  return {
    episodeId: `ep-${i}`, hostname: 'h1', bootId: 'b1', device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.19.0-1-amd64',
    trigger: TriggerKind.RESET, groupId: 0, acquireTsNs: 5_000_000_000 + i * 1_000_000, releaseTsNs: 5_000_000_000 + i * 1_000_000 + 90_000,
    revoke: true, lockWaitNs: 100 + i, holdNs: 90_000, revokeNs: 40_000 + i, zapNs: 10_000, dmabufRevokeNs: 20_000, moveNs: 7_000,
    zapCount: 1, dmabufCount: 1, importerCount: 2, legacyMappings: 1, dmabufMappings: 0, complete: true,
    pid: 4242, comm: 'qemu-kvm', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0,
    cgroupId: 0, vm: '', podUid: '', podName: '', containerId: '', acquireStackId: 0, ...over,
  };
}

function finding(i: number, over: Partial<Finding> = {}): Finding {
  return {
    findingId: `f-${i}`, kind: FindingKind.SKIPPED_ZAP, severity: Severity.CRITICAL, hostname: 'h1', bootId: 'b1',
    device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.19.0-1-amd64', episodeId: `ep-${i}`,
    tsNs: 5_000_000_000 + i * 1_000_000 + 90_000, inconclusive: false, evidence: `{"mapping":7,"bar":0}\ttab\nnewline\\`, ...over,
  };
}

describe('schema and migrations', () => {
  it('creates every table in an empty data dir', async () => {
    const tables = (await q<{ name: string; engine: string }>(
      `SELECT name, engine FROM system.tables WHERE database = {db:String} ORDER BY name`, { db: defaultSchemaOptions.database }));
    const byName = Object.fromEntries(tables.map((t) => [t.name, t.engine]));
    expect(byName).toMatchObject({
      events: 'ReplacingMergeTree', episodes: 'ReplacingMergeTree', episodes_ingest: 'Null', findings: 'ReplacingMergeTree',
      host_health: 'ReplacingMergeTree', episode_latency_1m: 'AggregatingMergeTree', boot_clock: 'ReplacingMergeTree',
      schema_migrations: 'ReplacingMergeTree', episodes_dedup: 'MaterializedView', episode_latency_1m_mv: 'MaterializedView',
    });
    expect(await s.store.appliedMigrations()).toEqual(listMigrations().map((m) => expect.objectContaining({ version: m.version })));
  });

  it('running the migrations again (and reopening the dir) changes nothing', async () => {
    const before = await s.store.appliedMigrations();
    await s.store.migrate();
    await s.store.migrate();
    expect(await s.store.appliedMigrations()).toEqual(before);
    await s.store.close();
    s = await openTemp(tmp.dir);
    expect(await s.store.appliedMigrations()).toEqual(before);
    const [{ n }] = await q<{ n: string }>(`SELECT count() AS n FROM revokescope.schema_migrations`);
    expect(Number(n)).toBe(listMigrations().length);
  });

  it('renders cluster DDL: ReplicatedMergeTree local tables, Distributed tables, ON CLUSTER', () => {
    const ddl = renderSchema({ ...defaultSchemaOptions, cluster: 'fleet' });
    expect(ddl).toContain('CREATE DATABASE IF NOT EXISTS revokescope ON CLUSTER fleet');
    expect(ddl).toMatch(/CREATE TABLE IF NOT EXISTS revokescope\.events_local ON CLUSTER fleet[\s\S]*?ENGINE = ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{shard\}\/revokescope\/events', '\{replica\}'\)/);
    expect(ddl).toContain('CREATE TABLE IF NOT EXISTS revokescope.events ON CLUSTER fleet AS revokescope.events_local\nENGINE = Distributed(fleet, revokescope, events_local, cityHash64(hostname))');
    expect(ddl).toMatch(/episode_latency_1m_local ON CLUSTER fleet[\s\S]*?ENGINE = ReplicatedAggregatingMergeTree/);
    expect(ddl).toContain('CREATE MATERIALIZED VIEW IF NOT EXISTS revokescope.episodes_dedup ON CLUSTER fleet TO revokescope.episodes_local');
    expect(ddl).toContain('FROM revokescope.episodes_ingest_local');
    expect(ddl).not.toMatch(/ENGINE = (ReplacingMergeTree|AggregatingMergeTree|MergeTree)\(/);
    // the single-node rendering is what chDB runs (above); it has no cluster clauses
    const single = renderSchema(defaultSchemaOptions);
    expect(single).not.toContain('ON CLUSTER');
    expect(single).not.toContain('Distributed');
    expect(() => renderSchema({ ...defaultSchemaOptions, cluster: "x'; DROP TABLE events; --" })).toThrow(/invalid cluster name/);
    expect(() => renderSchema({ ...defaultSchemaOptions, database: 'a.b' })).toThrow(/invalid database name/);
  });
});

describe('round trip of every table', () => {
  it('raw events: every body kind, stored column by column', async () => {
    const batch: EventBatch = {
      host: { hostname: 'rt-host', bootId: 'rt-boot', kernelRelease: '6.19.0-1-amd64', collectorVersion: 't', capabilities: [] },
      firstSeq: 100, dropped: 0,
      events: [
        { tsNs: 10, cpu: 1, pid: 2, tid: 3, comm: 'qemu\tkvm', device: 'd0', deviceInfo: { driver: 'nvgrace-gpu-vfio-pci', zapBarsOnRevoke: true, dmabufBarMmap: true } },
        { tsNs: 20, device: 'd0', lockAcquire: { waitNs: 1234 } },
        { tsNs: 30, device: 'd0', zap: { start: 2 ** 40, length: 2 ** 41, durationNs: 555, target: ZapTarget.DEVICE, hadVmas: false } },
        { tsNs: 40, device: 'd0', dmabufRevoke: { revoked: true, dmabufCount: 3, durationNs: 777, deviceHasVmas: true } },
        { tsNs: 50, device: 'd0', moveNotify: { dmabufId: 99, importerCount: 2, durationNs: 888 } },
        { tsNs: 60, device: 'd0', barMmap: { bar: 2, backing: Backing.CUSTOM_VM_OPS, mappingId: 5, length: 4096, snapshot: true } },
        { tsNs: 70, device: 'd0', barFault: { bar: 2, mappingId: 5, ok: true } },
        { tsNs: 80, device: 'd0', barMunmap: { bar: 2, mappingId: 5 } },
        { tsNs: 90, device: 'd0', trigger: { kind: TriggerKind.HOT_RESET, groupId: 42 } },
        { tsNs: 100, device: 'd0', lockRelease: {} },
        // rules v2 (docs/rules.md): new bodies, DeviceInfo state with every field set, and with none
        { tsNs: 110, device: 'd0', triggerEnd: { kind: TriggerKind.OPEN, ret: -16 } },
        { tsNs: 120, device: 'd0', powerTransition: { from: 3, to: 0, durationNs: 10_000_000 } },
        { tsNs: 130, device: 'd0', resetFunction: { ret: -25, durationNs: 1_500_000 } },
        { tsNs: 140, device: 'd0', deviceInfo: { driver: 'vfio-pci', zapBarsOnRevoke: false, dmabufBarMmap: false, memoryEnabled: false,
          powerState: 3, revoked: true, openCount: 0, noCommandMemory: true, customVmOpsBars: 0b10100 } },
        { tsNs: 150, device: 'd0', deviceInfo: { driver: 'vfio-pci', dmabufBarMmap: true } },
      ],
    };
    await s.store.writeBatch(batch);
    await s.store.flush();
    const rows = await q<Record<string, unknown>>(`SELECT *, toUnixTimestamp64Nano(time) - ts_ns AS off FROM revokescope.events FINAL
      WHERE hostname = {h:String} ORDER BY seq`, { h: 'rt-host' });
    expect(rows.map((r) => [Number(r.seq), r.kind])).toEqual([[100, 'deviceInfo'], [101, 'lockAcquire'], [102, 'zap'],
      [103, 'dmabufRevoke'], [104, 'moveNotify'], [105, 'barMmap'], [106, 'barFault'], [107, 'barMunmap'], [108, 'trigger'], [109, 'lockRelease'],
      [110, 'triggerEnd'], [111, 'powerTransition'], [112, 'resetFunction'], [113, 'deviceInfo'], [114, 'deviceInfo']]);
    expect(rows[0]).toMatchObject({ comm: 'qemu\tkvm', cpu: 1, pid: 2, tid: 3, driver: 'nvgrace-gpu-vfio-pci', zap_bars_on_revoke: true, dmabuf_bar_mmap: true });
    expect(rows[10]).toMatchObject({ trigger: 'OPEN', ret: -16 });
    expect(rows[11]).toMatchObject({ power_from: 3, power_to: 0, duration_ns: '10000000' });
    expect(rows[12]).toMatchObject({ ret: -25, duration_ns: '1500000' });
    // a field read (false and 0 included) is a value; a field not read is NULL, never a default
    expect(rows[13]).toMatchObject({ zap_bars_on_revoke: false, memory_enabled: false, power_state: 3, device_revoked: true, open_count: 0,
      no_command_memory: true, custom_vm_ops_bars: 0b10100 });
    expect(rows[14]).toMatchObject({ dmabuf_bar_mmap: true, zap_bars_on_revoke: null, memory_enabled: null, power_state: null,
      device_revoked: null, open_count: null, no_command_memory: null, custom_vm_ops_bars: null });
    // other kinds leave the DeviceInfo state NULL too
    expect(rows[1]).toMatchObject({ zap_bars_on_revoke: null, memory_enabled: null, open_count: null, ret: 0 });
    expect(rows[1]).toMatchObject({ wait_ns: '1234' });
    expect(rows[2]).toMatchObject({ start: String(2 ** 40), length: String(2 ** 41), duration_ns: '555', zap_target: 'DEVICE', had_vmas: false });
    expect(rows[3]).toMatchObject({ revoked: true, dmabuf_count: 3, duration_ns: '777', device_has_vmas: true, had_vmas: null });
    expect(rows[4]).toMatchObject({ dmabuf_id: '99', importer_count: 2, duration_ns: '888' });
    expect(rows[5]).toMatchObject({ bar: 2, backing: 'CUSTOM_VM_OPS', mapping_id: '5', map_length: '4096', snapshot: true });
    expect(rows[6]).toMatchObject({ bar: 2, mapping_id: '5', ok: true });
    expect(rows[8]).toMatchObject({ trigger: 'HOT_RESET', group_id: '42' });
    // one wall-clock offset per boot, about now
    const offsets = new Set(rows.map((r) => String(r.off)));
    expect(offsets.size).toBe(1);
    expect(Math.abs(Number([...offsets][0]) / 1e6 - Date.now())).toBeLessThan(60_000);
  });

  it('episodes, findings and host health', async () => {
    await s.store.writeEpisodes([episode(1), episode(2, { revoke: false, revokeNs: 0, trigger: TriggerKind.CLOSE, complete: false })]);
    await s.store.writeFindings([finding(1), finding(2, { kind: FindingKind.REDUNDANT_ZAP, severity: Severity.INFO, inconclusive: true })]);
    await s.store.writeHostHealth([{ hostname: 'h1', bootId: 'b1', kernelRelease: '6.19.0-1-amd64', collectorVersion: 'v1',
      capabilities: ['LOCK', 'ZAP'], observedAtMs: Date.now(), events: 10, dropped: 2, lost: 3, lag: 0, lastTsNs: 99 }]);
    await s.store.flush();
    const eps = await s.reader.episodes({ host: 'h1', limit: 10 });
    expect(eps.items).toHaveLength(2);
    expect(eps.items[1]).toMatchObject({ episodeId: 'ep-1', trigger: 'RESET', acquireTsNs: '5001000000', revokeNs: '40001',
      importerCount: 2, revoke: true, complete: true });
    expect(eps.items[0]).toMatchObject({ episodeId: 'ep-2', trigger: 'CLOSE', revoke: false, complete: false });
    expect(String(eps.items[0]!.time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    const fs = await s.reader.findings({ host: 'h1', limit: 10 });
    expect(fs.items.map((f) => [f.findingId, f.kind, f.severity, f.inconclusive])).toEqual([
      ['f-2', 'REDUNDANT_ZAP', 'INFO', true], ['f-1', 'SKIPPED_ZAP', 'CRITICAL', false]]);
    // evidence is a JSON object wherever it is written: text that is not one is kept under `text`
    expect(fs.items[1]!.evidence).toEqual({ text: finding(1).evidence });
    const [stored] = await q<{ ok: number }>(`SELECT isValidJSON(evidence) AND JSONType(evidence) = 'Object' AS ok FROM revokescope.findings WHERE finding_id = 'f-1'`);
    expect(Number(stored!.ok)).toBe(1);
    const health = await q(`SELECT * FROM revokescope.host_health FINAL WHERE hostname = 'h1'`);
    expect(health).toEqual([expect.objectContaining({ boot_id: 'b1', capabilities: ['LOCK', 'ZAP'], events: '10', dropped: '2', lost: '3', last_ts_ns: '99' })]);
    const lat = await s.reader.latency({ metric: 'revoke', groupBy: ['host'], host: 'h1' });
    expect(lat).toEqual([expect.objectContaining({ group: { host: 'h1' }, episodes: 2, count: 1, p50: 40001, max: 40001 })]);
  });
});

describe('rollups', () => {
  it('percentiles merged from per-minute t-digest states agree with exact percentiles of the raw episodes', async () => {
    const r = rng(7);
    const episodes: Episode[] = [];
    // 3 hosts × 8000 episodes over ~20 minutes, log-normal-ish revoke latency
    for (let h = 0; h < 3; h++) {
      for (let i = 0; i < 8000; i++) {
        const revokeNs = Math.round(Math.exp(9 + 2.5 * (r() + r() + r() - 1.5)));
        episodes.push(episode(i, { episodeId: `q-${h}-${i}`, hostname: `q-host-${h}`, bootId: 'qb', acquireTsNs: 1e12 + i * 150_000_000,
          revokeNs, holdNs: revokeNs + 1_000, releaseTsNs: 1e12 + i * 150_000_000 + revokeNs + 1_000 }));
      }
    }
    await s.store.writeEpisodes(episodes);
    await s.store.flush();
    const rows = await s.reader.latency({ metric: 'revoke', groupBy: ['host'], kernel: '6.19.0-1-amd64' });
    const qHosts = rows.filter((x) => x.group.host!.startsWith('q-host-'));
    expect(qHosts).toHaveLength(3);
    for (const row of qHosts) {
      const exact = episodes.filter((e) => e.hostname === row.group.host).map((e) => e.revokeNs).sort((a, b) => a - b);
      expect(row.count).toBe(exact.length);
      expect(row.max).toBe(exact[exact.length - 1]);
      // t-digest's error is in rank: the estimate must sit at the wanted rank ± the tolerance
      const rankOf = (v: number) => exact.filter((x) => x <= v).length / exact.length;
      const checks: [number, number, number][] = [[0.5, row.p50, 0.01], [0.9, row.p90, 0.01], [0.99, row.p99, 0.005], [0.999, row.p999, 0.002]];
      for (const [level, est, tol] of checks) expect(Math.abs(rankOf(est) - level), `${row.group.host} p${level * 100}`).toBeLessThanOrEqual(tol);
    }
  });

  it('re-ingesting the same episodes, findings and events leaves stored and rolled-up counts unchanged', async () => {
    const eps = Array.from({ length: 500 }, (_, i) => episode(i, { episodeId: `re-${i}`, hostname: 're-host', bootId: 're-boot' }));
    const fds = Array.from({ length: 50 }, (_, i) => finding(i, { findingId: `re-f-${i}`, hostname: 're-host', bootId: 're-boot' }));
    const batch: EventBatch = { host: { hostname: 're-host', bootId: 're-boot' }, firstSeq: 0,
      events: Array.from({ length: 1000 }, (_, i) => ({ tsNs: 5_000_000_000 + i, device: 'd', lockRelease: {} })) };
    const snapshot = async () => ({
      counts: await q(`SELECT (SELECT count() FROM revokescope.episodes) AS ep, (SELECT count() FROM revokescope.events FINAL WHERE hostname = 're-host') AS ev,
        (SELECT count() FROM revokescope.findings FINAL WHERE hostname = 're-host') AS f,
        (SELECT sum(episodes) FROM revokescope.episode_latency_1m) AS rolled`),
      latency: await s.reader.latency({ metric: 'revoke', groupBy: ['host', 'trigger'], host: 're-host' }),
      times: await q(`SELECT min(time) AS t0, max(time) AS t1 FROM revokescope.episodes WHERE hostname = 're-host'`),
    });
    await s.store.writeBatch(batch);
    await s.store.writeEpisodes(eps);
    await s.store.writeFindings(fds);
    await s.store.flush();
    const first = await snapshot();
    expect(first.counts[0]).toMatchObject({ ev: '1000', f: '50' });
    // again in the same session, and again after a restart (new store over the same dir)
    await s.store.writeEpisodes([...eps, ...eps.slice(0, 10)]);
    await s.store.writeBatch(batch);
    await s.store.writeFindings(fds);
    await s.store.flush();
    expect(await snapshot()).toEqual(first);
    await s.store.close();
    s = await openTemp(tmp.dir);
    await s.store.writeBatch(batch);
    await s.store.writeEpisodes(eps);
    await s.store.writeFindings(fds);
    await s.store.flush();
    expect(await snapshot()).toEqual(first);
    expect(first.latency[0]).toMatchObject({ episodes: 500, count: 500 });
  });
});

describe('hourly and daily rollups', () => {
  it('splits a range into whole days, whole hours and edge minutes that cover every minute once', () => {
    const w = [60, 3600, 86400];
    const r = rng(11);
    for (let i = 0; i < 500; i++) {
      const lo = Math.floor(r() * 5 * 86400 / 60) * 60;
      const hi = lo + 60 + Math.floor(r() * 4 * 86400 / 60) * 60;
      const minutes = new Set<number>();
      let bad = 0;
      for (const { tier, ranges } of latencyPieces(lo, hi)) {
        for (const [a, b] of ranges) {
          if (a! % w[tier]! !== 0 || b! % w[tier]! !== 0 || a! >= b!) bad++;
          for (let t = a!; t < b!; t += 60) { if (minutes.has(t)) bad++; minutes.add(t); }
        }
      }
      expect(bad, `${lo}..${hi}`).toBe(0);
      expect(minutes.size).toBe((hi - lo) / 60);
      expect(Math.min(...minutes)).toBe(lo);
    }
    expect(latencyPieces(undefined, undefined)).toEqual([{ tier: 2, ranges: [[undefined, undefined]] }]);
  });

  it('latency over any range (minute resolution) counts exactly the episodes of the raw table, across the tiers', async () => {
    const start = Date.parse('2026-01-01T05:17:23Z');
    // 3 days of one host's episodes, ~13 s apart; inserted into `episodes`, the minute MV cascades to hours and days
    await s.connection.client.command({
      query: `INSERT INTO revokescope.episodes (episode_id, hostname, boot_id, device, driver, kernel_release, trigger, acquire_ts_ns,
          release_ts_ns, revoke, revoke_ns, hold_ns, zap_count, complete, time)
        SELECT concat('tier-', toString(number)), 'tier-host', 'tb', 'd0', if(number % 3 = 0, 'vfio-pci', 'nvgrace-gpu'), 'k1',
          [1, 3][1 + number % 2], 1000 + number, 2000 + number, number % 7 != 0, 10000 + sipHash64(number) % 1000000, 5000, 1, 1,
          fromUnixTimestamp64Milli(toInt64({start:Int64} + number * 12987))
        FROM numbers(20000)`,
      query_params: { start },
    });
    const [tot] = await q<{ m: string; h: string; d: string }>(`SELECT
      (SELECT sum(episodes) FROM revokescope.episode_latency_1m WHERE hostname = 'tier-host') AS m,
      (SELECT sum(episodes) FROM revokescope.episode_latency_1h WHERE hostname = 'tier-host') AS h,
      (SELECT sum(episodes) FROM revokescope.episode_latency_1d WHERE hostname = 'tier-host') AS d`);
    expect([Number(tot!.m), Number(tot!.h), Number(tot!.d)]).toEqual([20000, 20000, 20000]);
    const r = rng(5);
    const ranges: [number | undefined, number | undefined][] = [[undefined, undefined], [start + 86400_000, undefined], [undefined, start + 100_000_000]];
    for (let i = 0; i < 12; i++) {
      const from = start - 3600_000 + Math.floor(r() * 3.2 * 86400_000);
      ranges.push([from, from + 1 + Math.floor(r() * (i < 6 ? 7200_000 : 2.5 * 86400_000))]);
    }
    for (const [fromMs, toMs] of ranges) {
      const [rows] = [await s.reader.latency({ metric: 'revoke', groupBy: ['driver'], host: 'tier-host', fromMs, toMs })];
      const lo = fromMs === undefined ? 0 : Math.floor(fromMs / 60_000) * 60;
      const hi = toMs === undefined ? 2 ** 32 - 1 : Math.ceil(toMs / 60_000) * 60;
      const exact = await q<{ driver: string; episodes: string; count: string; max: string; p50: number }>(`
        SELECT driver, count() AS episodes, countIf(revoke AND revoke_ns > 0) AS count, maxIf(revoke_ns, revoke AND revoke_ns > 0) AS max,
          quantileExactIf(0.5)(revoke_ns, revoke AND revoke_ns > 0) AS p50
        FROM revokescope.episodes WHERE hostname = 'tier-host' AND toUnixTimestamp(time) >= {lo:UInt32} AND toUnixTimestamp(time) < {hi:UInt32}
        GROUP BY driver ORDER BY driver`, { lo, hi });
      const label = `${fromMs && new Date(fromMs).toISOString()} → ${toMs && new Date(toMs).toISOString()}`;
      expect(rows.map((x) => [x.group.driver, x.episodes, x.count, x.max]), label)
        .toEqual(exact.map((x) => [x.driver, Number(x.episodes), Number(x.count), Number(x.max)]));
      for (const [j, row] of rows.entries()) {
        if (row.count > 200) expect(Math.abs(row.p50 - exact[j]!.p50) / 1_000_000, label).toBeLessThan(0.03);
      }
    }
  });
});

describe('rules v2 outputs (docs/rules.md)', () => {
  const host = 'v2-host';
  const S = 1e9;
  // three measured episodes, one touched by loss, and two that began before observation (the collector restarted
  // inside a lock window twice on the same device and boot: acquire_ts_ns = 0, nothing of wait, hold or revoke known)
  const eps = (): Episode[] => [
    episode(1, { episodeId: 'v2-a', hostname: host, acquireTsNs: 100 * S, releaseTsNs: 100 * S + 90_000, revokeNs: 40_000, holdNs: 90_000,
      pid: 777, comm: 'qemu-kvm', triggerRet: 0, staleTriggers: 2, intendedEmptyZaps: 1 }),
    episode(2, { episodeId: 'v2-b', hostname: host, acquireTsNs: 101 * S, releaseTsNs: 101 * S + 80_000, revokeNs: 30_000, holdNs: 80_000,
      pid: 778, comm: 'vfio-reset', triggerRet: -16 }),
    episode(3, { episodeId: 'v2-c', hostname: host, acquireTsNs: 102 * S, releaseTsNs: 102 * S + 70_000, revokeNs: 20_000, holdNs: 70_000 }),
    episode(4, { episodeId: 'v2-lossy', hostname: host, acquireTsNs: 103 * S, releaseTsNs: 103 * S + 9_000_000, revokeNs: 8_000_000,
      holdNs: 9_000_000, zapNs: 7_000_000, complete: false }),
    episode(5, { episodeId: 'v2-early-1', hostname: host, acquireTsNs: 0, releaseTsNs: 50 * S, lockWaitNs: 0, holdNs: 0, revokeNs: 0,
      zapNs: 5_000, complete: false, pid: 0, comm: '' }),
    episode(6, { episodeId: 'v2-early-2', hostname: host, acquireTsNs: 0, releaseTsNs: 60 * S, lockWaitNs: 0, holdNs: 0, revokeNs: 0,
      zapNs: 6_000, complete: false, pid: 0, comm: '' }),
  ];
  const fwr = (i: number, over: Partial<Finding> = {}): Finding => finding(i, {
    findingId: `v2-f-${i}`, hostname: host, kind: FindingKind.FAULT_WHILE_REVOKED, severity: Severity.CRITICAL, episodeId: '', tsNs: 100 * S + i,
    evidence: JSON.stringify({ rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault', mappingId: 7, bar: 0,
      backing: 'LEGACY', memoryEnabled: false }), ...over,
  });

  beforeAll(async () => {
    await s.store.writeEpisodes(eps());
    await s.store.writeFindings([fwr(1), fwr(2, { inconclusive: true, evidence: JSON.stringify({ rule: 'fault_while_revoked.memory_disabled',
      mirrors: 'vfio_pci_mmap_huge_fault', unknown: ['memory_enabled: not read since the collector started (no DeviceInfo, no MEM_* trigger)'] }) }),
    finding(3, { findingId: 'v2-f-3', hostname: host, kind: FindingKind.REDUNDANT_ZAP, severity: Severity.INFO, tsNs: 101 * S,
      evidence: JSON.stringify({ rule: 'redundant_zap.dmabuf_mmap_no_live_mapping', mirrors: 'unmap_mapping_range', wastedNs: 12_345 }) })]);
    await s.store.flush();
  });

  it('episodes carry the acquiring task, the trigger return, stale triggers and intended empty zaps; filter by comm and pid', async () => {
    const all = await s.reader.episodes({ host, limit: 100 });
    expect(all.items.map((e) => e.episodeId).sort()).toEqual(eps().map((e) => e.episodeId).sort());
    expect(all.items.find((e) => e.episodeId === 'v2-a')).toMatchObject({ pid: 777, comm: 'qemu-kvm', triggerRet: 0, staleTriggers: 2, intendedEmptyZaps: 1 });
    expect(all.items.find((e) => e.episodeId === 'v2-b')).toMatchObject({ pid: 778, comm: 'vfio-reset', triggerRet: -16 });
    expect((await s.reader.episodes({ host, comm: 'vfio-reset', limit: 100 })).items.map((e) => e.episodeId)).toEqual(['v2-b']);
    expect((await s.reader.episodes({ host, pid: 777, limit: 100 })).items.map((e) => e.episodeId)).toEqual(['v2-a']);
    expect((await s.reader.episodes({ host, pid: 4_000_000_000, limit: 100 })).items).toEqual([]);
  });

  it('episodes that began before observation are kept apart, dated by their release, and re-ingest stays idempotent', async () => {
    const early = (await s.reader.episodes({ host, complete: false, limit: 100 })).items.filter((e) => e.acquireTsNs === '0');
    expect(early.map((e) => e.episodeId).sort()).toEqual(['v2-early-1', 'v2-early-2']);
    const [t] = await q<{ d: string }>(`SELECT toString(toUnixTimestamp64Nano(time) - toInt64(release_ts_ns) - (
        SELECT toUnixTimestamp64Nano(time) - toInt64(acquire_ts_ns) FROM revokescope.episodes WHERE episode_id = 'v2-a')) AS d
      FROM revokescope.episodes WHERE episode_id = 'v2-early-2'`);
    expect(t!.d).toBe('0'); // time = release ts + the boot's offset (not the boot's start)
    const count = async () => (await q<{ n: string; r: string }>(`SELECT (SELECT count() FROM revokescope.episodes WHERE hostname = {h:String}) AS n,
      (SELECT sum(episodes) FROM revokescope.episode_latency_1m WHERE hostname = {h:String}) AS r`, { h: host }))[0];
    const before = await count();
    expect(before).toEqual({ n: '6', r: '6' });
    await s.store.writeEpisodes(eps());
    await s.store.flush();
    expect(await count()).toEqual(before);
  });

  it('latency counts only what was measured: no acquire seen → no wait/hold/revoke; loss inside → no hold/revoke/zap', async () => {
    const get = async (metric: 'revoke' | 'hold' | 'wait' | 'zap') => (await s.reader.latency({ metric, groupBy: ['host'], host }))[0]!;
    const revoke = await get('revoke');
    expect([revoke.episodes, revoke.count, revoke.max]).toEqual([6, 3, 40_000]); // not the lossy 8 ms, not the early zeros
    expect([(await get('hold')).count, (await get('hold')).max]).toEqual([3, 90_000]);
    expect((await get('wait')).count).toBe(4); // the lossy episode's acquire (and its wait) was seen
    const zap = await get('zap');
    expect([zap.count, zap.max]).toEqual([3, 10_000]); // the early and the lossy episodes' zap sums may miss zaps
    // the run summary's histogram counts the same episodes (over the whole store: every test's episodes)
    const hist = await s.reader.revokeHistogram();
    const [{ measured, all }] = await q<{ measured: string; all: string }>(`SELECT countIf(revoke AND revoke_ns > 0 AND complete AND acquire_ts_ns > 0)
      AS measured, countIf(revoke AND revoke_ns > 0) AS all FROM revokescope.episodes FINAL`);
    expect(hist.reduce((n, b) => n + b.count, 0)).toBe(Number(measured));
    expect(Number(all)).toBeGreaterThan(Number(measured));
  });

  it('FAULT_WHILE_REVOKED is stored and filtered; evidence is an object with its rule, facts and unknowns; filter by rule', async () => {
    const f = await s.reader.findings({ host, kind: 'FAULT_WHILE_REVOKED', limit: 100 });
    expect(f.items.map((x) => [x.findingId, x.severity, x.inconclusive])).toEqual([['v2-f-2', 'CRITICAL', true], ['v2-f-1', 'CRITICAL', false]]);
    expect(f.items[1]!.evidence).toEqual({ rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault', mappingId: 7, bar: 0,
      backing: 'LEGACY', memoryEnabled: false });
    expect((f.items[0]!.evidence as { unknown: string[] }).unknown).toEqual([expect.stringMatching(/^memory_enabled: /)]);
    const certain = await s.reader.findings({ host, kind: 'FAULT_WHILE_REVOKED', inconclusive: false, limit: 100 });
    expect(certain.items.map((x) => x.findingId)).toEqual(['v2-f-1']);
    const byRule = await s.reader.findings({ host, rule: 'redundant_zap.dmabuf_mmap_no_live_mapping', limit: 100 });
    expect(byRule.items.map((x) => x.findingId)).toEqual(['v2-f-3']);
    expect(byRule.items[0]!.evidence).toMatchObject({ wastedNs: 12_345 }); // existing keys keep working (alert rules read wastedNs)
    const [{ wasted }] = await q<{ wasted: string }>(`SELECT sum(JSONExtractUInt(evidence, 'wastedNs')) AS wasted FROM revokescope.findings
      WHERE hostname = {h:String}`, { h: host });
    expect(Number(wasted)).toBe(12_345);
  });

  it('host health keeps the collector clock (EventBatch.now_ns)', async () => {
    await s.store.writeHostHealth([{ hostname: host, bootId: 'b1', kernelRelease: 'k', collectorVersion: 'v', capabilities: [], observedAtMs: Date.now(),
      events: 0, dropped: 0, lost: 0, lag: 0, lastTsNs: 5, nowNs: 9_000_000_000_000 }]);
    await s.store.flush();
    expect(await q(`SELECT last_ts_ns, now_ns FROM revokescope.host_health WHERE hostname = {h:String}`, { h: host }))
      .toEqual([{ last_ts_ns: '5', now_ns: '9000000000000' }]);
  });
});
