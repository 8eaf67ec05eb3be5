// The API and the built-in alert rules over rules-v2 outputs (docs/rules.md, docs/design.md §6), on real HTTP (fastify on
// 127.0.0.1) and a real chDB store: FAULT_WHILE_REVOKED pages at once; critical rules count certain findings
// only, inconclusive findings stay visible (API, an info-level rule) and never page; new filters and fields;
// evidence as an object; hosts alive by their heartbeat clock. Findings and episodes are built by hand (the
// shapes the correlator emits), so these tests do not depend on which traces produce them.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../services/api/alerting/rules.js';
import { ALERTING_TABLES } from '../services/api/alerting/queries.js';
import { FindingKind, Severity, TriggerKind, type Episode, type Finding } from '../services/core/model.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import type { HostHealth } from '../services/store/types.js';
import { startApi, type TestApi } from './support/api-server.js';

const T0 = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000; // data written 10 minutes ago
const now = T0 + 60_000;
const S = 1e9;
const BOOT_TS = 1_000 * S; // the first ts each boot shows: its wall clock is T0
let client: ClickHouseClient;
let dir: string;
let api: TestApi;

const finding = (id: string, host: string, kind: number, severity: number, inconclusive: boolean, evidence: Record<string, unknown>,
  over: Partial<Finding> = {}): Finding => ({
  findingId: id, kind, severity, hostname: host, bootId: `boot-${host}`, device: '0000:3b:00.0', driver: 'vfio-pci',
  kernelRelease: '6.19.0-1-amd64', episodeId: '', tsNs: BOOT_TS + 5 * S, inconclusive, evidence: JSON.stringify(evidence), ...over,
});

const episode = (id: string, host: string, over: Partial<Episode>): Episode => ({
  episodeId: id, hostname: host, bootId: `boot-${host}`, device: '0000:3b:00.0', driver: 'vfio-pci', kernelRelease: '6.19.0-1-amd64',
  trigger: TriggerKind.RESET, groupId: 0, acquireTsNs: BOOT_TS + S, releaseTsNs: BOOT_TS + S + 80_000, revoke: true, lockWaitNs: 100,
  holdNs: 80_000, revokeNs: 30_000, zapNs: 10_000, dmabufRevokeNs: 0, moveNs: 0, zapCount: 1, dmabufCount: 0, importerCount: 0,
  legacyMappings: 1, dmabufMappings: 0, complete: true, pid: 0, comm: '', triggerRet: 0, staleTriggers: 0, intendedEmptyZaps: 0,
    cgroupId: 0, vm: '', podUid: '', podName: '', containerId: '', acquireStackId: 0, ...over,
});

const FINDINGS: Finding[] = [
  // the hazard itself, proven: PTEs installed while memory was disabled
  finding('fwr-certain', 'host-fwr', FindingKind.FAULT_WHILE_REVOKED, Severity.CRITICAL, false,
    { rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault', mappingId: 7, bar: 0, backing: 'LEGACY' }),
  // critical kinds, but resting on unknown state: visible, never paging
  finding('fwr-inc', 'host-inc', FindingKind.FAULT_WHILE_REVOKED, Severity.CRITICAL, true,
    { rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault', unknown: ['memory_enabled: loss at 1002 s reset the host\'s knowledge'] }),
  finding('skip-inc', 'host-inc', FindingKind.SKIPPED_ZAP, Severity.CRITICAL, true,
    { rule: 'skipped_zap.unconditional_zap_era', mirrors: 'vfio_pci_zap_and_down_write_memory_lock', unknown: ['mappings: no DeviceInfo or snapshot yet'] },
    { tsNs: BOOT_TS + 6 * S }),
  finding('lock-inc', 'host-inc', FindingKind.LOCK_NOT_HELD, Severity.CRITICAL, true,
    { rule: 'lock_not_held.other_task', mirrors: 'lockdep_assert_held_write', unknown: ['lock holder: events lost inside the window'] },
    { tsNs: BOOT_TS + 7 * S }),
  finding('open-inc', 'host-inc', FindingKind.LOCK_HELD_OPEN, Severity.WARNING, true,
    { rule: 'lock_held_open.limit', mirrors: 'down_write', unknown: ['release: events lost after the acquire'] }, { tsNs: BOOT_TS + 8 * S }),
];

const EPISODES: Episode[] = [
  episode('ep-qemu', 'host-fwr', { pid: 4242, comm: 'qemu-kvm', staleTriggers: 1 }),
  episode('ep-reset', 'host-fwr', { acquireTsNs: BOOT_TS + 2 * S, releaseTsNs: BOOT_TS + 2 * S + 50_000, pid: 5151, comm: 'vfio-reset',
    triggerRet: -16, intendedEmptyZaps: 2 }),
  episode('ep-early', 'host-fwr', { acquireTsNs: 0, releaseTsNs: BOOT_TS + 500, lockWaitNs: 0, holdNs: 0, revokeNs: 0, complete: false }),
];

/** Samples once a minute for the 10 minutes up to T0. host-hb: idle (no events) but heartbeats advance now_ns;
 * host-quiet: its batches stopped 8 minutes before T0 (no samples since); host-stuck: samples keep coming but its
 * clock stopped 8 minutes before T0 (a collector that froze, a replay). */
function health(): HostHealth[] {
  const out: HostHealth[] = [];
  const h = (host: string, m: number, lastTsNs: number, nowNs: number): HostHealth => ({ hostname: host, bootId: `boot-${host}`,
    kernelRelease: '6.19.0-1-amd64', collectorVersion: 'v2', capabilities: ['LOCK', 'ZAP'], observedAtMs: T0 - (10 - m) * 60_000,
    events: 100, dropped: 0, lost: 0, lag: 0, lastTsNs, nowNs });
  for (let m = 0; m <= 10; m++) {
    out.push(h('host-hb', m, BOOT_TS, BOOT_TS + m * 60 * S));
    if (m <= 2) out.push(h('host-quiet', m, BOOT_TS + m * 60 * S, BOOT_TS + m * 60 * S));
    out.push(h('host-stuck', m, BOOT_TS + Math.min(m, 2) * 60 * S, BOOT_TS + Math.min(m, 2) * 60 * S));
  }
  return out;
}

async function get(path: string): Promise<{ status: number; body: any }> {
  const r = await fetch(api.url + path);
  return { status: r.status, body: await r.json() };
}
async function send(method: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(api.url + path, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'rs-api-v2-'));
  client = (await connect({ dataDir: dir })).client;
  const store = new ClickHouseStore(client, { now: () => T0 });
  await store.migrate();
  // every boot's clock offset: BOOT_TS is T0
  await store.prepareBoots(['host-fwr', 'host-inc'].map((h) => ({ hostname: h, bootId: `boot-${h}`, tsNs: BOOT_TS })));
  await store.writeEpisodes(EPISODES);
  await store.writeFindings(FINDINGS);
  await store.writeHostHealth(health());
  await store.flush();
  // a store seeded by the release before rules v2: its built-in rules counted inconclusive findings too; the user
  // raised one threshold and edited another rule's query (that one is theirs now)
  const old = (id: string, query: Record<string, unknown>, threshold?: number) => {
    const d = DEFAULT_RULES.find((r) => r.id === id)!;
    return { id, version: 1, deleted: 0, updated_at_ms: T0, body: JSON.stringify({ ...d, query, ...(threshold ? { threshold: { op: '>', value: threshold } } : {}) }) };
  };
  await client.command({ query: 'CREATE DATABASE IF NOT EXISTS revokescope' });
  await client.command({ query: `CREATE TABLE IF NOT EXISTS revokescope.${ALERTING_TABLES.rules} (id String, version UInt64, deleted UInt8,
    body String CODEC(ZSTD(3)), updated_at_ms Int64) ENGINE = ReplacingMergeTree(version) ORDER BY id` });
  await client.insert({ table: `revokescope.${ALERTING_TABLES.rules}`, format: 'JSONEachRow', values: [
    old('lock-held-open', { type: 'finding_count', window: '15m', kinds: ['LOCK_HELD_OPEN'], groupBy: ['hostname', 'device', 'driver'] }, 2),
    old('redundant-zap-budget', { type: 'redundant_zap_ns', window: '2h', groupBy: ['hostname'] }),
  ] });
  api = await startApi(client, { now: () => now });
}, 120_000);

afterAll(async () => {
  await api?.app.close();
  await client?.close();
});

describe('built-in rules (docs/rules.md: certain means proven)', () => {
  it('FAULT_WHILE_REVOKED is a critical rule without `for`, on certain findings', async () => {
    const { body } = await get('/api/v1/rules/fault-while-revoked');
    expect(body).toMatchObject({ name: 'RevokeFaultWhileRevoked', builtin: true, enabled: true, for: '0s', labels: { severity: 'critical' },
      query: { type: 'finding_count', kinds: ['FAULT_WHILE_REVOKED'], inconclusive: false }, threshold: { op: '>', value: 0 } });
  });

  it('every paging (critical) rule over findings counts certain findings only; an info rule watches the inconclusive ones', async () => {
    const { rules } = (await get('/api/v1/rules')).body;
    const critical = rules.filter((r: any) => r.labels.severity === 'critical');
    expect(critical.map((r: any) => r.id).sort()).toEqual(['fault-while-revoked', 'lock-not-held', 'skipped-zap']);
    // and the built-in definitions: every finding rule but the info one counts certain findings (warnings too)
    for (const r of DEFAULT_RULES.filter((x) => ['finding_count', 'redundant_zap_ns'].includes(x.query.type))) {
      expect(r.query.inconclusive, r.id).toBe(r.labels.severity === 'info');
    }
    expect(rules.find((r: any) => r.id === 'inconclusive-findings')).toMatchObject({ labels: { severity: 'info' }, query: { inconclusive: true } });
  });

  it('an older store\'s unedited built-in queries are upgraded; the user\'s thresholds and edited queries stay', async () => {
    const open = (await get('/api/v1/rules/lock-held-open')).body;
    expect(open.query).toEqual(DEFAULT_RULES.find((r) => r.id === 'lock-held-open')!.query);
    expect(open.query.inconclusive).toBe(false);
    expect(open.threshold.value).toBe(2);
    const budget = (await get('/api/v1/rules/redundant-zap-budget')).body;
    expect(budget.query).toEqual({ type: 'redundant_zap_ns', window: '2h', groupBy: ['hostname'] });
  });

  it('a certain FAULT_WHILE_REVOKED fires at the first evaluation; inconclusive critical findings page nobody', async () => {
    await api.engine.evaluate();
    const { alerts } = (await get('/api/v1/alerts')).body;
    const fwr = alerts.filter((a: any) => a.labels.alertname === 'RevokeFaultWhileRevoked');
    expect(fwr.map((a: any) => [a.state, a.labels.hostname, a.labels.device, a.labels.severity, a.value]))
      .toEqual([['firing', 'host-fwr', '0000:3b:00.0', 'critical', 1]]);
    const pagingOnInc = alerts.filter((a: any) => a.labels.severity === 'critical' && a.labels.hostname === 'host-inc');
    expect(pagingOnInc).toEqual([]);
    expect(alerts.filter((a: any) => a.labels.alertname === 'RevokeLockHeldOpen')).toEqual([]); // warning: certain only
    const info = alerts.filter((a: any) => a.labels.alertname === 'RevokeInconclusiveFindings');
    expect(info.map((a: any) => [a.state, a.labels.hostname, a.labels.kind, a.labels.severity]).sort()).toEqual([
      ['firing', 'host-inc', 'FAULT_WHILE_REVOKED', 'info'], ['firing', 'host-inc', 'LOCK_HELD_OPEN', 'info'],
      ['firing', 'host-inc', 'LOCK_NOT_HELD', 'info'], ['firing', 'host-inc', 'SKIPPED_ZAP', 'info']]);
    expect(info[0].annotations.description).toContain('/api/v1/findings?inconclusive=true&host=host-inc');
  });

  it('a host alive by its heartbeats is not silent; one whose batches stopped, or whose clock stopped, is', async () => {
    const silent = (await get('/api/v1/alerts')).body.alerts.filter((a: any) => a.labels.alertname === 'CollectorSilent');
    expect(silent.map((a: any) => [a.labels.hostname, a.state, Math.round(a.value)]).sort()).toEqual([
      ['host-quiet', 'firing', 9 * 60], ['host-stuck', 'firing', 9 * 60]]);
    const { hosts } = (await get('/api/v1/hosts?window=1h')).body;
    const byName = Object.fromEntries(hosts.map((h: any) => [h.hostname, h]));
    expect(byName['host-hb']).toMatchObject({ silentSeconds: 60, lastTsNs: String(BOOT_TS), nowNs: String(BOOT_TS + 600 * S) });
    expect(byName['host-stuck'].silentSeconds).toBe(9 * 60);
    expect(byName['host-stuck'].lastSeen).toBe(new Date(T0 - 8 * 60_000).toISOString());
  });

  it('rejects a critical rule that would page on inconclusive findings, with the reason', async () => {
    const body = { id: 'my-critical', name: 'MyCritical', query: { type: 'finding_count', window: '1h', kinds: ['SKIPPED_ZAP'], groupBy: ['hostname'] },
      threshold: { op: '>', value: 0 }, for: '0s', labels: { severity: 'critical' } };
    for (const query of [body.query, { ...body.query, inconclusive: true }]) {
      const r = await send('POST', '/api/v1/rules', { ...body, query });
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(/critical rule pages: it must count certain findings only \(query\.inconclusive: false\)/);
    }
    const budget = await send('POST', '/api/v1/rules', { ...body, id: 'my-budget', query: { type: 'redundant_zap_ns', window: '1h', groupBy: ['hostname'] } });
    expect(budget.status).toBe(400);
    expect((await send('POST', '/api/v1/rules', { ...body, query: { ...body.query, inconclusive: false } })).status).toBe(201);
    // watching inconclusive findings at a lower severity is fine
    expect((await send('POST', '/api/v1/rules', { ...body, id: 'my-watch', labels: { severity: 'warning' }, query: { ...body.query, inconclusive: true } })).status).toBe(201);
    // and FAULT_WHILE_REVOKED is a kind a rule may name (proto/ is the list)
    expect((await send('POST', '/api/v1/rules', { ...body, id: 'my-fwr', query: { ...body.query, kinds: ['FAULT_WHILE_REVOKED'], inconclusive: false } })).status).toBe(201);
    const unknownKind = await send('POST', '/api/v1/rules', { ...body, id: 'x', query: { ...body.query, kinds: ['FAULT_WHILE_REVOKE'], inconclusive: false } });
    expect(unknownKind.status).toBe(400);
  });
});

describe('read API: new filters, fields and evidence as an object', () => {
  it('findings by kind FAULT_WHILE_REVOKED and by inconclusive; evidence objects name the rule and the unknowns', async () => {
    const all = (await get('/api/v1/findings?kind=FAULT_WHILE_REVOKED')).body.findings;
    expect(all.map((f: any) => [f.findingId, f.severity, f.inconclusive]).sort()).toEqual([['fwr-certain', 'CRITICAL', false], ['fwr-inc', 'CRITICAL', true]]);
    const certain = (await get('/api/v1/findings?kind=FAULT_WHILE_REVOKED&inconclusive=false')).body.findings;
    expect(certain.map((f: any) => f.findingId)).toEqual(['fwr-certain']);
    expect(certain[0].evidence).toEqual({ rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault', mappingId: 7, bar: 0, backing: 'LEGACY' });
    const inc = (await get('/api/v1/findings?inconclusive=true&host=host-inc')).body.findings;
    expect(inc.map((f: any) => f.kind).sort()).toEqual(['FAULT_WHILE_REVOKED', 'LOCK_HELD_OPEN', 'LOCK_NOT_HELD', 'SKIPPED_ZAP']);
    for (const f of inc) expect(f.evidence.unknown, f.findingId).toEqual([expect.any(String)]);
    const byRule = (await get('/api/v1/findings?rule=skipped_zap.unconditional_zap_era')).body.findings;
    expect(byRule.map((f: any) => f.findingId)).toEqual(['skip-inc']);
  });

  it('episodes by comm and pid, with the task, trigger return, stale triggers and intended empty zaps', async () => {
    const byComm = (await get('/api/v1/episodes?comm=vfio-reset')).body.episodes;
    expect(byComm).toEqual([expect.objectContaining({ episodeId: 'ep-reset', pid: 5151, comm: 'vfio-reset', triggerRet: -16, staleTriggers: 0,
      intendedEmptyZaps: 2 })]);
    expect((await get('/api/v1/episodes?pid=4242')).body.episodes.map((e: any) => [e.episodeId, e.comm, e.staleTriggers])).toEqual([['ep-qemu', 'qemu-kvm', 1]]);
    expect((await get('/api/v1/episodes?pid=4242&comm=vfio-reset')).body.episodes).toEqual([]);
    const early = (await get('/api/v1/episodes?host=host-fwr&complete=false')).body.episodes;
    expect(early.map((e: any) => [e.episodeId, e.acquireTsNs, e.pid, e.comm])).toEqual([['ep-early', '0', 0, '']]);
  });

  it('latency leaves out what was not measured (the episode that began before observation)', async () => {
    const { rows } = (await get('/api/v1/latency?metric=wait&group_by=host&host=host-fwr')).body;
    expect(rows).toEqual([expect.objectContaining({ group: { host: 'host-fwr' }, episodes: 3, count: 2 })]);
  });

  const bad: [string, RegExp][] = [
    ['/api/v1/findings?inconclusive=maybe', /querystring\/inconclusive must be equal to one of the allowed values/],
    ['/api/v1/findings?kind=FAULT_WHILE_REVOKE', /querystring\/kind must be equal to one of the allowed values/],
    ['/api/v1/findings?rule=a%20b', /querystring\/rule must match pattern/],
    ['/api/v1/episodes?pid=-1', /querystring\/pid must be a decimal integer from 0 to 4294967295, got -1/],
    ['/api/v1/episodes?pid=4294967296', /querystring\/pid must be a decimal integer from 0 to 4294967295, got 4294967296/],
    ['/api/v1/episodes?pid=qemu', /querystring\/pid must be a decimal integer from 0 to 4294967295, got "qemu"/],
    ['/api/v1/episodes?comm=', /querystring\/comm must NOT have fewer than 1 characters/],
  ];
  for (const [path, reason] of bad) {
    it(`400 with the reason: ${path}`, async () => {
      const r = await get(path);
      expect(r.status).toBe(400);
      expect(r.body.message).toMatch(reason);
    });
  }

  it('the OpenAPI document describes the new filters, fields and the evidence object', async () => {
    const doc = (await get('/openapi.json')).body;
    const params = (p: string) => doc.paths[p].get.parameters.map((x: any) => x.name);
    expect(params('/api/v1/episodes')).toEqual(expect.arrayContaining(['comm', 'pid']));
    expect(params('/api/v1/findings')).toEqual(expect.arrayContaining(['inconclusive', 'kind', 'rule']));
    const kind = doc.paths['/api/v1/findings'].get.parameters.find((x: any) => x.name === 'kind');
    expect(kind.schema.enum).toContain('FAULT_WHILE_REVOKED');
    const finding = doc.paths['/api/v1/findings'].get.responses['200'].content['application/json'].schema.properties.findings.items;
    expect(finding.properties.evidence.type).toBe('object');
    const ep = doc.paths['/api/v1/episodes'].get.responses['200'].content['application/json'].schema.properties.episodes.items;
    expect(Object.keys(ep.properties)).toEqual(expect.arrayContaining(['pid', 'comm', 'triggerRet', 'staleTriggers', 'intendedEmptyZaps']));
  });
});
