// A store an older release made (migrations 1–3, rows in the shapes of that time) migrates forward to rules v2
// (migration 4, docs/rules.md) on a real chDB engine: old rows read as before, new columns are unknown (NULL) or
// zero, re-ingesting an old episode does not duplicate it, the widened enums take the new values, and the
// migration texts older stores ran are unchanged (frozen). Also the cluster rendering of migration 4.
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FindingKind, Severity, TriggerKind, type Episode } from '../services/core/model.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { readFindingWindow } from '../services/store/finding-window.js';
import { StoreReader } from '../services/store/queries.js';
import { COLUMN_ENUM_VALUES, defaultSchemaOptions, listMigrations, migrationChecksum, renderSchema } from '../services/store/schema.js';
import { Capability } from '../services/core/model.js';
import { tempDir } from './store-fixtures.js';

const tmp = tempDir('revokescope-migrate-');
let client: ClickHouseClient;
let store: ClickHouseStore;
let reader: StoreReader;
// wall clock, not a fixed date: raw events have a 7-day TTL
const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
const OFFSET_NS = String(BigInt(NOW_MS) * 1_000_000n - 2_000_000_000_000n); // the boot started ≈ 2000 s before NOW

async function q<T = Record<string, unknown>>(query: string, params: Record<string, unknown> = {}): Promise<T[]> {
  const rs = await client.query({ query, query_params: params, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 1 } });
  return rs.json<T>();
}

/** An episode as the old release's correlator wrote it (no rules-v2 fields), as the new writer writes it. */
const oldEpisode = (i: number): Episode => ({
  episodeId: `old-${i}`, hostname: 'old-host', bootId: 'old-boot', device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.12.0',
  trigger: TriggerKind.RESET, groupId: 0, acquireTsNs: 1_000_000_000_000 + i * 1e9, releaseTsNs: 1_000_000_000_000 + i * 1e9 + 50_000,
  revoke: true, lockWaitNs: 10, holdNs: 50_000, revokeNs: 20_000 + i, zapNs: 9_000, dmabufRevokeNs: 0, moveNs: 0, zapCount: 1, dmabufCount: 0,
  importerCount: 0, legacyMappings: 1, dmabufMappings: 0, complete: true, pid: 0, comm: '', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0,
    cgroupId: 0, vm: '', podUid: '', podName: '', containerId: '', acquireStackId: 0,
});

beforeAll(async () => {
  client = (await connect({ dataDir: tmp.dir })).client;
  store = new ClickHouseStore(client, { now: () => NOW_MS });
  await store.migrate(3); // the schema of the release before rules v2
  // rows in that release's shapes, written with its columns only
  await client.command({ query: `INSERT INTO revokescope.events (hostname, boot_id, seq, ts_ns, boot_offset_ns, kind, device, driver,
      zap_bars_on_revoke, dmabuf_bar_mmap, trigger) VALUES
    ('old-host', 'old-boot', 0, 999000000000, ${OFFSET_NS}, 'deviceInfo', '0000:3b:00.0', 'vfio-pci', true, false, 'TRIGGER_UNSPECIFIED'),
    ('old-host', 'old-boot', 1, 999000000100, ${OFFSET_NS}, 'trigger', '0000:3b:00.0', '', false, false, 'PERMANENT_REVOKE')` });
  await client.command({ query: `INSERT INTO revokescope.episodes_ingest (episode_id, hostname, boot_id, device, driver, kernel_release, trigger,
      acquire_ts_ns, release_ts_ns, revoke, lock_wait_ns, hold_ns, revoke_ns, zap_ns, zap_count, legacy_mappings, complete, boot_offset_ns)
    SELECT concat('old-', toString(number)), 'old-host', 'old-boot', '0000:3b:00.0', 'vfio-pci', '6.12.0', 'RESET',
      1000000000000 + number * 1000000000, 1000000000000 + number * 1000000000 + 50000, true, 10, 50000, 20000 + number, 9000, 1, 1, true,
      ${OFFSET_NS}
    FROM numbers(3)` });
  await client.command({ query: `INSERT INTO revokescope.findings (finding_id, kind, severity, hostname, boot_id, device, driver, kernel_release,
      episode_id, ts_ns, inconclusive, evidence, boot_offset_ns) VALUES
    ('old-f', 'REDUNDANT_ZAP', 'INFO', 'old-host', 'old-boot', '0000:3b:00.0', 'vfio-pci', '6.12.0', 'old-1', 1001000010000, false,
      '{"zapStart":0,"wastedNs":7777}', ${OFFSET_NS})` });
  await client.command({ query: `INSERT INTO revokescope.host_health (observed_at, hostname, boot_id, kernel_release, collector_version,
      capabilities, events, dropped, lost, lag, last_ts_ns) VALUES (fromUnixTimestamp64Milli(${NOW_MS}), 'old-host', 'old-boot', '6.12.0', 'old',
      ['LOCK'], 10, 0, 0, 0, 999000000100)` });
  await store.migrate(); // the new release starts on the old store
  reader = new StoreReader(client, 'revokescope');
}, 120_000);

afterAll(async () => { await store?.close(); tmp.remove(); });

describe('an old store migrates forward', () => {
  it('records migrations 4 to 7 and leaves the texts of 1–3 as older stores ran them', async () => {
    const all = listMigrations().map((m) => m.version);
    expect(all).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect((await store.appliedMigrations()).map((m) => m.version)).toEqual(all);
    // checksums of migrations 1–3 as the release before rules v2 rendered them (its proto had no OPEN and no
    // FAULT_WHILE_REVOKED): the migrations name their enum values, so a proto addition does not rewrite them
    const [m1, m2, m3] = listMigrations().map((m) => migrationChecksum(m, defaultSchemaOptions));
    expect([m1, m2, m3]).toEqual(['5c5ba2d4d6f88e4a', 'ba787c58388c2e10', 'f6e7caef13619e03']);
    await store.migrate();
    expect((await store.appliedMigrations()).map((m) => m.version)).toEqual(all);
  });

  it('old raw events keep their values; the new DeviceInfo state columns are NULL (unknown), not a default', async () => {
    const rows = await q(`SELECT kind, trigger, zap_bars_on_revoke, memory_enabled, power_state, open_count, custom_vm_ops_bars, ret
      FROM revokescope.events WHERE hostname = 'old-host' ORDER BY seq`);
    expect(rows).toEqual([
      { kind: 'deviceInfo', trigger: 'TRIGGER_UNSPECIFIED', zap_bars_on_revoke: true, memory_enabled: null, power_state: null, open_count: null,
        custom_vm_ops_bars: null, ret: 0 },
      { kind: 'trigger', trigger: 'PERMANENT_REVOKE', zap_bars_on_revoke: false, memory_enabled: null, power_state: null, open_count: null,
        custom_vm_ops_bars: null, ret: 0 },
    ]);
  });

  it('the new writer writes the new kinds and values into the migrated tables', async () => {
    await store.writeBatch({ host: { hostname: 'old-host', bootId: 'old-boot' }, firstSeq: 2, events: [
      { tsNs: 999_000_000_200, device: '0000:3b:00.0', trigger: { kind: TriggerKind.OPEN } },
      { tsNs: 999_000_000_300, device: '0000:3b:00.0', triggerEnd: { kind: TriggerKind.RESET, ret: -22 } },
      { tsNs: 999_000_000_400, device: '0000:3b:00.0', deviceInfo: { driver: 'vfio-pci', dmabufBarMmap: false, memoryEnabled: true } },
    ] });
    await store.writeFindings([{ findingId: 'new-f', kind: FindingKind.FAULT_WHILE_REVOKED, severity: Severity.CRITICAL, hostname: 'old-host',
      bootId: 'old-boot', device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.12.0', episodeId: '', tsNs: 1_002_000_000_000,
      inconclusive: false, evidence: '{"rule":"fault_while_revoked.memory_disabled"}' }]);
    await store.flush();
    expect(await q(`SELECT kind, trigger, ret, zap_bars_on_revoke, memory_enabled FROM revokescope.events WHERE hostname = 'old-host' AND seq >= 2 ORDER BY seq`))
      .toEqual([
        { kind: 'trigger', trigger: 'OPEN', ret: 0, zap_bars_on_revoke: null, memory_enabled: null },
        { kind: 'triggerEnd', trigger: 'RESET', ret: -22, zap_bars_on_revoke: null, memory_enabled: null },
        { kind: 'deviceInfo', trigger: 'TRIGGER_UNSPECIFIED', ret: 0, zap_bars_on_revoke: null, memory_enabled: true },
      ]);
    const f = await reader.findings({ host: 'old-host', limit: 10 });
    expect(f.items.map((x) => [x.findingId, x.kind, x.evidence])).toEqual([
      ['new-f', 'FAULT_WHILE_REVOKED', { rule: 'fault_while_revoked.memory_disabled' }],
      ['old-f', 'REDUNDANT_ZAP', { zapStart: 0, wastedNs: 7777 }],
    ]);
  });

  it('old episodes read with the new fields at zero; re-ingesting them adds nothing to the table or the rollups', async () => {
    const before = await reader.episodes({ host: 'old-host', limit: 10 });
    expect(before.items.map((e) => e.episodeId)).toEqual(['old-2', 'old-1', 'old-0']);
    expect(before.items[0]).toMatchObject({ pid: 0, comm: '', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0, trigger: 'RESET',
      cgroupId: '0', vm: '', podUid: '', podName: '', containerId: '', acquireStackId: '0' });
    expect(await q(`SELECT DISTINCT cgroup_id, stack_id FROM revokescope.events WHERE hostname = 'old-host' AND seq < 2`))
      .toEqual([{ cgroup_id: '0', stack_id: '0' }]);
    const snapshot = async () => ({
      rows: await q(`SELECT count() AS n FROM revokescope.episodes WHERE hostname = 'old-host'`),
      rolled: await q(`SELECT sum(episodes) AS e, sum(revoke_samples) AS r FROM revokescope.episode_latency_1m WHERE hostname = 'old-host'`),
    });
    const first = await snapshot();
    expect(first).toEqual({ rows: [{ n: '3' }], rolled: [{ e: '3', r: '3' }] });
    await store.writeEpisodes([0, 1, 2].map(oldEpisode)); // the same episodes from a replay, through the new writer
    await store.flush();
    expect(await snapshot()).toEqual(first);
    const [{ key }] = await q<{ key: string }>(`SELECT sorting_key AS key FROM system.tables WHERE database = 'revokescope' AND name = 'episodes'`);
    expect(key).toBe('hostname, boot_id, device, acquire_ts_ns, before_observation_release_ns');
  });

  it('episodes written after the migration roll up only what they measured', async () => {
    const early: Episode = { ...oldEpisode(9), episodeId: 'early', acquireTsNs: 0, lockWaitNs: 0, holdNs: 0, revokeNs: 0, complete: false };
    await store.writeEpisodes([early, { ...oldEpisode(10), episodeId: 'lossy', complete: false }]);
    await store.flush();
    const [r] = await q(`SELECT sum(episodes) AS e, sum(revoke_samples) AS r, sum(wait_samples) AS w, sum(hold_samples) AS h
      FROM revokescope.episode_latency_1m WHERE hostname = 'old-host'`);
    // 3 old episodes + early + lossy; revoke and hold: the 3 old ones; wait: + the lossy one (its acquire was seen)
    expect(r).toEqual({ e: '5', r: '3', w: '4', h: '3' });
  });

  it('host health of the old release reads with now_ns 0 (a collector that sends no heartbeat clock); TRIGGER_END is a capability', async () => {
    expect(await q(`SELECT last_ts_ns, now_ns FROM revokescope.host_health WHERE hostname = 'old-host'`)).toEqual([{ last_ts_ns: '999000000100', now_ns: '0' }]);
    await store.writeHostHealth([{ hostname: 'old-host', bootId: 'old-boot', kernelRelease: '6.12.0', collectorVersion: 'v2', observedAtMs: NOW_MS + 1000,
      capabilities: ['LOCK', 'TRIGGER_END', 'NOT_A_CAPABILITY'], events: 11, dropped: 0, lost: 0, lag: 0, lastTsNs: 999_000_000_200, nowNs: 999_500_000_000 }]);
    await store.flush();
    expect(await q(`SELECT capabilities, now_ns FROM revokescope.host_health WHERE hostname = 'old-host' ORDER BY observed_at`)).toEqual([
      { capabilities: ['LOCK'], now_ns: '0' }, { capabilities: ['LOCK', 'TRIGGER_END'], now_ns: '999500000000' }]);
  });
});

describe('migration 6: finding_events', () => {
  it('has the raw events\' columns with their types (INSERT … SELECT copies them as they are) and no TTL', async () => {
    const columns = async (table: string) => q<{ name: string; type: string }>(
      `SELECT name, type FROM system.columns WHERE database = 'revokescope' AND table = {t:String} AND default_kind != 'ALIAS' ORDER BY position`, { t: table });
    const events = await columns('events');
    expect(await columns('finding_events')).toEqual([{ name: 'finding_id', type: 'String' }, ...events]);
    const [{ ddl }] = await q<{ ddl: string }>(`SELECT create_table_query AS ddl FROM system.tables WHERE database = 'revokescope' AND name = 'finding_events'`);
    expect(ddl).not.toContain('TTL');
  });

  it('an old finding keeps no window (it was written before): read, it has no events', async () => {
    const w = await readFindingWindow(reader, 'old-f');
    expect(w).toMatchObject({ events: [], capped: false, episode: { episodeId: 'old-1' } });
    expect(w?.finding.findingId).toBe('old-f');
    expect(await readFindingWindow(reader, 'no-such-finding')).toBeUndefined();
  });
});

describe('the newest migration covers proto/', () => {
  // a value added to a proto enum needs a migration that widens its columns (writers store values they do not
  // know as 0 or drop them, so an insert never fails on one): this fails until that migration exists
  const numbers = (e: object): Record<string, number> => Object.fromEntries(Object.entries(e).filter(([, v]) => typeof v === 'number'));
  it('every TriggerKind, FindingKind and Capability value is in the enum columns', () => {
    expect(COLUMN_ENUM_VALUES.trigger).toEqual(numbers(TriggerKind));
    expect(COLUMN_ENUM_VALUES.finding).toEqual(numbers(FindingKind));
    expect(COLUMN_ENUM_VALUES.capability).toEqual(numbers(Capability));
  });
});

describe('migration 4 on a cluster', () => {
  const ddl = renderSchema({ ...defaultSchemaOptions, cluster: 'fleet' });
  it('alters the local tables and the Distributed tables over them; the sorting key only on the local table', () => {
    expect(ddl).toMatch(/ALTER TABLE revokescope\.events_local ON CLUSTER fleet\n[^;]*ADD COLUMN IF NOT EXISTS memory_enabled Nullable\(Bool\)/);
    expect(ddl).toMatch(/ALTER TABLE revokescope\.events ON CLUSTER fleet\n[^;]*ADD COLUMN IF NOT EXISTS memory_enabled Nullable\(Bool\)/);
    expect(ddl).toMatch(/ALTER TABLE revokescope\.episodes_local ON CLUSTER fleet\n[^;]*ADD COLUMN IF NOT EXISTS before_observation_release_ns UInt64[^;]*,\n {2}MODIFY ORDER BY \(hostname, boot_id, device, acquire_ts_ns, before_observation_release_ns\);/);
    const distributed = /ALTER TABLE revokescope\.episodes ON CLUSTER fleet\n([^;]*);/.exec(ddl);
    expect(distributed?.[1]).toContain('ADD COLUMN IF NOT EXISTS pid UInt32');
    expect(distributed?.[1]).not.toContain('ORDER BY');
    expect(ddl).toContain('DROP VIEW IF EXISTS revokescope.episodes_dedup ON CLUSTER fleet');
    expect(ddl).toMatch(/ALTER TABLE revokescope\.findings_local ON CLUSTER fleet\n {2}MODIFY COLUMN kind Enum8\([^)]*'FAULT_WHILE_REVOKED' = 8\)/);
    expect(ddl).toMatch(/ALTER TABLE revokescope\.episode_latency_1d ON CLUSTER fleet\n {2}MODIFY COLUMN trigger Enum8\([^)]*'OPEN' = 12\)/);
    expect(ddl).toMatch(/ALTER TABLE revokescope\.host_health ON CLUSTER fleet\n[^;]*MODIFY COLUMN capabilities Array\(Enum8\([^)]*'TRIGGER_END' = 9\)\)/);
  });
});
