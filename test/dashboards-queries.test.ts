// Every panel query of every dashboard, expanded as grafana-clickhouse-datasource expands it (template
// variables, $__conditionalAll, $__ macros), run in chDB against the real schema filled through the store's
// writer with a correlated fleet trace. Each must parse, return rows, and return what its panel format needs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ClickHouseClient } from '@clickhouse/client';
import { checkDashboard, resolveVariables, type PanelRun, type RunSql } from '../dashboards/check.js';
import { DASHBOARDS } from '../dashboards/index.js';
import { interpolate, type TimeRange } from '../dashboards/interpolate.js';
import { analyzeBatches } from '../services/core/analysis.js';
import { Backing, FindingKind, Severity, TriggerKind, ZapTarget, type Episode, type EventBatch, type Finding } from '../services/core/model.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import type { HostHealth } from '../services/store/types.js';
import { ConsumerBookkeeping, type DlqCount } from '../services/transport/kafka/bookkeeping.js';
import { TraceBuilder, type Era } from './support/trace-builder.js';

// wall clock, not a fixed date: events (7 days) and host_health (90 days) have TTLs
const NOW_MS = Math.floor(Date.now() / 60_000) * 60_000;
const MINUTES = 30;
const SHIFT_NS = -(MINUTES + 1) * 60e9; // the trace starts 31 minutes before NOW
const RANGE: TimeRange = { fromMs: NOW_MS - 2 * 3600e3, toMs: NOW_MS, intervalMs: 60_000 };

// ------------------------------------------------------------------ the fleet

interface HostPlan { hostname: string; era: Era; driver: string; devices: string[]; kind: 'legacy' | 'dmabuf-export' | 'series' | 'custom-vm-ops' | 'unknown' }

const PLANS: HostPlan[] = [
  { hostname: 'gpu-a01', era: '6.12', driver: 'vfio-pci', devices: ['0000:3b:00.0', '0000:af:00.0'], kind: 'legacy' },
  { hostname: 'nic-b02', era: '6.19', driver: 'mlx5_vfio_pci', devices: ['0000:18:00.1'], kind: 'dmabuf-export' },
  { hostname: 'gpu-c03', era: 'series', driver: 'vfio-pci', devices: ['0000:5e:00.0', '0000:86:00.0'], kind: 'series' },
  { hostname: 'gh-d04', era: 'series', driver: 'nvgrace-gpu', devices: ['0009:01:00.0'], kind: 'custom-vm-ops' },
  { hostname: 'nic-e05', era: '6.19', driver: 'vfio-pci', devices: ['0000:d8:00.0'], kind: 'unknown' },
];

/** A deterministic jitter in [0, 1). */
const jitter = (i: number, salt: number): number => ((Math.sin(i * 12.9898 + salt * 78.233) * 43758.5453) % 1 + 1) % 1;

function hostTrace(p: HostPlan): EventBatch[] {
  const t = new TraceBuilder(p.era, p.hostname, `boot-${p.hostname}`);
  const periodUs = 20e6; // one reset per device every 20 s
  const episodes = (MINUTES * 60e6) / periodUs;
  p.devices.forEach((dev, d) => {
    if (p.kind !== 'unknown') t.info(1 + d, dev, p.driver, p.kind === 'custom-vm-ops', p.kind === 'series' || p.kind === 'custom-vm-ops');
    const backing = p.kind === 'series' ? Backing.DMABUF : p.kind === 'custom-vm-ops' ? Backing.CUSTOM_VM_OPS : Backing.LEGACY;
    if (p.kind !== 'unknown') {
      t.mmap(10 + d, dev, 100 + d, { bar: 0, backing, snapshot: true });
      t.mmap(20 + d, dev, 200 + d, { bar: 2, backing });
      t.fault(30 + d, dev, 200 + d, 2);
      if (p.kind === 'custom-vm-ops') t.mmap(40 + d, dev, 300 + d, { bar: 0, backing: Backing.DMABUF });
    }
    for (let i = 0; i < episodes; i++) {
      const at = 1e6 + i * periodUs + d * 1e6;
      const tid = 1000 + d;
      const zapNs = 15_000 + Math.round(jitter(i, d) * 60_000);
      const revokeNs = 20_000 + Math.round(jitter(i, d + 7) * 200_000);
      t.trigger(at, dev, TriggerKind.RESET, tid);
      t.acquire(at + 5, dev, tid, 1_000 + Math.round(jitter(i, d + 3) * 30_000));
      switch (p.kind) {
        case 'legacy':
          // every 15th reset of the first device misses its zap right after the user touched BAR 2
          if (d === 0 && i % 15 === 7) t.fault(at - 2_000, dev, 200 + d, 2);
          else t.zap(at + 10, dev, { durationNs: zapNs, tid, hadVmas: true });
          break;
        case 'dmabuf-export':
          t.revoke(at + 10, dev, true, { durationNs: i === 40 ? 60_000_000 : revokeNs, count: 2, tid });
          t.move(at + 11, dev, 8_000, 2, 1);
          t.zap(at + 12 + (i === 40 ? 60_000 : revokeNs / 1000), dev, { durationNs: zapNs, tid, hadVmas: true });
          t.revoke(at + 400 + (i === 40 ? 60_000 : 0), dev, false, { tid });
          break;
        case 'series':
          t.revoke(at + 10, dev, true, { durationNs: revokeNs, count: 2, tid, deviceHasVmas: false });
          // the second device still zaps now and then: redundant, all its BAR mappings are DMABUFs
          if (d === 1 && i % 4 === 0) t.zap(at + 12 + revokeNs / 1000, dev, { durationNs: zapNs, tid, hadVmas: false, target: ZapTarget.DEVICE });
          t.revoke(at + 400, dev, false, { tid });
          break;
        case 'custom-vm-ops':
          t.revoke(at + 10, dev, true, { durationNs: revokeNs, count: 1, tid, deviceHasVmas: true });
          t.zap(at + 12 + revokeNs / 1000, dev, { durationNs: zapNs * 4, tid, hadVmas: true });
          t.revoke(at + 900, dev, false, { tid });
          break;
        case 'unknown':
          t.revoke(at + 10, dev, true, { durationNs: revokeNs, count: 1, tid });
          t.revoke(at + 300, dev, false, { tid });
          break;
      }
      const slow = p.kind === 'dmabuf-export' && i === 40 ? 60_000 : 0;
      t.release(at + slow + 1_000 + Math.round(jitter(i, d + 11) * 2_000), dev, tid);
    }
  });
  const batches = t.batches(256);
  if (p.hostname === 'gpu-a01') {
    // the first device's resets come from the QEMU of a VM run by libvirt inside a pod's container (its cgroup names
    // both); the agent read the pod's name
    for (const e of t.events) if (e.tid === 1000) e.cgroupId = 7001;
    batches[0]!.cgroups = [{ id: 7001, podName: 'ml/trainer-0', path: '/kubepods.slice/kubepods-pod1a2b3c4d_5e6f_4a7b_8c9d_0e1f2a3b4c5d.slice/' +
      `cri-containerd-${'ef'.repeat(32)}.scope/machine.slice/machine-qemu\\x2d2\\x2dgpu\\x2dvm\\x2d1.scope/libvirt/emulator` }];
  }
  return batches;
}

function healthSamples(p: HostPlan, batches: EventBatch[]): HostHealth[] {
  const events = batches.reduce((s, b) => s + (b.events?.length ?? 0), 0);
  const lastTs = Math.max(...batches.flatMap((b) => (b.events ?? []).map((e) => e.tsNs ?? 0)));
  const firstTs = Math.min(...batches.flatMap((b) => (b.events ?? []).map((e) => e.tsNs ?? 0)));
  const caps = (batches[0]!.host!.capabilities ?? []).map((c) => ['CAPABILITY_UNSPECIFIED', 'LOCK', 'ZAP', 'DMABUF_REVOKE',
    'MOVE_NOTIFY', 'BAR_MMAP', 'BAR_FAULT', 'TRIGGER', 'DEVICE_INFO'][c as number]!);
  const out: HostHealth[] = [];
  // one sample a minute from the start of the trace until its end, a minute before NOW
  for (let m = 0; m <= MINUTES; m++) {
    // nic-e05 goes silent half way through its trace: samples keep coming, its newest event stops advancing
    const progress = Math.min(m, p.hostname === 'nic-e05' ? MINUTES / 2 : MINUTES) / MINUTES;
    out.push({
      hostname: p.hostname, bootId: `boot-${p.hostname}`, kernelRelease: batches[0]!.host!.kernelRelease!, collectorVersion: 'test',
      capabilities: caps, observedAtMs: NOW_MS + SHIFT_NS / 1e6 + m * 60e3, events: Math.round(events * progress),
      dropped: p.hostname === 'nic-b02' ? m * 3 : 0, lost: p.hostname === 'nic-b02' ? m * 4 : 0, lag: (m * 7) % 50,
      lastTsNs: Math.round(firstTs + (lastTs - firstTs) * progress),
    });
  }
  return out;
}

/**
 * Rules-v2 outputs (docs/rules.md) the hand-written traces above do not produce, built as the correlator emits them:
 * on gpu-a01 an episode that began before observation and one touched by loss (device 0000:3b:00.0), a certain
 * FAULT_WHILE_REVOKED (0000:af:00.0); on nic-e05 an inconclusive one.
 */
function rulesV2(episodes: Episode[], findings: Finding[]): { episodes: Episode[]; findings: Finding[] } {
  const base = episodes.find((e) => e.hostname === 'gpu-a01' && e.device === '0000:3b:00.0')!;
  const other = episodes.find((e) => e.hostname === 'gpu-a01' && e.device === '0000:af:00.0')!;
  const e05 = findings.find((f) => f.hostname === 'nic-e05')!;
  return {
    episodes: [
      { ...base, episodeId: 'v2-early', acquireTsNs: 0, releaseTsNs: base.acquireTsNs + 3e9, lockWaitNs: 0, holdNs: 0, revokeNs: 0, complete: false,
        pid: 0, comm: '' },
      { ...base, episodeId: 'v2-lossy', acquireTsNs: base.acquireTsNs + 5e9, releaseTsNs: base.acquireTsNs + 5.9e9, holdNs: 900e6, revokeNs: 800e6,
        complete: false, pid: 4242, comm: 'qemu-kvm', triggerRet: -16, staleTriggers: 1 },
    ],
    findings: [
      { findingId: 'v2-fwr', kind: FindingKind.FAULT_WHILE_REVOKED, severity: Severity.CRITICAL, hostname: 'gpu-a01', bootId: other.bootId,
        device: other.device, driver: other.driver, kernelRelease: other.kernelRelease, episodeId: '', tsNs: other.acquireTsNs + 7e9, inconclusive: false,
        evidence: JSON.stringify({ rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault', mappingId: 200, bar: 2 }) },
      { ...e05, findingId: 'v2-fwr-inc', kind: FindingKind.FAULT_WHILE_REVOKED, severity: Severity.CRITICAL, inconclusive: true,
        evidence: JSON.stringify({ rule: 'fault_while_revoked.memory_disabled', mirrors: 'vfio_pci_mmap_huge_fault',
          unknown: ['memory_enabled: no DeviceInfo since the collector started'] }) },
    ],
  };
}

/** idle-f06: no events at all, but its collector's heartbeats (EventBatch.now_ns) keep coming: alive. */
function heartbeatSamples(): HostHealth[] {
  return Array.from({ length: MINUTES + 1 }, (_, m) => ({ hostname: 'idle-f06', bootId: 'boot-idle-f06', kernelRelease: '6.19.0-1-amd64',
    collectorVersion: 'test', capabilities: ['LOCK'], observedAtMs: NOW_MS + SHIFT_NS / 1e6 + m * 60e3, events: 0, dropped: 0, lost: 0, lag: 0,
    lastTsNs: 0, nowNs: 1e12 + m * 60e9 }));
}

/** What the fleet correlator dead-lettered: per minute, topic, partition and reason (DLQ rate panel). */
const DLQ: DlqCount[] = [
  // two partitions in the same minute sum into one point of the reason's series
  { timeMs: NOW_MS - 10 * 60e3, topic: 'revokescope.events', partition: 0, reason: 'corrupt protobuf', count: 30 },
  { timeMs: NOW_MS - 10 * 60e3, topic: 'revokescope.events', partition: 3, reason: 'corrupt protobuf', count: 90 },
  { timeMs: NOW_MS - 9 * 60e3, topic: 'revokescope.events', partition: 1, reason: 'corrupt protobuf', count: 6 },
  { timeMs: NOW_MS - 5 * 60e3, topic: 'revokescope.events', partition: 2, reason: 'invalid batch', count: 12 },
  // before the time range: not shown
  { timeMs: NOW_MS - 3 * 3600e3, topic: 'revokescope.events', partition: 0, reason: 'invalid batch', count: 1000 },
];

// ------------------------------------------------------------------ running queries

let dir: string;
let client: ClickHouseClient;
let store: ClickHouseStore;
let findingKinds: Set<string>;

const run: RunSql = async (sql) => {
  const rs = await client.query({ query: sql, format: 'JSONCompactEachRowWithNamesAndTypes' });
  const [names, types, ...rows] = await rs.json<unknown[]>();
  return { names: names as string[], types: types as string[], rows };
};

const report = (runs: PanelRun[], file: string): string[] =>
  runs.filter((r) => r.problems.length > 0).map((r) => `${file} / ${r.panel.title}: ${r.problems.join('; ')}\n${r.sql}`);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'revokescope-dash-'));
  const conn = await connect({ dataDir: dir });
  client = conn.client;
  store = new ClickHouseStore(client, { now: () => NOW_MS, wallClockShiftNs: SHIFT_NS, writer: { maxDelayMs: 50 } });
  await store.migrate();
  // the correlator's own tables, created and written as `revokescope correlate` does
  const bookkeeping = new ConsumerBookkeeping(client, 'revokescope', 'test'); // its tables come with the store's migrations
  await bookkeeping.writeDlq(DLQ);
  const batches = PLANS.map(hostTrace);
  const { episodes, findings } = analyzeBatches(batches.flat());
  findingKinds = new Set(findings.map((f) => `${FindingKind[f.kind]}${f.inconclusive ? ' inconclusive' : ''}`));
  for (const b of batches.flat()) await store.writeBatch(b);
  const v2 = rulesV2(episodes, findings);
  await store.writeEpisodes([...episodes, ...v2.episodes]);
  await store.writeFindings([...findings, ...v2.findings]);
  await store.writeHostHealth([...PLANS.flatMap((p, i) => healthSamples(p, batches[i]!)), ...heartbeatSamples()]);
  await store.flush();
}, 180_000);

afterAll(async () => {
  await store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('dashboard queries against the store schema (chDB)', () => {
  it('the fleet trace exercises what the panels show', async () => {
    for (const k of ['SKIPPED_ZAP', 'REDUNDANT_ZAP', 'SLOW_REVOKE', 'SKIPPED_ZAP inconclusive']) expect(findingKinds, k).toContain(k);
    const kernels = await run(`SELECT DISTINCT kernel_release FROM revokescope.episodes`);
    expect(kernels.rows.length).toBeGreaterThanOrEqual(2);
  });

  for (const { file, spec } of DASHBOARDS) {
    it(`${file}: every panel returns rows with the shape its format needs (All selected)`, async () => {
      expect(report(await checkDashboard(spec, run, RANGE, 'all', true), file)).toEqual([]);
    });

    it(`${file}: every panel returns rows with every value listed, and runs with single values`, async () => {
      expect(report(await checkDashboard(spec, run, RANGE, 'list', true), file)).toEqual([]);
      expect(report(await checkDashboard(spec, run, RANGE, 'first', false), file)).toEqual([]);
    });
  }
});

describe('dashboard panels show the fleet the trace describes', () => {
  /** Runs the first query of a panel (by title) with every variable at its default (All / first option). */
  async function panel(file: string, title: string): Promise<Record<string, unknown>[]> {
    const { spec } = DASHBOARDS.find((d) => d.file === file)!;
    const p = spec.rows.flatMap((r) => r.panels).find((x) => x.title === title);
    if (!p) throw new Error(`no panel '${title}' in ${file}`);
    const vars = await resolveVariables(spec, run, RANGE, 'all');
    const res = await run(interpolate(p.queries[0]!.sql, vars, RANGE));
    return res.rows.map((r) => Object.fromEntries(res.names.map((n, i) => [n, r[i]])));
  }

  it('fleet: skipped zaps point at the device that missed its zap, wasted zap time at the series device that still zaps', async () => {
    const skipped = await panel('fleet-overview.json', 'Devices with skipped zaps');
    expect(skipped[0]).toMatchObject({ hostname: 'gpu-a01', device: '0000:3b:00.0' });
    expect(Number(skipped[0]!.critical)).toBe(6);
    expect(skipped).toHaveLength(2);
    expect(skipped.map((r) => r.hostname)).toContain('nic-e05'); // inconclusive: unknown mapping state
    const wasted = await panel('fleet-overview.json', 'Devices by wasted zap time');
    expect(wasted).toHaveLength(1);
    expect(wasted[0]).toMatchObject({ hostname: 'gpu-c03', device: '0000:86:00.0' });
    expect(Number(wasted[0]!.redundant_zaps)).toBe(23);
    expect(Number(wasted[0]!.wasted_ms)).toBeGreaterThan(0);
    const [critical] = await panel('fleet-overview.json', 'Critical findings');
    expect(Number(critical!.critical)).toBe(7); // 6 certain SKIPPED_ZAP + the certain FAULT_WHILE_REVOKED; not the inconclusive one
  });

  it('fleet: faults while revoked, critical devices, and the inconclusive share per kind and per host', async () => {
    const [fwr] = await panel('fleet-overview.json', 'Faults while revoked');
    expect(Number(fwr!.faults_while_revoked)).toBe(1);
    const devices = await panel('fleet-overview.json', 'Devices with critical findings');
    expect(devices.map((r) => [r.hostname, r.device, Number(r.faults_while_revoked), Number(r.certain), Number(r.inconclusive_findings)])).toEqual([
      ['gpu-a01', '0000:af:00.0', 1, 1, 0], ['gpu-a01', '0000:3b:00.0', 0, 6, 0], ['nic-e05', '0000:d8:00.0', 0, 0, 1]]);
    const byKind = Object.fromEntries((await panel('fleet-overview.json', 'Inconclusive share by kind')).map((r) => [r.kind, Number(r.inconclusive_share)]));
    expect(byKind.FAULT_WHILE_REVOKED).toBe(0.5);
    expect(byKind.REDUNDANT_ZAP).toBe(0);
    const [exact] = (await run(`SELECT countIf(inconclusive) / count() FROM revokescope.findings FINAL WHERE toString(kind) = 'SKIPPED_ZAP'`)).rows;
    expect(byKind.SKIPPED_ZAP).toBeCloseTo(Number(exact![0]), 9);
    const byHost = Object.fromEntries((await panel('fleet-overview.json', 'Inconclusive share by host')).map((r) => [r.hostname, r]));
    expect(Number(byHost['nic-e05']!.inconclusive_share)).toBe(1);
    // the commonest reason among nic-e05's inconclusive findings (the correlator's evidence.unknown, and ours)
    const [[top, n]] = (await run(`SELECT u, count() AS n FROM (SELECT JSONExtractString(evidence, 'unknown', 1) AS u FROM revokescope.findings FINAL
      WHERE hostname = 'nic-e05' AND inconclusive) WHERE u != '' GROUP BY u ORDER BY n DESC LIMIT 1`)).rows;
    expect(Number(n)).toBeGreaterThan(0);
    expect(byHost['nic-e05']!.top_unknown).toBe(top);
    expect(Number(byHost['gpu-a01']!.inconclusive_share)).toBe(0);
  });

  it('fleet: latency quantiles are ordered and in milliseconds', async () => {
    const rows = await panel('fleet-overview.json', 'Revoke latency p50 / p99 / p99.9 by kernel and driver');
    for (const r of rows) {
      expect(Number(r.p50)).toBeLessThanOrEqual(Number(r.p99) + 1e-9);
      expect(Number(r.p99)).toBeLessThanOrEqual(Number(r.p99_9) + 1e-9);
      expect(Number(r.p99_9)).toBeLessThan(100); // the slowest revoke of the trace is 60 ms
    }
    const heat = await panel('fleet-overview.json', 'Revoke latency distribution');
    const total = heat.reduce((s, r) => s + Object.entries(r).filter(([k]) => k !== 'time').reduce((a, [, v]) => a + Number(v), 0), 0);
    // measured revokes only: not the episode touched by loss (800 ms), not the one that began before observation
    const [[n, all]] = (await run('SELECT countIf(revoke AND revoke_ns > 0 AND complete AND acquire_ts_ns > 0), countIf(revoke AND revoke_ns > 0) FROM revokescope.episodes')).rows;
    expect(total).toBe(Number(n));
    expect(Number(all)).toBe(Number(n) + 1);
  });

  it('collector health: the host whose events stopped is silent, the idle one with heartbeats is not, capabilities follow the kernel', async () => {
    const [silent] = await panel('collector-health.json', 'Silent hosts');
    expect([Number(silent!.silent_hosts), Number(silent!.hosts)]).toEqual([1, 6]);
    const bySilence = await panel('collector-health.json', 'Hosts by silence');
    expect(bySilence[0]!.hostname).toBe('nic-e05');
    const idle = bySilence.find((r) => r.hostname === 'idle-f06')!;
    expect([Boolean(Number(idle.silent)), Boolean(Number(idle.heartbeats)), Number(idle.silent_for_s)]).toEqual([false, true, 60]);
    const observed = Object.fromEntries((await panel('collector-health.json', 'Episodes not fully observed')).map((r) => [r.hostname, r]));
    expect([Number(observed['gpu-a01']!.began_before_observation), Number(observed['gpu-a01']!.incomplete)]).toEqual([1, 2]);
    expect(Number(observed['nic-b02']!.incomplete)).toBe(0);
    const caps = Object.fromEntries((await panel('collector-health.json', 'Capability matrix')).map((r) => [r.hostname, r]));
    const yes = (r: Record<string, unknown> | undefined, c: string): boolean => Boolean(Number(r?.[c]));
    expect(['LOCK', 'DMABUF_REVOKE'].map((c) => yes(caps['gpu-a01'], c))).toEqual([true, false]);
    expect(['LOCK', 'DMABUF_REVOKE', 'MOVE_NOTIFY'].map((c) => yes(caps['nic-b02'], c))).toEqual([true, true, true]);
  });

  it('collector health: the DLQ rate is messages/s per minute bucket by reason, within the range', async () => {
    const rows = await panel('collector-health.json', 'DLQ rate');
    const t = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
    expect(rows.map((r) => [r.time, r.reason, Number(r.per_s)])).toEqual([
      [t(NOW_MS - 10 * 60e3), 'corrupt protobuf', 2],
      [t(NOW_MS - 9 * 60e3), 'corrupt protobuf', 0.1],
      [t(NOW_MS - 5 * 60e3), 'invalid batch', 0.2],
    ]);
  });

  it('device drill-down: the default device is the worst one and its live mappings are listed by backing', async () => {
    const inventory = await panel('device-drilldown.json', 'Mapping inventory by backing');
    expect(inventory.map((r) => [r.backing, r.bar, Number(r.live_mappings)])).toEqual([['LEGACY', 0, 1], ['LEGACY', 2, 1]]);
    const findings = await panel('device-drilldown.json', 'Findings with evidence');
    expect(findings.length).toBe(6);
    expect(findings.every((f) => f.kind === 'SKIPPED_ZAP' && f.severity === 'CRITICAL')).toBe(true);
  });

  it('device drill-down: episodes show the task and trigger return, and leave unmeasured times empty', async () => {
    const rows = Object.fromEntries((await panel('device-drilldown.json', 'Episodes')).map((r) => [r.episode_id, r]));
    expect(rows['v2-early']).toMatchObject({ began_before_observation: true, complete: false, lock_wait_ms: null, hold_ms: null, revoke_ms: null });
    expect(Object.values(rows).filter((r: any) => r.vm === 'gpu-vm-1').length).toBeGreaterThan(50);
    expect(rows['v2-lossy']).toMatchObject({ vm: 'gpu-vm-1', pod: 'ml/trainer-0' });
    expect(rows['v2-lossy']).toMatchObject({ comm: 'qemu-kvm', pid: 4242, trigger_ret: -16, stale_triggers: 1, began_before_observation: false,
      lock_wait_ms: expect.any(Number), hold_ms: null, revoke_ms: null });
    const measured = Object.values(rows).find((r: any) => r.complete === true) as any;
    expect(measured.revoke_ms).toEqual(expect.any(Number));
    const perEpisode = await panel('device-drilldown.json', 'Per episode: revoke latency, zap time, lock hold');
    // empty where not measured: the two above and the 6 resets that skipped their zap (no revoke at all)
    const [[unmeasured]] = (await run(`SELECT countIf(NOT (revoke AND revoke_ns > 0 AND complete AND acquire_ts_ns > 0)) FROM revokescope.episodes
      WHERE hostname = 'gpu-a01' AND device = '0000:3b:00.0'`)).rows;
    expect(Number(unmeasured)).toBe(8);
    expect(perEpisode.filter((r) => r.revoke_ms === null)).toHaveLength(8);
  });
});
