import { describe, expect, it } from 'vitest';
import { analyzeBatches, analyzeFrames } from '../services/core/analysis.js';
import { Correlator } from '../services/core/correlator/index.js';
import { ALL_BARS_LENGTH, FindingKind, Severity, v1, type Finding } from '../services/core/model.js';
import { Backing, TraceBuilder, TriggerKind, ZapTarget, us, type Era } from './support/trace-builder.js';

const D = '0000:3b:00.0';
const D2 = '0000:3b:00.1';

const kinds = (fs: Finding[]) => fs.map((f) => `${FindingKind[f.kind]}/${Severity[f.severity]}${f.inconclusive ? '?' : ''}`).sort();
/** Every rule case runs twice: decoded batches and their protobuf bytes (wire.ts) must agree exactly. */
const run = (b: TraceBuilder, opts = {}) => {
  const a = analyzeBatches(b.batches(), opts);
  expect(analyzeFrames(b.batches().map((x) => v1.EventBatch.encode(x).finish()), opts)).toEqual(a);
  return a;
};

/** A device as the collector announces it at start: DeviceInfo plus a populated snapshot mapping. */
function started(era: Era, opts: { driver?: string; zapBarsOnRevoke?: boolean; backing?: number } = {}): TraceBuilder {
  const b = new TraceBuilder(era);
  b.info(0, D, opts.driver ?? 'vfio-pci', opts.zapBarsOnRevoke ?? true);
  const backing = opts.backing ?? (era === 'series' ? Backing.DMABUF : Backing.LEGACY);
  b.mmap(1, D, 7, { snapshot: true, backing });
  return b;
}

/** A correct VFIO_DEVICE_RESET for each era (docs/design.md §1 protocol). */
function correctReset(b: TraceBuilder, t: number, era: Era, opts: { deviceZap?: boolean } = {}): TraceBuilder {
  b.trigger(t, D, TriggerKind.RESET);
  if (era === '6.1') {
    // vfio_pci_zap_and_down_write_memory_lock(): zap_vma_ptes per VMA under vma_lock, then down_write.
    b.zap(t + 1, D, { start: 0, length: 1 << 20 });
    b.acquire(t + 30, D);
    b.release(t + 30_000, D);
    return b;
  }
  b.acquire(t + 2, D);
  if (era === '6.12') {
    b.zap(t + 10, D);
  } else if (era === 'series') {
    if (opts.deviceZap) b.zap(t + 10, D);
    b.revoke(t + 50, D, true, { count: 1 });
    b.zap(t + 55, D, { target: ZapTarget.DMABUF, start: 0, length: 1 << 20 });
    b.move(t + 60, D);
  } else {
    b.zap(t + 10, D);
    b.revoke(t + 50, D, true, { count: 1 });
    b.move(t + 60, D);
  }
  if (era !== '6.12') b.revoke(t + 20_000, D, false);
  b.release(t + 30_000, D);
  return b;
}

describe('negative twins: a correct kernel of every era gives no finding', () => {
  for (const era of ['6.1', '6.12', '6.19', '7.1', 'series'] as Era[]) {
    it(`era ${era}: reset with a populated mapping`, () => {
      const b = correctReset(started(era), 100, era);
      b.fault(40_000, D, 7);
      correctReset(b, 50_000, era);
      const r = run(b);
      expect(kinds(r.findings)).toEqual([]);
      expect(r.episodes).toHaveLength(2);
      for (const e of r.episodes) {
        expect(e.revoke).toBe(true);
        expect(e.trigger).toBe(TriggerKind.RESET);
        expect(e.complete).toBe(true);
        expect(e.revokeNs).toBeGreaterThan(0);
      }
    });
  }

  it('series: nvgrace-gpu custom vm_ops BAR opted in to zapping', () => {
    const b = started('series', { driver: 'nvgrace-gpu', backing: Backing.CUSTOM_VM_OPS });
    correctReset(b, 100, 'series', { deviceZap: true });
    expect(kinds(run(b).findings)).toEqual([]);
  });

  it('lock-only episodes (config reads/writes without revoke) are not revoke episodes', () => {
    const b = started('6.12');
    b.acquire(100, D).release(130, D);
    const r = run(b);
    expect(r.findings).toEqual([]);
    expect(r.episodes[0]!.revoke).toBe(false);
    expect(r.episodes[0]!.revokeNs).toBe(0);
  });
});

describe('episode metrics', () => {
  it('computes wait, hold, zap, dmabuf, move and revoke latency (end of last revoking step − acquire)', () => {
    const b = started('6.19');
    b.trigger(99, D, TriggerKind.FLR, 100, 0);
    b.acquire(100, D, 100, 2500);
    b.zap(110, D, { durationNs: 40_000 }); // ends at 150 µs
    b.revoke(200, D, true, { count: 2, durationNs: 300_000 }); // ends at 500 µs
    b.move(210, D, 100_000, 2, 1).move(320, D, 150_000, 1, 2);
    b.revoke(900, D, false, { count: 2 });
    b.release(1000, D);
    const [e] = run(b).episodes;
    expect(e).toMatchObject({
      device: D, driver: 'vfio-pci', trigger: TriggerKind.FLR, lockWaitNs: 2500, acquireTsNs: us(100), releaseTsNs: us(1000),
      holdNs: 900_000, zapNs: 40_000, zapCount: 1, dmabufRevokeNs: 300_000, dmabufCount: 2, moveNs: 250_000, importerCount: 3,
      revokeNs: 400_000, revoke: true, legacyMappings: 1, dmabufMappings: 0, complete: true, kernelRelease: '6.19.2-1-amd64',
    });
  });

  it('episode ids are deterministic and distinct', () => {
    const b = correctReset(started('6.12'), 100, '6.12');
    correctReset(b, 50_000, '6.12');
    const a = run(b).episodes.map((e) => e.episodeId);
    const again = run(b).episodes.map((e) => e.episodeId);
    expect(a).toEqual(again);
    expect(new Set(a).size).toBe(2);
    expect(a[0]).toMatch(/^[0-9a-f]{16}$/);
  });

  it('a trigger before the lock attaches to the same tid\'s next episode within 1 s, not another tid\'s', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_DISABLE, 100);
    b.acquire(200, D, 555).zap(210, D, { tid: 555 }).release(300, D, 555); // another task's episode
    b.acquire(400, D, 100).zap(410, D).release(500, D, 100);
    b.trigger(10_000, D, TriggerKind.D3HOT, 100);
    b.acquire(1_200_000, D, 100).release(1_200_100, D, 100); // 1.19 s later: too late to belong
    const eps = [...run(b).episodes].sort((x, y) => x.acquireTsNs - y.acquireTsNs);
    expect(eps.map((e) => TriggerKind[e.trigger])).toEqual(['TRIGGER_UNSPECIFIED', 'MEM_DISABLE', 'TRIGGER_UNSPECIFIED']);
  });

  it('hot reset: devices of one set share group_id', () => {
    const b = started('6.12');
    b.info(0, D2).mmap(1, D2, 9, { snapshot: true });
    b.trigger(100, D, TriggerKind.HOT_RESET, 100, 42).trigger(100.5, D2, TriggerKind.HOT_RESET, 100, 42);
    b.acquire(101, D).zap(102, D).acquire(103, D2).zap(104, D2).release(5000, D2).release(5001, D);
    const eps = run(b).episodes;
    expect(eps.map((e) => [e.device, e.groupId, TriggerKind[e.trigger]]).sort()).toEqual([[D, 42, 'HOT_RESET'], [D2, 42, 'HOT_RESET']]);
    expect(run(b).findings).toEqual([]);
  });
});

describe('SKIPPED_ZAP', () => {
  it('CRITICAL: a driver that forgot to opt in (custom vm_ops BAR populated, no DEVICE zap)', () => {
    const b = started('series', { driver: 'nvgrace-gpu', backing: Backing.CUSTOM_VM_OPS, zapBarsOnRevoke: false });
    correctReset(b, 100, 'series', { deviceZap: false });
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
    const ev = JSON.parse(r.findings[0]!.evidence);
    expect(ev.uncovered).toEqual([{ mappingId: 7, bar: 0, backing: 'CUSTOM_VM_OPS', populated: true }]);
    expect(r.findings[0]!.episodeId).toBe(r.episodes[0]!.episodeId);
    expect(r.findings[0]!.driver).toBe('nvgrace-gpu');
  });

  it('WARNING when the uncovered mapping had no populated PTEs', () => {
    const b = new TraceBuilder('series');
    b.info(0, D, 'nvgrace-gpu', false).mmap(1, D, 7, { backing: Backing.CUSTOM_VM_OPS }); // seen made, never faulted
    correctReset(b, 100, 'series');
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/WARNING']);
  });

  it('a zap of another BAR does not cover the mapping', () => {
    const b = started('6.12');
    b.acquire(100, D).zap(110, D, { start: 2 * 2 ** 40, length: 2 ** 40 }).release(200, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
  });

  it('6.12: a reset without unmap_mapping_range while a legacy mapping is populated', () => {
    const b = started('6.12');
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).release(20_000, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
  });

  it('pre-6.11: a revoke episode without zap_vma_ptes while a faulted mapping is live', () => {
    const b = started('6.1');
    b.fault(50, D, 7);
    b.trigger(99, D, TriggerKind.MEM_DISABLE).acquire(100, D).release(200, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
  });

  it('pre-6.11: a mapping known only from the start snapshot may never have faulted (not on vma_list): inconclusive', () => {
    const b = started('6.1');
    b.trigger(99, D, TriggerKind.MEM_DISABLE).acquire(100, D).release(200, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/CRITICAL?']);
  });

  it('pre-6.11: a never-faulted mapping is not on vma_list and needs no zap', () => {
    const b = new TraceBuilder('6.1');
    b.info(0, D).mmap(1, D, 7);
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).release(200, D);
    expect(run(b).findings).toEqual([]);
  });

  it('pre-6.11: no mapping, no VMA, no zap_vma_ptes: nothing to zap, no finding', () => {
    const b = new TraceBuilder('6.1');
    b.info(0, D);
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).release(200, D);
    expect(run(b).findings).toEqual([]);
  });

  it('unknown mapping state and no zap at all: inconclusive WARNING', () => {
    const b = new TraceBuilder('series');
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).revoke(110, D, true).revoke(200, D, false).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/WARNING?']);
  });

  it('device_has_vmas=true proves a non-DMABUF mapping: certain even with unknown state', () => {
    const b = new TraceBuilder('series');
    b.acquire(100, D).revoke(110, D, true, { deviceHasVmas: true }).revoke(200, D, false).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/WARNING']);
  });

  it('device_has_vmas=true with known state and nothing tracked: the mapping the agent missed', () => {
    const b = new TraceBuilder('series');
    b.info(0, D, 'vfio-pci', false);
    b.acquire(100, D).revoke(110, D, true, { deviceHasVmas: true }).revoke(200, D, false).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/WARNING']);
  });

  it('device_has_vmas=false outranks a stale tracked mapping', () => {
    const b = started('series', { backing: Backing.LEGACY, zapBarsOnRevoke: false });
    b.acquire(100, D).revoke(110, D, true, { deviceHasVmas: false }).revoke(200, D, false).release(300, D);
    expect(run(b).findings).toEqual([]);
  });

  it('a revoke episode with a DEVICE zap and unknown state is fine', () => {
    const b = new TraceBuilder('6.12');
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).zap(110, D).release(300, D);
    expect(run(b).findings).toEqual([]);
  });
});

describe('REDUNDANT_ZAP', () => {
  it('a driver that did not opt out: DEVICE zap although every BAR mapping is DMABUF-backed', () => {
    const b = started('series', { driver: 'hisi_acc_vfio_pci' });
    correctReset(b, 100, 'series', { deviceZap: true });
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['REDUNDANT_ZAP/INFO']);
    expect(JSON.parse(r.findings[0]!.evidence).wastedNs).toBe(20_000);
    expect(r.findings[0]!.tsNs).toBe(us(110));
  });

  it('had_vmas=false is a kernel fact: redundant even when the agent tracks a legacy mapping', () => {
    const b = started('series', { backing: Backing.LEGACY });
    b.acquire(100, D).zap(110, D, { hadVmas: false }).revoke(120, D, true).revoke(200, D, false).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['REDUNDANT_ZAP/INFO']);
  });

  it('had_vmas=true: not redundant even if the agent saw no mapping', () => {
    const b = new TraceBuilder('series');
    b.info(0, D);
    b.acquire(100, D).zap(110, D, { hadVmas: true }).revoke(120, D, true).revoke(200, D, false).release(300, D);
    expect(run(b).findings).toEqual([]);
  });

  it('a second zap of the same range in one episode with no fault between (any era)', () => {
    const b = started('6.12');
    b.acquire(100, D).zap(110, D, { durationNs: 5000 }).zap(150, D, { durationNs: 7000 }).release(300, D);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['REDUNDANT_ZAP/INFO']);
    expect(JSON.parse(r.findings[0]!.evidence).wastedNs).toBe(7000);
  });

  it('twin: a fault between the two zaps makes the second one needed', () => {
    const b = started('6.12');
    b.acquire(100, D).zap(110, D).fault(120, D, 7).zap(150, D).release(300, D);
    expect(run(b).findings).toEqual([]);
  });

  it('unknown mapping state emits none', () => {
    const b = new TraceBuilder('series');
    b.acquire(100, D).zap(110, D).revoke(120, D, true).revoke(200, D, false).release(300, D);
    expect(run(b).findings).toEqual([]);
  });

  it('pre-DMABUF host: the first zap is never redundant', () => {
    const b = new TraceBuilder('6.12');
    b.info(0, D, 'vfio-pci', true, true); // even if DeviceInfo claims DMABUF mmaps
    b.acquire(100, D).zap(110, D).release(300, D);
    expect(run(b).findings).toEqual([]);
  });
});

describe('UNPAIRED_REVOKE and UNREVOKE_WITHOUT_REVOKE', () => {
  it('a missing unrevoke after a reset with memory enabled', () => {
    const b = started('6.19');
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).zap(110, D).revoke(120, D, true).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['UNPAIRED_REVOKE/WARNING']);
  });

  it('twin: D3hot leaves memory disabled, staying revoked is correct; D0 then unrevokes', () => {
    const b = started('6.19');
    b.trigger(99, D, TriggerKind.D3HOT).acquire(100, D).zap(110, D).revoke(120, D, true).release(300, D);
    b.trigger(999, D, TriggerKind.D0).acquire(1000, D).revoke(1010, D, false).release(1100, D);
    expect(run(b).findings).toEqual([]);
  });

  it('twin: D0 without the unrevoke is unpaired', () => {
    const b = started('6.19');
    b.trigger(99, D, TriggerKind.D3HOT).acquire(100, D).zap(110, D).revoke(120, D, true).release(300, D);
    b.trigger(999, D, TriggerKind.D0).acquire(1000, D).release(1100, D);
    expect(kinds(run(b).findings)).toEqual(['UNPAIRED_REVOKE/WARNING']);
  });

  it('twin: PERMANENT_REVOKE stays revoked', () => {
    const b = started('series');
    b.trigger(99, D, TriggerKind.PERMANENT_REVOKE).acquire(100, D).revoke(120, D, true).release(300, D);
    expect(run(b).findings).toEqual([]);
  });

  it('an unrevoke while not revoked', () => {
    const b = started('7.1');
    b.trigger(99, D, TriggerKind.MEM_ENABLE).acquire(100, D).revoke(110, D, false).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['UNREVOKE_WITHOUT_REVOKE/WARNING']);
  });
});

describe('LOCK_NOT_HELD, LOCK_HELD_OPEN, SLOW_REVOKE', () => {
  it('a zap outside the lock on 6.11+ (the lock is known free: its release was seen)', () => {
    const b = started('6.12');
    b.acquire(50, D).release(60, D);
    b.zap(100, D, { tid: 777 });
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['LOCK_NOT_HELD/CRITICAL']);
    expect(r.findings[0]!.episodeId).toBe('');
    expect(JSON.parse(r.findings[0]!.evidence)).toMatchObject({ rule: 'lock_not_held', tid: 777, holderTid: null });
  });

  it('a zap by another task inside someone\'s write section is LOCK_NOT_HELD, not REDUNDANT_ZAP', () => {
    const b = started('6.12');
    b.acquire(50, D).zap(60, D).zap(70, D, { tid: 777 }).release(80, D);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['LOCK_NOT_HELD/CRITICAL']);
    expect(JSON.parse(r.findings[0]!.evidence)).toMatchObject({ tid: 777, holderTid: 100, holderEpisodeId: r.episodes[0]!.episodeId });
  });

  it('twin: the collector started inside a write section (lock state unknown): the zap and release are no finding', () => {
    const b = started('6.12');
    b.zap(100, D).release(200, D);
    b.acquire(300, D).zap(310, D).release(400, D);
    const r = run(b);
    expect(r.findings).toEqual([]);
    const [first, second] = [...r.episodes].sort((x, y) => x.releaseTsNs - y.releaseTsNs);
    expect(first).toMatchObject({ acquireTsNs: 0, releaseTsNs: us(200), complete: false, holdNs: 0, revokeNs: 0, zapCount: 1 });
    expect(second).toMatchObject({ acquireTsNs: us(300), complete: true });
  });

  it('a DMABUF revoke outside the lock', () => {
    const b = started('6.19');
    b.acquire(50, D).release(60, D);
    b.revoke(100, D, true);
    expect(kinds(run(b).findings)).toEqual(['LOCK_NOT_HELD/CRITICAL']);
  });

  it('twin: pre-6.11 zaps come before down_write by design and belong to the episode', () => {
    const b = correctReset(started('6.1'), 100, '6.1');
    const r = run(b);
    expect(r.findings).toEqual([]);
    expect(r.episodes[0]!.zapCount).toBe(1);
  });

  it('a stuck lock: held open past 5 s while the host keeps tracing', () => {
    const b = started('6.12');
    b.acquire(100, D);
    b.info(0, D2);
    for (let t = 0; t <= 8_000_000; t += 500_000) b.acquire(t + 10, D2).release(t + 20, D2);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['LOCK_HELD_OPEN/WARNING']);
    expect(r.findings[0]!.tsNs).toBe(us(100) + 5_000_000_000);
  });

  it('twin: held 4.9 s then released', () => {
    const b = started('6.12');
    b.acquire(100, D).release(4_900_100, D);
    for (let t = 0; t <= 8_000_000; t += 500_000) b.acquire(t + 10, D2).release(t + 20, D2);
    expect(run(b).findings).toEqual([]);
  });

  it('held open is judged at the end of input too', () => {
    const b = started('6.12');
    b.acquire(100, D).info(6_000_000, D2);
    expect(kinds(run(b).findings)).toEqual(['LOCK_HELD_OPEN/WARNING']);
  });

  it('twin: a lock taken shortly before the end of the trace is not held open', () => {
    const b = started('6.12');
    b.acquire(100, D).info(1_000_000, D2);
    expect(run(b).findings).toEqual([]);
  });

  it('a slow importer: revoke latency above 50 ms', () => {
    const b = started('6.19');
    b.acquire(100, D).zap(110, D).revoke(200, D, true, { durationNs: 60_000_000 }).move(210, D, 59_000_000);
    b.revoke(70_000, D, false).release(80_000, D);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['SLOW_REVOKE/WARNING']);
    expect(r.episodes[0]!.revokeNs).toBe(60_100_000);
  });

  it('twin: 40 ms is within the limit; the limit is an option', () => {
    const b = started('6.19');
    b.acquire(100, D).zap(110, D).revoke(200, D, true, { durationNs: 40_000_000 });
    b.revoke(70_000, D, false).release(80_000, D);
    expect(run(b).findings).toEqual([]);
    expect(kinds(run(b, { slowRevokeLimitNs: 10_000_000 }).findings)).toEqual(['SLOW_REVOKE/WARNING']);
  });
});

describe('loss, duplicates and order', () => {
  function lossy(): TraceBuilder {
    const b = started('6.12');
    b.trigger(99, D, TriggerKind.RESET).acquire(100, D).release(200, D); // zap lost → looks skipped
    b.acquire(10_000_000, D).zap(10_000_010, D).release(10_000_100, D); // far away: unaffected
    return b;
  }

  it('dropped > 0 makes touched episodes incomplete and their findings inconclusive', () => {
    const batches = lossy().batches(2);
    batches[1] = { ...batches[1]!, dropped: 3 }; // lost just before the batch holding acquire@100
    const r = analyzeBatches(batches);
    expect(r.stats.lostEvents).toBe(3);
    expect(r.episodes.map((e) => e.complete)).toEqual([false, true]);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL?']);
  });

  it('a seq gap is loss too; a replayed batch is a duplicate and changes nothing', () => {
    const batches = lossy().batches(2);
    const gapped = batches.map((b, i) => (i >= 1 ? { ...b, firstSeq: (b.firstSeq ?? 0) + 5 } : b));
    const r = analyzeBatches(gapped);
    expect(r.stats.lostEvents).toBe(5);
    expect(r.episodes[0]!.complete).toBe(false);
    const dup = analyzeBatches([batches[0]!, batches[1]!, batches[1]!, batches[0]!, ...batches.slice(2)]);
    expect(dup.stats.duplicateEvents).toBe(4);
    expect(dup.episodes).toEqual(analyzeBatches(batches).episodes);
  });

  it('invalid events: decoded batches count and skip them; their bytes are rejected whole by the wire reader', () => {
    const b = started('6.12');
    b.events.push({ tsNs: us(50), device: '' , lockAcquire: {} }, { tsNs: us(60), device: D });
    expect(analyzeBatches(b.batches()).stats.invalidEvents).toBe(2);
    expect(() => analyzeFrames(b.batches().map((x) => v1.EventBatch.encode(x).finish()))).toThrow(/events\[\d+\]\.device: missing/);
  });

  it('an event later than the lateness window counts as late loss', () => {
    const b = started('6.12');
    b.acquire(100, D).zap(110, D).release(200, D).acquire(5_000_000, D).release(5_000_100, D);
    const batches = b.batches(100);
    const evs = batches[0]!.events!;
    const late = evs.splice(2, 1); // acquire@100 arrives after ts 5 s
    const r = analyzeBatches([{ ...batches[0]!, events: evs }, { host: batches[0]!.host, firstSeq: evs.length, events: late }]);
    expect(r.stats.lateEvents).toBe(1);
  });

  it('streams: outputs appear once the watermark passes the release, not before', () => {
    const b = started('6.12');
    b.acquire(100, D).zap(110, D).release(200, D).acquire(3_000_000, D).release(3_000_100, D);
    const c = new Correlator();
    const [first, ...rest] = b.batches(4);
    c.ingest(first!);
    expect(c.takeEpisodes()).toHaveLength(0);
    for (const x of rest) c.ingest(x);
    expect(c.takeEpisodes()).toHaveLength(1); // watermark = 3.0001 s − 2 s passed release@200 µs
    c.finish();
    expect(c.takeEpisodes()).toHaveLength(1);
  });

  it('hosts and boots are separate keys', () => {
    const a = correctReset(started('6.12'), 100, '6.12');
    const b2 = new TraceBuilder('6.12', 'host-a', 'boot-2');
    b2.info(0, D).acquire(150, D).release(160, D);
    const r = analyzeBatches([...a.batches(), ...b2.batches()]);
    expect(new Set(r.episodes.map((e) => e.bootId))).toEqual(new Set(['boot-1', 'boot-2']));
    expect(r.findings).toEqual([]);
  });

  it('a zap of length 0 reaches to the end of the file (unmap_mapping_range holelen 0)', () => {
    const b = started('6.12');
    b.mmap(2, D, 8, { bar: 4, snapshot: true });
    b.acquire(100, D).zap(110, D, { start: 3 * 2 ** 40, length: 0 }).zap(120, D, { start: 0, length: 2 ** 40 }).release(200, D);
    expect(run(b).findings).toEqual([]);
  });

  it('zap coverage uses VFIO_PCI_OFFSET_SHIFT regions', () => {
    const b = started('6.12');
    b.mmap(2, D, 8, { bar: 5, snapshot: true });
    b.acquire(100, D).zap(110, D, { start: 0, length: ALL_BARS_LENGTH }).release(200, D);
    expect(run(b).findings).toEqual([]);
  });
});
