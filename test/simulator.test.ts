// Fleet simulator: determinism, coverage of eras/drivers/workloads, kernel protocol invariants per era,
// fault injection bookkeeping, batching (seq numbering, loss) and streaming.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DRIVER_NAMES, ERA_NAMES, FAULT_NAMES, FleetSimulator, simulate, simulateFleet, type FleetTruth,
} from '../collectors/simulator/index.js';
import {
  Backing, Capability, TriggerKind, ZapTarget, bodyOf, v1, type Event, type EventBatch,
} from '../services/core/model.js';

const S = 1_000_000_000;

function hostKey(b: EventBatch): string { return `${b.host!.hostname}|${b.host!.bootId}`; }

function eventsByHost(batches: EventBatch[]): Map<string, Event[]> {
  const m = new Map<string, Event[]>();
  for (const b of batches) {
    const k = hostKey(b);
    let l = m.get(k); if (!l) m.set(k, (l = []));
    for (const e of b.events!) l.push(e);
  }
  return m;
}

function byDevice(evs: Event[]): Map<string, Event[]> {
  const m = new Map<string, Event[]>();
  for (const e of evs) { let l = m.get(e.device!); if (!l) m.set(e.device!, (l = [])); l.push(e); }
  for (const l of m.values()) l.sort((a, b) => a.tsNs! - b.tsNs!);
  return m;
}

describe('simulator: determinism', () => {
  it('same seed gives identical batches and truth; another seed differs', () => {
    const a = simulate({ hosts: 8, durationNs: 15 * S, seed: 42 });
    const b = simulate({ hosts: 8, durationNs: 15 * S, seed: 42 });
    expect(b.batches).toEqual(a.batches);
    expect(b.truth).toEqual(a.truth);
    const c = simulate({ hosts: 8, durationNs: 15 * S, seed: 43 });
    expect(c.batches).not.toEqual(a.batches);
  });

  it('the streaming generator yields exactly what simulate() collects, and returns the truth', () => {
    const opts = { hosts: 6, durationNs: 12 * S, seed: 7 };
    const it = simulateFleet(opts);
    const streamed: EventBatch[] = [];
    let r = it.next();
    while (!r.done) { streamed.push(r.value); r = it.next(); }
    const whole = simulate(opts);
    expect(streamed).toEqual(whole.batches);
    expect(r.value).toEqual(whole.truth);
  });

  it('rejects bad options with a clear message', () => {
    expect(() => simulate({ hosts: 0, durationNs: S, seed: 1 })).toThrow(/hosts/);
    expect(() => simulate({ hosts: 1, durationNs: -1, seed: 1 })).toThrow(/durationNs/);
    expect(() => simulate({ hosts: 1, durationNs: S, seed: 1, devicesPerHost: [3, 2] })).toThrow(/devicesPerHost/);
  });
});

describe('simulator: a 50-host fleet', () => {
  let batches: EventBatch[];
  let truth: FleetTruth;
  let ms = 0;
  beforeAll(() => {
    const t = performance.now();
    ({ batches, truth } = simulate({ hosts: 50, durationNs: 60 * S, seed: 1 }));
    ms = performance.now() - t;
    console.log(`simulator: 50 hosts x 60 s -> ${truth.stats.events} events, ${truth.stats.batches} batches, ` +
      `${truth.stats.episodes} episodes in ${ms.toFixed(0)} ms`);
  });

  it('mixes every kernel era with realistic releases and era capabilities', () => {
    expect(new Set(truth.hosts.map((h) => h.era))).toEqual(new Set(ERA_NAMES));
    const release: Record<string, RegExp> = {
      'pre-6.11': /^6\.1\.\d+-\d+-(cloud-)?(amd64|arm64)$/, '6.12': /^6\.12\.\d+\+deb13-(amd64|arm64)$/,
      '6.19': /^6\.19\.\d+-\d+-(amd64|arm64)$/, '7.1': /^7\.1\.\d+-\d+-(amd64|arm64)$/, series: /^7\.2\.0-rc\d+\+vfio-dmabuf-mmap$/,
    };
    for (const h of truth.hosts) {
      expect(h.kernelRelease).toMatch(release[h.era]!);
      const dmabuf = h.era === '6.19' || h.era === '7.1' || h.era === 'series';
      expect(h.capabilities.includes('DMABUF_REVOKE')).toBe(dmabuf);
      expect(h.capabilities.includes('MOVE_NOTIFY')).toBe(dmabuf);
      for (const c of ['LOCK', 'ZAP', 'BAR_MMAP', 'BAR_FAULT', 'TRIGGER', 'DEVICE_INFO']) expect(h.capabilities).toContain(c);
    }
    // Both probe profiles (with and without i_mmap reads) on every era.
    for (const era of ERA_NAMES) expect(new Set(truth.hosts.filter((h) => h.era === era).map((h) => h.readsVmas))).toEqual(new Set([true, false]));
  });

  it('covers every driver, trigger and event kind', () => {
    for (const d of DRIVER_NAMES) expect(truth.stats.episodesByDriver[d] ?? 0).toBeGreaterThan(10);
    for (const era of ERA_NAMES) expect(truth.stats.episodesByEra[era] ?? 0).toBeGreaterThan(100);
    const kinds = Object.keys(TriggerKind).filter((k) => Number.isNaN(Number(k)) && k !== 'TRIGGER_UNSPECIFIED');
    for (const k of kinds) expect(truth.stats.triggers[k] ?? 0, k).toBeGreaterThan(0);
    const bodies = new Set<string>();
    let groups = 0;
    for (const b of batches) for (const e of b.events!) {
      bodies.add(bodyOf(e)!);
      if (e.trigger?.kind === TriggerKind.HOT_RESET && e.trigger.groupId) groups++;
    }
    expect([...bodies].sort()).toEqual(['barFault', 'barMmap', 'barMunmap', 'deviceInfo', 'dmabufRevoke', 'lockAcquire',
      'lockRelease', 'moveNotify', 'trigger', 'zap']);
    expect(groups).toBeGreaterThan(0);
  });

  it('describes every device at collector start except the unknown-device fault', () => {
    for (const [k, evs] of eventsByHost(batches)) {
      const host = truth.hosts.find((h) => `${h.hostname}|${h.bootId}` === k)!;
      const devs = byDevice(evs);
      for (const d of host.devices) {
        const first = devs.get(d.device)?.[0];
        if (d.known) {
          expect(first?.deviceInfo, `${k} ${d.device}`).toBeTruthy();
          expect(first!.deviceInfo!.dmabufBarMmap).toBe(host.era === 'series');
          expect(first!.deviceInfo!.driver).toBe(d.driver);
        } else {
          expect(d.scenario).toMatch(/^unknown_device#/);
          expect(devs.get(d.device)!.some((e) => e.deviceInfo || e.barMmap?.snapshot)).toBe(false);
        }
      }
    }
  });

  it('backs BAR mmaps by era and driver', () => {
    for (const [k, evs] of eventsByHost(batches)) {
      const host = truth.hosts.find((h) => `${h.hostname}|${h.bootId}` === k)!;
      for (const e of evs) {
        if (!e.barMmap) continue;
        const drv = host.devices.find((d) => d.device === e.device)!.driver;
        if (drv === 'nvgrace-gpu' && e.barMmap.bar !== 0) expect(e.barMmap.backing).toBe(Backing.CUSTOM_VM_OPS);
        else expect(e.barMmap.backing).toBe(host.era === 'series' ? Backing.DMABUF : Backing.LEGACY);
      }
    }
  });

  it('follows the kernel protocol of each era', () => {
    const bad: string[] = [];
    const check = (ok: boolean, what: string) => { if (!ok && bad.length < 20) bad.push(what); };
    for (const [k, evs] of eventsByHost(batches)) {
      const host = truth.hosts.find((h) => `${h.hostname}|${h.bootId}` === k)!;
      const devInfo = new Map(host.devices.map((d) => [d.device, d]));
      for (const [dev, list] of byDevice(evs)) {
        const d = devInfo.get(dev)!;
        const where = `${k} ${dev} (${host.era} ${d.driver})`;
        // Per device the protocol is strictly ordered in time: no two events share a ts.
        for (let i = 1; i < list.length; i++) check(list[i]!.tsNs! > list[i - 1]!.tsNs!, `${where}: equal ts`);
        let held = false;
        let lockTid = -1;
        for (const e of list) {
          if (e.lockAcquire) { check(!held, `${where}: double acquire`); held = true; lockTid = e.tid!; continue; }
          if (e.lockRelease) { check(held && e.tid === lockTid, `${where}: release without acquire`); held = false; continue; }
          if (e.barFault) check(!held, `${where}: fault under the write lock`);
          if (e.zap && e.zap.target === ZapTarget.DEVICE) {
            if (host.era === 'pre-6.11') {
              // zap_vma_ptes per VMA before down_write, by the task that then takes the lock.
              check(!held && e.zap.start! % 2 ** 40 === 0, `${where}: pre-6.11 zap`);
            } else if (!d.scenario?.startsWith('zap_outside_lock')) {
              check(held && e.zap.start === 0 && e.zap.length === 6 * 2 ** 40, `${where}: zap outside lock or partial`);
            }
            if (host.era === 'series') check(d.zapBarsOnRevoke, `${where}: DEVICE zap without zap_bars_on_revoke`);
            check((e.zap.hadVmas === undefined) === (!host.readsVmas || host.era === 'pre-6.11'), `${where}: had_vmas`);
          }
          if (e.zap?.target === ZapTarget.DMABUF) check(host.era === 'series', `${where}: DMABUF zap before the series`);
          if (e.dmabufRevoke || e.moveNotify) {
            check(['6.19', '7.1', 'series'].includes(host.era), `${where}: DMABUF revoke before 6.19`);
            check(held, `${where}: DMABUF revoke outside the lock`);
          }
        }
        check(!held, `${where}: lock left held at the end`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('keeps correct workloads clear of every finding threshold', () => {
    // Independent of the correlator: hold < 5 s and revoke latency < 50 ms outside the injected faults.
    for (const [k, evs] of eventsByHost(batches)) {
      const host = truth.hosts.find((h) => `${h.hostname}|${h.bootId}` === k)!;
      for (const [dev, list] of byDevice(evs)) {
        const d = host.devices.find((x) => x.device === dev)!;
        let acq = -1; let revokeEnd = -1;
        for (const e of list) {
          if (e.lockAcquire) { acq = e.tsNs!; revokeEnd = -1; }
          if (e.zap && acq >= 0) revokeEnd = Math.max(revokeEnd, e.tsNs! + e.zap.durationNs!);
          if (e.dmabufRevoke?.revoked && acq >= 0) revokeEnd = Math.max(revokeEnd, e.tsNs! + e.dmabufRevoke.durationNs!);
          if (e.lockRelease) {
            if (!d.scenario?.startsWith('stuck_lock')) expect(e.tsNs! - acq).toBeLessThan(5 * S);
            if (!d.scenario?.startsWith('slow_importer') && revokeEnd > 0) expect(revokeEnd - acq).toBeLessThan(50_000_000);
            acq = -1;
          }
        }
      }
    }
  });

  it('interleaves CPUs within a batch, far inside the 2 s lateness', () => {
    let outOfOrder = 0;
    let worst = 0;
    for (const evs of eventsByHost(batches).values()) {
      let max = -Infinity;
      for (const e of evs) {
        if (e.tsNs! < max) { outOfOrder++; worst = Math.max(worst, max - e.tsNs!); }
        max = Math.max(max, e.tsNs!);
      }
    }
    expect(outOfOrder).toBeGreaterThan(100);
    expect(worst).toBeLessThan(10_000_000);
  });

  it('numbers events contiguously per host except at injected loss', () => {
    const next = new Map<string, number>();
    let gaps = 0; let dropped = 0;
    for (const b of batches) {
      const k = hostKey(b);
      expect(b.events!.length).toBeGreaterThan(0);
      expect(b.events!.length).toBeLessThanOrEqual(256);
      const exp = next.get(k);
      if (exp !== undefined && b.firstSeq !== exp) {
        gaps += b.firstSeq! - exp;
        expect(truth.lossWindows.some((w) => `${w.hostname}|${w.bootId}` === k && w.mode === 'seq_gap')).toBe(true);
      }
      if (b.dropped) {
        dropped += b.dropped;
        expect(truth.lossWindows.some((w) => `${w.hostname}|${w.bootId}` === k && w.mode === 'dropped')).toBe(true);
      }
      next.set(k, b.firstSeq! + b.events!.length);
    }
    const lost = truth.lossWindows.reduce((n, w) => n + w.lost, 0);
    expect(gaps + dropped).toBe(lost);
    expect(lost).toBe(truth.stats.lostEvents);
    expect(lost).toBeGreaterThan(0);
  });

  it('injects every fault kind once with its ground truth', () => {
    expect(truth.skippedFaults).toEqual([]);
    for (const f of FAULT_NAMES) expect(truth.faults.some((x) => x.fault === f), f).toBe(true);
    const expected = truth.faults.reduce((n, f) => n + f.expectedFindings, 0);
    expect(truth.findings.length).toBe(expected);
    for (const f of truth.findings) {
      const fault = truth.faults.find((x) => x.scenario === f.scenario)!;
      expect(fault.device).toBe(f.device);
      expect(fault.hostname).toBe(f.hostname);
    }
    const kinds = new Set(truth.findings.map((f) => f.kind));
    expect([...kinds].sort()).toEqual(['LOCK_HELD_OPEN', 'LOCK_NOT_HELD', 'REDUNDANT_ZAP', 'SKIPPED_ZAP', 'SLOW_REVOKE',
      'UNPAIRED_REVOKE', 'UNREVOKE_WITHOUT_REVOKE']);
    // Loss makes exactly the findings of the episode it touched inconclusive, nothing else.
    for (const f of truth.findings) {
      expect(f.inconclusive).toBe(f.fault === 'ring_loss' || f.fault === 'unknown_device');
      if (f.fault === 'ring_loss') {
        const w = truth.lossWindows.find((x) => x.scenario === f.scenario)!;
        expect(f.releaseTsNs).toBeGreaterThan(w.fromTsNs);
        expect(f.acquireTsNs).toBeLessThanOrEqual(w.toTsNs);
      }
    }
    // Per scenario (a fault may be injected more than once).
    const sev = (fault: string) => truth.findings.filter((f) => f.scenario === `${fault}#1`).map((f) => `${f.kind}/${f.severity}`);
    expect(sev('forgot_opt_in')).toEqual(['SKIPPED_ZAP/CRITICAL']);
    expect(sev('forgot_opt_in_unpopulated')).toEqual(['SKIPPED_ZAP/WARNING']);
    expect(sev('forgot_opt_in_unseen')).toEqual(['SKIPPED_ZAP/WARNING']);
    expect(sev('no_opt_out')).toEqual(['REDUNDANT_ZAP/INFO', 'REDUNDANT_ZAP/INFO']);
    expect(sev('double_zap')).toEqual(['REDUNDANT_ZAP/INFO']);
    expect(sev('missing_unrevoke')).toEqual(['UNPAIRED_REVOKE/WARNING']);
    expect(sev('unrevoke_without_revoke')).toEqual(['UNREVOKE_WITHOUT_REVOKE/WARNING']);
    expect(sev('zap_outside_lock')).toEqual(['LOCK_NOT_HELD/CRITICAL']);
    expect(sev('slow_importer')).toEqual(['SLOW_REVOKE/WARNING']);
    expect(sev('stuck_lock')).toEqual(['LOCK_HELD_OPEN/WARNING']);
    expect(sev('ring_loss')).toEqual(['SKIPPED_ZAP/CRITICAL']);
    expect(sev('unknown_device')).toEqual(['SKIPPED_ZAP/WARNING']);
  });

  it('encodes as protobuf EventBatches and round-trips', () => {
    for (const b of batches.slice(0, 300)) {
      expect(v1.EventBatch.verify(b)).toBeNull();
      const back = v1.EventBatch.toObject(v1.EventBatch.decode(v1.EventBatch.encode(b).finish()), { defaults: false });
      expect(back.events.length).toBe(b.events!.length);
      expect(back.events[0].tsNs).toBe(b.events![0]!.tsNs);
    }
    expect(batches[0]!.host!.capabilities!.every((c) => Capability[c] !== undefined)).toBe(true);
  });
});

describe('simulator: faults off', () => {
  it('a correct fleet carries no fault, no loss and no expected finding', () => {
    for (const seed of [1, 2, 3]) {
      const { batches, truth } = simulate({ hosts: 20, durationNs: 30 * S, seed, faults: false });
      expect(truth.findings).toEqual([]);
      expect(truth.faults).toEqual([]);
      expect(truth.lossWindows).toEqual([]);
      expect(truth.stats.lostEvents).toBe(0);
      expect(truth.hosts.every((h) => h.devices.every((d) => d.known && !d.scenario))).toBe(true);
      const next = new Map<string, number>();
      for (const b of batches) {
        expect(b.dropped).toBe(0);
        const k = hostKey(b);
        expect(b.firstSeq).toBe(next.get(k) ?? 0);
        next.set(k, b.firstSeq! + b.events!.length);
      }
    }
  });
});

describe('simulator: small fleets and options', () => {
  it('skips faults that no host can carry, and says why', () => {
    const { truth } = simulate({ hosts: 1, durationNs: 20 * S, seed: 5 });
    expect(truth.hosts[0]!.era).toBe('pre-6.11');
    expect(truth.skippedFaults.map((s) => s.fault)).toContain('forgot_opt_in');
    expect(truth.skippedFaults.find((s) => s.fault === 'forgot_opt_in')!.reason).toMatch(/era series/);
    expect(truth.faults.every((f) => f.era === 'pre-6.11')).toBe(true);
  });

  it('honours batchSize, devicesPerHost and faultKinds', () => {
    const { batches, truth } = simulate({ hosts: 5, durationNs: 20 * S, seed: 9, batchSize: 16, devicesPerHost: [4, 4], faultKinds: ['double_zap'], faultRate: 0 });
    expect(batches.every((b) => b.events!.length <= 16)).toBe(true);
    expect(truth.faults.map((f) => f.fault)).toEqual(['double_zap']);
    for (const h of truth.hosts) expect(h.devices.filter((d) => !d.scenario).length).toBe(4);
  });
});

describe('simulator: pre-6.11 unpopulated mappings', () => {
  /** Pre-6.11 revoke episodes where fewer VMAs were zapped than mappings were live (unfaulted ones). */
  function partlyZapped(unpopulatedPre611Revokes: boolean): { revokes: number; partly: number } {
    const { batches, truth } = simulate({ hosts: 10, durationNs: 30 * S, seed: 4, faults: false, unpopulatedPre611Revokes });
    const pre611 = new Set(truth.hosts.filter((h) => h.era === 'pre-6.11').map((h) => `${h.hostname}|${h.bootId}`));
    const revokeKinds = new Set([TriggerKind.RESET, TriggerKind.HOT_RESET, TriggerKind.FLR, TriggerKind.MEM_DISABLE,
      TriggerKind.D3HOT, TriggerKind.RUNTIME_PM_ENTRY]);
    let revokes = 0; let partly = 0;
    for (const [k, evs] of eventsByHost(batches)) {
      if (!pre611.has(k)) continue;
      for (const list of byDevice(evs).values()) {
        const live = new Set<number>();
        let zaps = 0; let revoke = false; let held = false;
        for (const e of list) {
          if (e.barMmap) live.add(e.barMmap.mappingId!);
          if (e.barMunmap) live.delete(e.barMunmap.mappingId!);
          if (e.zap) zaps++;
          if (e.trigger && revokeKinds.has(e.trigger.kind!)) revoke = true;
          if (e.lockAcquire) held = true;
          if (e.lockRelease) {
            if (revoke && live.size > 0) { revokes++; if (zaps < live.size) partly++; }
            zaps = 0; revoke = false; held = false;
          }
        }
        expect(held).toBe(false);
      }
    }
    return { revokes, partly };
  }

  it('zaps every live mapping by default, and only faulted ones when asked to', () => {
    const normal = partlyZapped(false);
    expect(normal.revokes).toBeGreaterThan(20);
    expect(normal.partly).toBe(0);
    expect(partlyZapped(true).partly).toBeGreaterThan(0);
  });
});

describe('simulator: streaming', () => {
  it('streams a long run without holding it (speed printed, not asserted)', () => {
    const sim = new FleetSimulator({ hosts: 20, durationNs: 600 * S, seed: 3 });
    const t = performance.now();
    let n = 0; let events = 0;
    const heap0 = process.memoryUsage().heapUsed;
    let heapMax = heap0;
    for (const b of sim.batches()) {
      n++; events += b.events!.length;
      if (n % 2000 === 0) heapMax = Math.max(heapMax, process.memoryUsage().heapUsed);
    }
    const ms = performance.now() - t;
    const truth = sim.truth();
    console.log(`simulator: streamed 20 hosts x 600 s: ${events} events in ${ms.toFixed(0)} ms ` +
      `(${Math.round(events / (ms / 1000))} events/s), heap growth ${((heapMax - heap0) / 2 ** 20).toFixed(1)} MiB`);
    expect(events).toBe(truth.stats.events);
    expect(truth.stats.batches).toBe(n);
    expect(() => [...sim.batches()]).toThrow(/only once/);
  });
});
