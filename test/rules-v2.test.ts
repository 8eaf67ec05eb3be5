// Rules v2 (docs/rules.md): every rule change as a hand-written trace and its negative twin. Each trace
// runs through decoded batches and their protobuf bytes, which must agree.
import { describe, expect, it } from 'vitest';
import { analyzeBatches, analyzeFrames } from '../services/core/analysis.js';
import { Correlator } from '../services/core/correlator/index.js';
import { MAX_MAPPINGS } from '../services/core/correlator/mapping.js';
import { MAX_EPISODE_ZAPS } from '../services/core/correlator/episode.js';
import { FindingKind, Severity, v1, type EventBatch, type Finding } from '../services/core/model.js';
import { Backing, TraceBuilder, TriggerKind, ZapTarget, us, type Era } from './support/trace-builder.js';

const D = '0000:3b:00.0';
const D2 = '0000:3b:00.1';
const EINVAL = -22;

const kinds = (fs: Finding[]) => fs.map((f) => `${FindingKind[f.kind]}/${Severity[f.severity]}${f.inconclusive ? '?' : ''}`).sort();
const evidence = (f: Finding) => JSON.parse(f.evidence) as Record<string, unknown>;

function run(b: TraceBuilder | EventBatch[], opts = {}) {
  const batches = Array.isArray(b) ? b : b.batches();
  const a = analyzeBatches(batches, opts);
  expect(analyzeFrames(batches.map((x) => v1.EventBatch.encode(x).finish()), opts)).toEqual(a);
  return a;
}

/** A device as a current collector announces it at start: DeviceInfo with its state, and a populated mapping. */
function started(era: Era, opts: { driver?: string; backing?: number; triggerEnd?: boolean; state?: object } = {}): TraceBuilder {
  const b = new TraceBuilder(era, 'host-a', 'boot-1', { triggerEnd: opts.triggerEnd ?? true });
  b.info(0, D, opts.driver ?? 'vfio-pci', undefined, era === 'series', opts.state as never);
  b.mmap(1, D, 7, { snapshot: true, backing: opts.backing ?? (era === 'series' ? Backing.DMABUF : Backing.LEGACY) });
  return b;
}

/** VFIO_DEVICE_RESET as 6.19–7.x do it: zap, revoke, reset, unrevoke (memory enabled), ioctl returns 0. */
function reset619(b: TraceBuilder, t: number, opts: { unrevoke?: boolean; tid?: number } = {}): TraceBuilder {
  const tid = opts.tid ?? 100;
  b.trigger(t, D, TriggerKind.RESET, tid).acquire(t + 2, D, tid).zap(t + 10, D, { tid }).revoke(t + 50, D, true, { tid });
  if (opts.unrevoke ?? true) b.revoke(t + 20_000, D, false, { tid });
  return b.release(t + 30_000, D, tid).triggerEnd(t + 30_010, D, TriggerKind.RESET, 0, tid);
}

describe('the collector started inside a write section', () => {
  it('a release and an unrevoke with no acquire are no finding: that episode began before observation', () => {
    // The agent read the device inside a reset's write section: its DMABUFs were revoked at that moment.
    const b = started('6.19', { state: { memoryEnabled: true, powerState: 0, revoked: true, openCount: 1, noCommandMemory: false } });
    b.revoke(100, D, false).release(110, D);
    const r = run(b);
    expect(r.findings).toEqual([]);
    expect(r.episodes).toHaveLength(1);
    expect(r.episodes[0]).toMatchObject({ acquireTsNs: 0, complete: false, holdNs: 0, lockWaitNs: 0 });
  });

  it('twin: once the lock is known free, a revoke by a task without it is LOCK_NOT_HELD', () => {
    const b = started('6.19');
    b.acquire(50, D).release(60, D).revoke(100, D, true);
    expect(kinds(run(b).findings)).toEqual(['LOCK_NOT_HELD/CRITICAL']);
  });

  it('loss makes the lock state unknown: a zap near it is inconclusive, one after it no finding', () => {
    const b = started('6.12');
    b.acquire(50, D).release(60, D).zap(3_000_000, D).zap(8_000_000, D);
    const batches = b.batches(2);
    batches[batches.length - 1]!.dropped = 3; // lost just before the two zaps
    const r = run(batches);
    expect(kinds(r.findings)).toEqual(['LOCK_NOT_HELD/CRITICAL?']);
    expect(r.findings[0]!.tsNs).toBe(us(3_000_000));
  });
});

describe('failed and early-returning ioctls (TriggerEnd)', () => {
  it('a reset that failed before taking the lock names no episode: the same task\'s next write section is no revoke', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).triggerEnd(105, D, TriggerKind.RESET, EINVAL);
    b.acquire(300, D).release(400, D); // the task's next config write (lock only)
    const r = run(b);
    expect(r.findings).toEqual([]);
    expect(r.episodes[0]).toMatchObject({ trigger: TriggerKind.TRIGGER_UNSPECIFIED, revoke: false });
  });

  it('twin: without the TriggerEnd the reset names that episode, and its missing zap is a certain SKIPPED_ZAP', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(300, D).release(400, D).triggerEnd(405, D, TriggerKind.RESET, 0);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
    expect(r.episodes[0]).toMatchObject({ trigger: TriggerKind.RESET, triggerRet: 0 });
    expect(evidence(r.findings[0]!)).toMatchObject({ rule: 'skipped_zap.unconditional_era', trigger: 'RESET' });
  });

  it('a collector without trigger returns (no TRIGGER_END): the same trace is only inconclusive', () => {
    const b = started('6.12', { triggerEnd: false });
    b.trigger(100, D, TriggerKind.RESET).acquire(300, D).release(400, D);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL?']);
    expect(String(evidence(r.findings[0]!).unknown)).toMatch(/TRIGGER_END/);
  });

  it('trigger_ret: the ioctl\'s return value after the release belongs to the episode', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(110, D).release(400, D).triggerEnd(401, D, TriggerKind.RESET, -11);
    expect(run(b).episodes[0]).toMatchObject({ trigger: TriggerKind.RESET, triggerRet: -11 });
  });

  it('a newer trigger of the same task replaces its waiting one (stale_triggers)', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_ENABLE).trigger(200, D, TriggerKind.MEM_DISABLE).acquire(210, D).zap(215, D).release(300, D);
    expect(run(b).episodes[0]).toMatchObject({ trigger: TriggerKind.MEM_DISABLE, staleTriggers: 1 });
  });

  it('the wait began within 1 s of the trigger: a long wait for a held lock still names the episode', () => {
    const b = started('6.12');
    b.acquire(0, D, 555).trigger(100, D, TriggerKind.RESET, 100).release(3_000_000, D, 555); // 3 s held by another task
    b.acquire(3_000_010, D, 100, 2_999_900_000).zap(3_000_020, D).release(3_000_100, D, 100);
    const r = run(b);
    expect(r.episodes.find((e) => e.acquireTsNs === us(3_000_010))).toMatchObject({ trigger: TriggerKind.RESET });
    expect(r.findings).toEqual([]);
  });
});

describe('another task\'s config write announced while the lock is held', () => {
  it('names that task\'s own next episode, never the holder\'s', () => {
    const b = started('6.12');
    b.trigger(90, D, TriggerKind.FLR, 100).acquire(100, D, 100).zap(105, D);
    b.trigger(110, D, TriggerKind.MEM_DISABLE, 555); // a vCPU's PCI_COMMAND write waits for the lock
    b.release(20_000, D, 100);
    b.acquire(20_010, D, 555).zap(20_020, D, { tid: 555 }).release(20_100, D, 555);
    const r = run(b);
    expect(r.findings).toEqual([]);
    const eps = [...r.episodes].sort((x, y) => x.acquireTsNs - y.acquireTsNs);
    expect(eps.map((e) => TriggerKind[e.trigger])).toEqual(['FLR', 'MEM_DISABLE']);
  });

  it('twin: the holder\'s own marker inside its window does name its episode', () => {
    const b = started('6.12');
    b.acquire(100, D, 100).trigger(110, D, TriggerKind.FLR, 100).release(20_000, D, 100);
    const r = run(b);
    expect(r.episodes[0]!.trigger).toBe(TriggerKind.FLR);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL']); // an FLR without its zap: the marker is a fact
  });
});

describe('memory state: unknown until a kernel fact sets it', () => {
  it('the agent started while the guest has memory off: DeviceInfo says so, and a refused fault is expected', () => {
    const b = started('6.12', { state: { memoryEnabled: false, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false } });
    b.fault(100, D, 7, 0, false);
    b.trigger(200, D, TriggerKind.MEM_ENABLE).acquire(210, D).release(300, D).triggerEnd(301, D, TriggerKind.MEM_ENABLE, 0);
    b.fault(400, D, 7);
    expect(run(b).findings).toEqual([]);
  });

  it('an ok fault while memory is known off is FAULT_WHILE_REVOKED (CRITICAL), outside any episode', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.fault(300, D, 7);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
    expect(r.findings[0]).toMatchObject({ tsNs: us(300), episodeId: '' });
    expect(evidence(r.findings[0]!)).toMatchObject({ rule: 'fault_while_revoked', backing: 'LEGACY', memoryEnabled: false });
  });

  it('twin: the refused fault (SIGBUS) is what the kernel must do, and after MEM_ENABLE the fault is fine', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.fault(300, D, 7, 0, false);
    b.trigger(400, D, TriggerKind.MEM_ENABLE).acquire(402, D).release(500, D).triggerEnd(501, D, TriggerKind.MEM_ENABLE, 0);
    b.fault(600, D, 7);
    expect(run(b).findings).toEqual([]);
  });

  // Found by the kernel lab (Debian 6.12, bpftrace): the agent's snapshot after the open's lock section read the
  // old vconfig while vfio_pci_core_enable() was still running; the workload's fault right after was fine.
  it('a DeviceInfo read while an open is in progress is no fact: the open sets memory afresh', () => {
    const off = { memoryEnabled: false, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false };
    const b = started('6.12', { state: off });
    b.trigger(100, D, TriggerKind.CLOSE).triggerEnd(110, D, TriggerKind.CLOSE, 0);
    b.trigger(1_000, D, TriggerKind.OPEN, 200).acquire(1_010, D, 200).release(1_020, D, 200);
    b.info(1_500, D, 'vfio-pci', undefined, false, off); // the agent's snapshot, mid-open
    b.triggerEnd(2_000, D, TriggerKind.OPEN, 0, 200).mmap(2_100, D, 9, {}).fault(2_200, D, 9);
    expect(run(b).findings).toEqual([]);
  });

  it('twin: the same DeviceInfo read after the open returned is a fact, and the fault is FAULT_WHILE_REVOKED', () => {
    const off = { memoryEnabled: false, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false };
    const b = started('6.12', { state: off });
    b.trigger(100, D, TriggerKind.CLOSE).triggerEnd(110, D, TriggerKind.CLOSE, 0);
    b.trigger(1_000, D, TriggerKind.OPEN, 200).acquire(1_010, D, 200).release(1_020, D, 200);
    b.triggerEnd(1_400, D, TriggerKind.OPEN, 0, 200);
    b.info(1_500, D, 'vfio-pci', undefined, false, off);
    b.mmap(2_100, D, 9, {}).fault(2_200, D, 9);
    expect(kinds(run(b).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
  });

  it('a close, then an open a collector did not announce: memory is unknown, never the value from before the close', () => {
    const off = { memoryEnabled: false, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false };
    const b = started('6.12', { state: off });
    b.trigger(100, D, TriggerKind.CLOSE).triggerEnd(110, D, TriggerKind.CLOSE, 0);
    b.mmap(5_000, D, 9, {}).fault(5_100, D, 9);
    const r = run(b);
    expect(r.findings).toEqual([]);
  });

  // Found by the kernel lab (Debian 7.3, bpftrace): a snapshot read during an FLR's unrevoke (a slow importer's
  // move_notify) said revoked; the unrevoke then completed under the lock.
  it('a DeviceInfo read while another task holds memory_lock is no fact: the holder\'s events say what changed', () => {
    const b = started('6.19');
    b.trigger(100, D, TriggerKind.FLR).acquire(102, D).zap(110, D).revoke(150, D, true).revoke(10_000, D, false, { durationNs: 90_000 });
    b.info(50_000, D, 'vfio-pci', undefined, false, { memoryEnabled: true, powerState: 0, revoked: true, openCount: 1, noCommandMemory: false });
    b.release(100_000, D).triggerEnd(100_010, D, TriggerKind.FLR, 0);
    expect(run(b).findings).toEqual([]);
  });

  it('twin: read after the release, revoked with memory enabled on an open device is a fact (UNPAIRED_REVOKE is made by the episode only)', () => {
    const b = started('6.19');
    b.trigger(100, D, TriggerKind.FLR).acquire(102, D).zap(110, D).revoke(150, D, true);
    b.release(100_000, D).triggerEnd(100_010, D, TriggerKind.FLR, 0);
    expect(kinds(run(b).findings)).toEqual(['UNPAIRED_REVOKE/WARNING']);
  });

  it('a VF (no_command_memory): clearing the memory bit leaves memory enabled, faults are fine', () => {
    const b = started('6.12', { state: { memoryEnabled: true, powerState: 0, revoked: false, openCount: 1, noCommandMemory: true } });
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.fault(300, D, 7);
    expect(run(b).findings).toEqual([]);
  });

  it('an older collector that does not read no_command_memory: the same fault is only inconclusive', () => {
    const b = started('6.12', { state: { memoryEnabled: true, powerState: 0, revoked: false, openCount: 1 } });
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.fault(300, D, 7);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL?']);
    expect(String(evidence(r.findings[0]!).unknown)).toMatch(/no_command_memory/);
  });

  it('a fault on a revoked DMABUF mapping (series) is FAULT_WHILE_REVOKED', () => {
    const b = started('series');
    b.trigger(100, D, TriggerKind.D3HOT).acquire(102, D).revoke(105, D, true).release(200, D).triggerEnd(201, D, TriggerKind.D3HOT, 0);
    b.fault(300, D, 7);
    expect(kinds(run(b).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
  });

  it('loss long before the fault: what was known is forgotten and takes the defaults (memory on): no finding', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.acquire(10_000_000, D, 300).release(10_000_100, D, 300);
    b.fault(20_000_000, D, 7);
    const batches = b.batches(1);
    batches[batches.length - 3]!.dropped = 5; // lost before the 10 s write section, 10 s before the fault
    expect(kinds(run(batches).findings)).toEqual([]);
    expect(kinds(run(b.batches(1)).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']); // twin: no loss
  });

  it('a DMABUF exported after the revoke, with memory enabled again, is not revoked: its fault is fine (series)', () => {
    const b = started('series');
    b.trigger(100, D, TriggerKind.PERMANENT_REVOKE).acquire(102, D).revoke(105, D, true).release(200, D)
      .triggerEnd(201, D, TriggerKind.PERMANENT_REVOKE, 0);
    b.fault(250, D, 7, 0, false); // the old mapping's DMABUF is revoked: refused, as it must be
    // vfio_pci_dmabuf_export(): priv->revoked = !__vfio_pci_memory_enabled(vdev), and memory is enabled (a fact).
    b.mmap(300, D, 8, { backing: Backing.DMABUF }).fault(400, D, 8);
    expect(kinds(run(b).findings)).toEqual([]);
    // twin: the old mapping's DMABUF faulting is the hazard
    b.fault(500, D, 7);
    expect(kinds(run(b).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
  });

  it('a DMABUF mapping in the start snapshot has an unknown state until the DMABUFs move: no finding on its fault', () => {
    const b = started('series', { state: { memoryEnabled: true, powerState: 0, revoked: true, openCount: 1, noCommandMemory: false } });
    b.fault(300, D, 7);
    expect(kinds(run(b).findings)).toEqual([]);
    // twin: once a revoke moved every DMABUF of the device, the same fault is certain
    b.trigger(400, D, TriggerKind.D3HOT).acquire(402, D).revoke(405, D, true).release(500, D).triggerEnd(501, D, TriggerKind.D3HOT, 0);
    b.fault(600, D, 7);
    expect(kinds(run(b).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
  });

  it('the first write section seen names no trigger: what facts said of memory no longer stands', () => {
    // Memory known off at start (DeviceInfo), then a write section whose path is unknown (it may be a COMMAND write
    // that turned memory on, announced before the collector started): a fault after it cannot be proven a hazard.
    const b = started('6.12', { state: { memoryEnabled: false, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false } });
    b.acquire(100, D).release(200, D).fault(300, D, 7);
    const r = run(b);
    expect(kinds(r.findings)).toEqual([]);
    // twin: once a write section with a trigger was seen, a later untriggered one is no first: memory stays off
    const t = started('6.12', { state: { memoryEnabled: false, powerState: 0, revoked: false, openCount: 1, noCommandMemory: false } });
    t.trigger(40, D, TriggerKind.MEM_DISABLE).acquire(50, D).zap(52, D).release(60, D).triggerEnd(61, D, TriggerKind.MEM_DISABLE, 0);
    t.acquire(100, D).release(200, D).fault(300, D, 7);
    expect(kinds(run(t).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
  });

  it('PowerTransition is a kernel fact: D3hot inside a write section turns memory off', () => {
    const b = started('6.12');
    b.acquire(100, D).zap(105, D).power(110, D, 0, 3).release(200, D); // no trigger seen, the marker suffices
    b.fault(300, D, 7);
    expect(kinds(run(b).findings)).toEqual(['FAULT_WHILE_REVOKED/CRITICAL']);
  });
});

describe('SKIPPED_ZAP before 6.11 (vfio_pci_zap_and_vma_lock() zaps only vma_list)', () => {
  it('a snapshot mapping no zap reached is populated only by assumption: inconclusive', () => {
    const b = started('6.1');
    b.acquire(100, D).release(200, D); // lock known free from here
    b.trigger(1000, D, TriggerKind.RESET).zap(1001, D, { start: 1 * 2 ** 40, length: 2 ** 40 }).acquire(1002, D)
      .release(2000, D).triggerEnd(2001, D, TriggerKind.RESET, 0);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL?']);
    expect(String(evidence(r.findings[0]!).unknown)).toMatch(/assumed from the start snapshot/);
  });

  it('twin: after a fault puts it on vma_list, the same skipped zap is certain', () => {
    const b = started('6.1');
    b.acquire(100, D).release(200, D).fault(300, D, 7);
    b.trigger(1000, D, TriggerKind.RESET).zap(1001, D, { start: 1 * 2 ** 40, length: 2 ** 40 }).acquire(1002, D)
      .release(2000, D).triggerEnd(2001, D, TriggerKind.RESET, 0);
    expect(kinds(run(b).findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
  });
});

describe('a mapping list past MAX_MAPPINGS (mmaps without munmaps: bounded work per event)', () => {
  const skipped = (extraMaps: number) => {
    const b = started('6.1');
    b.acquire(100, D).release(200, D).fault(300, D, 7);
    for (let i = 0; i < extraMaps; i++) b.mmap(400 + i, D, 1000 + i, { bar: 0 });
    const t = 400 + extraMaps + 1000;
    b.trigger(t, D, TriggerKind.RESET).acquire(t + 2, D).release(t + 1000, D).triggerEnd(t + 1001, D, TriggerKind.RESET, 0);
    return run(b).findings;
  };

  it('is dropped and unknown: a reset without zaps, certain while the list was known, is inconclusive, saying why', () => {
    expect(kinds(skipped(MAX_MAPPINGS - 1))).toEqual(['SKIPPED_ZAP/CRITICAL']); // the snapshot's mapping 7 + 1023 more: kept
    const f = skipped(MAX_MAPPINGS + 5);
    expect(kinds(f)).toEqual(['SKIPPED_ZAP/WARNING?']);
    expect(String(evidence(f[0]!).unknown)).toMatch(/more than 1024 live mappings of the device, the list was dropped/);
  });
});

describe('an episode with more zaps than it keeps (MAX_EPISODE_ZAPS)', () => {
  /** A reset whose task zaps BAR 1 in 164 pieces (and BAR 0 if `zapBar0`), acquiring at `acquireAt` (pre-6.11: zaps
   * before down_write wait for it; zaps after it go to the episode directly). */
  const reset = (zapBar0: boolean, acquireAt: number) => {
    const b = started('6.1');
    b.acquire(100, D).release(200, D).fault(300, D, 7); // mapping 7: BAR 0, populated, on vma_list
    b.trigger(1000, D, TriggerKind.RESET);
    if (acquireAt < 1001) b.acquire(acquireAt, D);
    for (let i = 0; i < MAX_EPISODE_ZAPS + 100; i++) b.zap(1001 + i, D, { start: 2 ** 40 + i * 4096, length: 4096 }); // BAR 1 pieces
    if (acquireAt >= 1001 && acquireAt < 1500) b.acquire(acquireAt, D);
    if (zapBar0) b.zap(1500, D, { start: 0, length: 2 ** 40 }); // past the kept ones: still counts for coverage
    if (acquireAt >= 1500) b.acquire(acquireAt, D);
    b.release(2000, D).triggerEnd(2001, D, TriggerKind.RESET, 0);
    return run(b);
  };
  it('every zap counts for coverage: the BAR 0 zap after the kept ones covers mapping 7', () => {
    const r = reset(true, 1000);
    expect(kinds(r.findings)).toEqual([]);
    expect(r.episodes.find((e) => e.zapCount > 0)!.zapCount).toBe(MAX_EPISODE_ZAPS + 101);
  });
  it('twin: without it, SKIPPED_ZAP', () => {
    expect(kinds(reset(false, 1000).findings)).toEqual(['SKIPPED_ZAP/CRITICAL']);
  });
  it('pre-6.11, more zaps waiting for down_write than are kept: a SKIPPED_ZAP is inconclusive, never certain', () => {
    const r = reset(false, 1600); // the zaps come before the acquire: they wait, 64 are kept
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/CRITICAL?']);
    expect(String(evidence(r.findings[0]!).unknown)).toMatch(/zaps waited for down_write at once, some were not kept/);
  });
});

describe('UNPAIRED_REVOKE', () => {
  it('a reset from D3hot that forgets the unrevoke (VFIO_DEVICE_RESET puts the device in D0 first)', () => {
    const b = started('6.19');
    b.trigger(100, D, TriggerKind.D3HOT).acquire(102, D).zap(105, D).revoke(110, D, true).release(200, D).triggerEnd(201, D, TriggerKind.D3HOT, 0);
    reset619(b, 1000, { unrevoke: false });
    const r = run(b);
    // The reset's zap walks a tree emptied at D3hot entry, with faults refused since: wasted (INFO).
    expect(kinds(r.findings)).toEqual(['REDUNDANT_ZAP/INFO', 'UNPAIRED_REVOKE/WARNING']);
    const unpaired = r.findings.find((f) => f.kind === FindingKind.UNPAIRED_REVOKE)!;
    expect(unpaired.episodeId).toBe(r.episodes.find((e) => e.trigger === TriggerKind.RESET)!.episodeId);
  });

  it('twin: the same reset with its unrevoke is correct (only its wasted zap is noted)', () => {
    const b = started('6.19');
    b.trigger(100, D, TriggerKind.D3HOT).acquire(102, D).zap(105, D).revoke(110, D, true).release(200, D).triggerEnd(201, D, TriggerKind.D3HOT, 0);
    reset619(b, 1000);
    expect(kinds(run(b).findings)).toEqual(['REDUNDANT_ZAP/INFO']);
  });

  it('one missing unrevoke is reported once, not again on later lock-only write sections', () => {
    const b = started('6.19');
    reset619(b, 100, { unrevoke: false });
    for (let i = 0; i < 3; i++) b.acquire(100_000 + i * 1000, D, 300).release(100_100 + i * 1000, D, 300);
    expect(kinds(run(b).findings)).toEqual(['UNPAIRED_REVOKE/WARNING']);
  });

  it('an unopened hot-reset sibling (nothing read of it): at most inconclusive', () => {
    const b = started('6.19');
    // D2 was never opened and the collector knows nothing of it; the hot reset takes its lock too.
    b.trigger(100, D, TriggerKind.HOT_RESET, 100, 7).acquire(102, D).zap(103, D).revoke(104, D, true);
    b.acquire(110, D2).zap(111, D2).revoke(112, D2, true, { count: 0 });
    b.revoke(200_000, D, false).release(200_010, D).release(200_020, D2).triggerEnd(200_030, D, TriggerKind.HOT_RESET, 0);
    const r = run(b);
    expect(r.findings.every((f) => f.inconclusive)).toBe(true);
    const sib = r.episodes.find((e) => e.device === D2)!;
    expect(sib).toMatchObject({ trigger: TriggerKind.HOT_RESET, groupId: 7 }); // by task: no trigger of its own
  });

  it('twin: an opened, described sibling that stays revoked with memory enabled is certain', () => {
    const b = started('6.19');
    b.info(0, D2).mmap(1, D2, 9, { snapshot: true });
    b.trigger(100, D, TriggerKind.HOT_RESET, 100, 7).acquire(102, D).zap(103, D).revoke(104, D, true);
    b.acquire(110, D2).zap(111, D2).revoke(112, D2, true);
    b.revoke(200_000, D, false).release(200_010, D).release(200_020, D2).triggerEnd(200_030, D, TriggerKind.HOT_RESET, 0);
    expect(kinds(run(b).findings)).toEqual(['UNPAIRED_REVOKE/WARNING']);
  });

  it('a PERMANENT_REVOKE stays revoked and does not make later episodes unpaired', () => {
    const b = started('series');
    b.trigger(100, D, TriggerKind.PERMANENT_REVOKE).acquire(102, D).revoke(110, D, true).release(200, D)
      .triggerEnd(201, D, TriggerKind.PERMANENT_REVOKE, 0);
    b.trigger(1000, D, TriggerKind.RESET).acquire(1002, D).revoke(1010, D, true, { count: 0 }).release(2000, D).triggerEnd(2001, D, TriggerKind.RESET, 0);
    expect(run(b).findings).toEqual([]);
  });

  it('an older DeviceInfo (no state fields): a missing unrevoke is only inconclusive', () => {
    const b = started('6.19', { state: {} });
    reset619(b, 100, { unrevoke: false });
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['UNPAIRED_REVOKE/WARNING?']);
    expect(String(evidence(r.findings[0]!).unknown)).toMatch(/DMABUF revoke state|open state|memory bit/);
  });
});

describe('UNREVOKE_WITHOUT_REVOKE', () => {
  it('an unrevoke that moved DMABUFs while the device was known not revoked', () => {
    const b = started('7.1');
    b.trigger(100, D, TriggerKind.MEM_ENABLE).acquire(102, D).revoke(110, D, false, { count: 2 }).release(300, D);
    expect(kinds(run(b).findings)).toEqual(['UNREVOKE_WITHOUT_REVOKE/WARNING']);
  });

  it('twin: the kernel calls vfio_pci_dma_buf_move(vdev, false) on every PCI_COMMAND write; with nothing to move it is a no-op', () => {
    const b = started('7.1');
    b.trigger(100, D, TriggerKind.MEM_ENABLE).acquire(102, D).revoke(110, D, false, { count: 0 }).release(300, D);
    expect(run(b).findings).toEqual([]);
  });
});

describe('REDUNDANT_ZAP', () => {
  it('the real second memory-off zap: a PCI_COMMAND write with memory still off zaps again', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.trigger(300, D, TriggerKind.MEM_DISABLE).acquire(302, D).zap(305, D, { durationNs: 9000 }).release(400, D).triggerEnd(401, D, TriggerKind.MEM_DISABLE, 0);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['REDUNDANT_ZAP/INFO']);
    expect(evidence(r.findings[0]!)).toMatchObject({ rule: 'redundant_zap.memory_still_off', wastedNs: 9000 });
    expect(r.findings[0]!.tsNs).toBe(us(305));
  });

  it('twin: memory enabled in between (and a fault installs PTEs): the second zap is needed', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.MEM_DISABLE).acquire(102, D).zap(105, D).release(200, D).triggerEnd(201, D, TriggerKind.MEM_DISABLE, 0);
    b.trigger(250, D, TriggerKind.MEM_ENABLE).acquire(252, D).release(260, D).triggerEnd(261, D, TriggerKind.MEM_ENABLE, 0);
    b.fault(270, D, 7);
    b.trigger(300, D, TriggerKind.MEM_DISABLE).acquire(302, D).zap(305, D).release(400, D).triggerEnd(401, D, TriggerKind.MEM_DISABLE, 0);
    expect(run(b).findings).toEqual([]);
  });

  it('nvgrace-gpu zaps its unmapped custom BARs by design: no finding, counted as an intended empty zap', () => {
    const b = new TraceBuilder('series');
    b.info(0, D, 'nvgrace-gpu', true).mmap(1, D, 7, { snapshot: true, backing: Backing.DMABUF });
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D).revoke(110, D, true).zap(112, D, { target: ZapTarget.DMABUF })
      .revoke(20_000, D, false).release(30_000, D).triggerEnd(30_001, D, TriggerKind.RESET, 0);
    const r = run(b);
    expect(r.findings).toEqual([]);
    expect(r.episodes[0]!.intendedEmptyZaps).toBe(1);
  });

  it('twin: a driver without custom-vm_ops BARs that zaps with nothing but DMABUF mappings should opt out', () => {
    const b = new TraceBuilder('series');
    b.info(0, D, 'hisi_acc_vfio_pci', true).mmap(1, D, 7, { snapshot: true, backing: Backing.DMABUF });
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D).revoke(110, D, true)
      .revoke(20_000, D, false).release(30_000, D).triggerEnd(30_001, D, TriggerKind.RESET, 0);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['REDUNDANT_ZAP/INFO']);
    expect(r.episodes[0]!.intendedEmptyZaps).toBe(0);
  });
});

describe('SKIPPED_ZAP on 6.11–6.18: every revoking path zaps unconditionally', () => {
  it('a D3hot path that omits its zap with nothing mapped is SKIPPED_ZAP WARNING', () => {
    const b = new TraceBuilder('6.12');
    b.info(0, D); // described, nothing mapped
    b.trigger(100, D, TriggerKind.D3HOT).acquire(102, D).power(110, D, 0, 3).release(200, D).triggerEnd(201, D, TriggerKind.D3HOT, 0);
    const r = run(b);
    expect(kinds(r.findings)).toEqual(['SKIPPED_ZAP/WARNING']);
    expect(evidence(r.findings[0]!)).toMatchObject({ rule: 'skipped_zap.unconditional_era', populatedMapping: false });
  });

  it('twin: with its zap it is correct', () => {
    const b = new TraceBuilder('6.12');
    b.info(0, D);
    b.trigger(100, D, TriggerKind.D3HOT).acquire(102, D).zap(105, D).power(110, D, 0, 3).release(200, D).triggerEnd(201, D, TriggerKind.D3HOT, 0);
    expect(run(b).findings).toEqual([]);
  });

  it('a close cleanup revokes DMABUFs without a zap by design (6.19+): no finding; mappings of the device file are gone', () => {
    const b = started('6.19');
    b.trigger(100, D, TriggerKind.CLOSE).acquire(102, D).revoke(105, D, true).release(200, D);
    b.trigger(300, D, TriggerKind.OPEN).mmap(310, D, 8);
    b.fault(320, D, 8);
    reset619(b, 400);
    const r = run(b);
    expect(r.findings).toEqual([]);
  });
});

describe('LOCK_HELD_OPEN on a quiet host', () => {
  it('heartbeats (now_ns) advance host time: a hung reset is found while the host sends no events', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D);
    const c = new Correlator();
    for (const batch of b.batches(64, { heartbeatUntil: 9_000_000 })) c.ingest(batch); // no finish(): a live stream
    const found = c.takeFindings();
    expect(kinds(found)).toEqual(['LOCK_HELD_OPEN/WARNING']);
    expect(found[0]!.tsNs).toBe(us(102) + 5e9);
  });

  it('twin: without heartbeats a live stream cannot know that time passed', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D);
    const c = new Correlator();
    for (const batch of b.batches(64)) c.ingest(batch);
    expect(c.takeFindings()).toEqual([]);
  });

  it('at the end of a finite input the open episode is judged at the last heartbeat and listed as open', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D);
    const c = new Correlator();
    for (const batch of b.batches(64, { heartbeatUntil: 7_000_000 })) c.ingest(batch);
    c.finish();
    expect(kinds(c.takeFindings())).toEqual(['LOCK_HELD_OPEN/WARNING']);
    expect(c.openLocks()).toEqual([expect.objectContaining({ device: D, acquireTsNs: us(102), tid: 100, trigger: TriggerKind.RESET })]);
  });
});

describe('a collector reading behind its clock', () => {
  // Two batches in order, each cut 6 s after its newest event (the kernel lab's ftrace collector under load, 6.12): the
  // clock of a batch that lags its own events does not move the window, so the next batch's events are not late.
  const split = (): EventBatch[] => {
    const b = started('6.12');
    b.trigger(1_000_000, D, TriggerKind.MEM_DISABLE).acquire(1_000_002, D).zap(1_000_005, D).release(1_000_100, D)
      .triggerEnd(1_000_101, D, TriggerKind.MEM_DISABLE, 0);
    b.trigger(3_500_000, D, TriggerKind.MEM_ENABLE).acquire(3_500_002, D).release(3_500_100, D).triggerEnd(3_500_101, D, TriggerKind.MEM_ENABLE, 0);
    const [all] = b.batches(1000) as [EventBatch];
    const evs = all.events!, k = evs.findIndex((e) => (e.tsNs ?? 0) > us(2_000_000));
    return [{ ...all, events: evs.slice(0, k), nowNs: us(1_000_101) + 6e9 },
      { ...all, firstSeq: k, events: evs.slice(k), nowNs: us(3_500_101) + 6e9 }];
  };

  it('loses nothing: both episodes, no late events', () => {
    const r = run(split());
    expect(r.stats.lateEvents).toBe(0);
    expect(r.episodes.map((e) => TriggerKind[e.trigger])).toEqual(['MEM_DISABLE', 'MEM_ENABLE']);
    expect(r.episodes.every((e) => e.complete)).toBe(true);
  });

  it('twin: a heartbeat (no events) still moves the window with its clock, so a late event is late', () => {
    const [first, second] = split() as [EventBatch, EventBatch];
    const heartbeat: EventBatch = { host: first.host, firstSeq: second.firstSeq, dropped: 0, events: [], nowNs: us(1_000_101) + 6e9 };
    const r = run([first, heartbeat, second]);
    expect(r.stats.lateEvents).toBe(second.events!.length);
    expect(r.episodes.map((e) => TriggerKind[e.trigger])).toEqual(['MEM_DISABLE']);
  });
});

describe('evidence', () => {
  it('is a JSON object naming the rule and the kernel function it mirrors', () => {
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).release(400, D).triggerEnd(401, D, TriggerKind.RESET, 0);
    const ev = evidence(run(b).findings[0]!);
    expect(ev).toMatchObject({ rule: 'skipped_zap.unconditional_era', trigger: 'RESET' });
    expect(String(ev.mirrors)).toMatch(/vfio_pci_zap_bars/);
    expect(ev.unknown).toBeUndefined();
  });

  it('episodes carry the acquiring task', () => {
    const b = started('6.12');
    b.acquire(100, D, 4242).release(200, D, 4242);
    expect(run(b).episodes[0]).toMatchObject({ pid: 4242, comm: 'qemu' });
  });
});

describe('analyze lists what is still open', () => {
  it('the summary names each episode still holding memory_lock at the end of the input', async () => {
    const { summarize, openLockSummaries } = await import('../services/report/index.js');
    const b = started('6.12');
    b.trigger(100, D, TriggerKind.RESET).acquire(102, D).zap(105, D);
    const c = new Correlator();
    for (const batch of b.batches(64, { heartbeatUntil: 3_000_000 })) c.ingest(batch);
    c.finish();
    const s = summarize(c.takeEpisodes(), c.takeFindings());
    const withOpen = { ...s, openLocks: openLockSummaries(c.openLocks()) };
    expect(withOpen.openLocks).toEqual([expect.objectContaining({ device: D, trigger: 'RESET', tid: 100, comm: 'qemu' })]);
    expect(withOpen.openLocks[0]!.heldNs).toBe(us(2_000_105) - us(102)); // to the last heartbeat
  });
});
