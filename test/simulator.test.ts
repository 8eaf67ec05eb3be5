// Fleet simulator: determinism, coverage of eras/drivers/collectors/workloads, the kernel model's invariants per era
// (checked here from the emitted events alone), the collector's batching (seq, loss, now_ns, heartbeats), the
// injected scenarios (what each was written to produce equals what the judge recorded), and streaming.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DRIVER_NAMES, ERA_NAMES, FAULT_NAMES, FleetSimulator, declaredForm, simulate, simulateFleet, type FleetTruth, type TruthHost,
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

function hostOf(truth: FleetTruth, key: string): TruthHost { return truth.hosts.find((h) => `${h.hostname}|${h.bootId}` === key)!; }

const DMABUF_ERAS = new Set(['6.19', '7.1', 'series']);
/** Triggers whose kernel path leaves the device in D0 (and the memory bit as it was). */
const TO_D0 = new Set<number>([TriggerKind.D0, TriggerKind.RUNTIME_PM_EXIT, TriggerKind.RESET, TriggerKind.FLR, TriggerKind.HOT_RESET]);
const TO_D3 = new Set<number>([TriggerKind.D3HOT, TriggerKind.RUNTIME_PM_ENTRY]);

describe('simulator: an independent model of the kernel', () => {
  it('imports nothing from the correlator, and from the model only types, enums and constants', () => {
    const dir = join(import.meta.dirname, '../collectors/simulator');
    const allowed = new Set(['Backing', 'Capability', 'TriggerKind', 'ZapTarget', 'FindingKind', 'Severity', 'VFIO_PCI_OFFSET_SHIFT']);
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
      const src = readFileSync(join(dir, file), 'utf8');
      expect(src, file).not.toMatch(/from '[^']*correlator[^']*'/);
      for (const m of src.matchAll(/import (type )?\{([^}]*)\} from '([^']*)'/g)) {
        if (!m[3]!.includes('services/')) continue;
        expect(m[3], file).toBe('../../services/core/model.js');
        if (m[1]) continue; // types only
        for (const name of m[2]!.split(',').map((x) => x.trim()).filter((x) => x && !x.startsWith('type '))) {
          expect(allowed.has(name), `${file} imports ${name} from the model`).toBe(true);
        }
      }
    }
  });
});

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

  it('without truth, generates the same batches and judges nothing (the pipeline reads batches only)', () => {
    const opts = { hosts: 12, durationNs: 20 * S, seed: 11 };
    const judged = simulate(opts);
    const silent = simulate({ ...opts, truth: false });
    expect(silent.batches).toEqual(judged.batches);
    expect(judged.truth.judged).toBe(true);
    expect(judged.truth.findings.length).toBeGreaterThan(0);
    expect(silent.truth.judged).toBe(false);
    expect(silent.truth.findings).toEqual([]);
    expect(silent.truth.episodes).toEqual([]);
    expect(silent.truth.faults.map((f) => f.scenario)).toEqual(judged.truth.faults.map((f) => f.scenario));
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
  let judged: Map<string, string[]>;
  beforeAll(() => {
    const t = performance.now();
    const sim = new FleetSimulator({ hosts: 50, durationNs: 60 * S, seed: 1 });
    batches = [...sim.batches()];
    truth = sim.truth();
    judged = sim.judged();
    console.log(`simulator: 50 hosts x 60 s -> ${truth.stats.events} events, ${truth.stats.batches} batches ` +
      `(${truth.stats.heartbeats} heartbeats), ${truth.stats.episodes} episodes in ${(performance.now() - t).toFixed(0)} ms`);
  });

  it('mixes every kernel era with realistic releases, era capabilities and both collector versions', () => {
    expect(new Set(truth.hosts.map((h) => h.era))).toEqual(new Set(ERA_NAMES));
    const release: Record<string, RegExp> = {
      'pre-6.11': /^6\.1\.\d+-\d+-(cloud-)?(amd64|arm64)$/, '6.12': /^6\.12\.\d+\+deb13-(amd64|arm64)$/,
      '6.19': /^6\.19\.\d+-\d+-(amd64|arm64)$/, '7.1': /^7\.1\.\d+-\d+-(amd64|arm64)$/, series: /^7\.2\.0-rc\d+\+vfio-dmabuf-mmap$/,
    };
    for (const h of truth.hosts) {
      expect(h.kernelRelease).toMatch(release[h.era]!);
      const dmabuf = DMABUF_ERAS.has(h.era);
      expect(h.capabilities.includes('DMABUF_REVOKE')).toBe(dmabuf);
      expect(h.capabilities.includes('MOVE_NOTIFY')).toBe(dmabuf);
      // Only collectors that report trigger returns claim TRIGGER_END.
      expect(h.capabilities.includes('TRIGGER_END')).toBe(h.collector === 'current');
      for (const c of ['LOCK', 'ZAP', 'BAR_MMAP', 'BAR_FAULT', 'TRIGGER', 'DEVICE_INFO']) expect(h.capabilities).toContain(c);
    }
    for (const era of ERA_NAMES) {
      const hosts = truth.hosts.filter((h) => h.era === era);
      // Both probe profiles (with and without i_mmap reads) and both collector versions on every era.
      expect(new Set(hosts.map((h) => h.readsVmas))).toEqual(new Set([true, false]));
      expect(new Set(hosts.map((h) => h.collector))).toEqual(new Set(['current', 'older']));
    }
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
      'lockRelease', 'moveNotify', 'powerTransition', 'resetFunction', 'trigger', 'triggerEnd', 'zap']);
    expect(groups).toBeGreaterThan(0);
  });

  it('describes devices at collector start as each collector version can', () => {
    for (const [k, evs] of eventsByHost(batches)) {
      const host = hostOf(truth, k);
      const devs = byDevice(evs);
      for (const d of host.devices) {
        const info = devs.get(d.device)?.find((e) => e.deviceInfo)?.deviceInfo;
        if (d.described === 'none') {
          expect(d.scenario).toMatch(/^unknown_device#/);
          expect(devs.get(d.device)?.some((e) => e.deviceInfo || e.barMmap?.snapshot) ?? false).toBe(false);
          continue;
        }
        expect(info, `${k} ${d.device}`).toBeTruthy();
        expect(d.described).toBe(host.collector === 'current' ? 'full' : 'basic');
        expect(info!.driver).toBe(d.driver);
        expect(info!.dmabufBarMmap).toBe(host.era === 'series');
        // zap_bars_on_revoke exists only in the series: never guessed elsewhere.
        expect(info!.zapBarsOnRevoke ?? undefined).toBe(host.era === 'series' ? d.zapBarsOnRevoke : undefined);
        const state = [info!.memoryEnabled, info!.powerState, info!.openCount, info!.noCommandMemory, info!.customVmOpsBars];
        if (d.described === 'full') {
          expect(state.every((x) => x !== undefined && x !== null)).toBe(true);
          expect(info!.noCommandMemory).toBe(d.vf);
          expect(info!.customVmOpsBars).toBe(d.driver === 'nvgrace-gpu' ? 0b10100 : 0);
          expect(info!.revoked ?? undefined).toBe(DMABUF_ERAS.has(host.era) ? info!.revoked : undefined);
        } else {
          expect(state.every((x) => x === undefined || x === null)).toBe(true);
        }
      }
    }
  });

  it('backs BAR mmaps by era and driver', () => {
    for (const [k, evs] of eventsByHost(batches)) {
      const host = hostOf(truth, k);
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
      const host = hostOf(truth, k);
      const devInfo = new Map(host.devices.map((d) => [d.device, d]));
      for (const [dev, list] of byDevice(evs)) {
        const d = devInfo.get(dev)!;
        const where = `${k} ${dev} (${host.era} ${d.driver} ${d.scenario ?? ''})`;
        const otherTask = /^(zap_outside_lock|zap_by_other_task)#/.test(d.scenario ?? '');
        // Per device the protocol is strictly ordered in time: no two events share a ts.
        for (let i = 1; i < list.length; i++) check(list[i]!.tsNs! > list[i - 1]!.tsNs!, `${where}: equal ts`);
        // The collector may start inside a write section: its acquire is then not seen.
        let held = /^late_start_in_window#/.test(d.scenario ?? '');
        let lockTid = -1;
        for (const e of list) {
          if (e.lockAcquire) { check(!held, `${where}: double acquire`); held = true; lockTid = e.tid!; continue; }
          if (e.lockRelease) { check(held && (e.tid === lockTid || lockTid < 0), `${where}: release without acquire`); held = false; continue; }
          if (e.barFault) check(!held, `${where}: fault under the write lock`);
          if (e.powerTransition || e.resetFunction) check(held && e.tid === lockTid, `${where}: marker outside its window`);
          if (e.zap && e.zap.target === ZapTarget.DEVICE && !(otherTask && e.tid !== lockTid)) {
            if (host.era === 'pre-6.11') {
              // zap_vma_ptes per VMA before down_write, by the task that then takes the lock.
              check(e.zap.start! % 2 ** 40 === 0, `${where}: pre-6.11 zap`);
            } else {
              check((held || lockTid < 0) && e.zap.start === 0 && e.zap.length === 6 * 2 ** 40, `${where}: zap outside lock or partial`);
            }
            if (host.era === 'series') check(d.zapBarsOnRevoke, `${where}: DEVICE zap without zap_bars_on_revoke`);
            check((e.zap.hadVmas === undefined) === (!host.readsVmas || host.era === 'pre-6.11'), `${where}: had_vmas`);
          }
          if (e.zap?.target === ZapTarget.DMABUF) check(host.era === 'series', `${where}: DMABUF zap before the series`);
          if (e.dmabufRevoke || e.moveNotify) {
            check(DMABUF_ERAS.has(host.era), `${where}: DMABUF revoke before 6.19`);
            check(held || lockTid < 0, `${where}: DMABUF revoke outside the lock`);
          }
        }
        if (!/^hung_reset#/.test(d.scenario ?? '')) check(!held, `${where}: lock left held at the end`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('counts in DmaBufRevoke the DMABUFs the call changed, and unrevokes on every write section that leaves memory on', () => {
    let noops = 0, moves = 0;
    for (const [k, evs] of eventsByHost(batches)) {
      const host = hostOf(truth, k);
      if (!DMABUF_ERAS.has(host.era)) continue;
      for (const list of byDevice(evs).values()) {
        for (let i = 0; i < list.length; i++) {
          const r = list[i]!.dmabufRevoke;
          if (!r) continue;
          const end = list[i]!.tsNs! + r.durationNs!;
          // vfio_pci_dma_buf_move() notifies exactly the DMABUFs whose state it changes.
          const notified = list.filter((e) => e.moveNotify && e.tsNs! >= list[i]!.tsNs! && e.tsNs! <= end).length;
          expect(notified).toBe(r.dmabufCount ?? 0);
          if (!r.revoked && !r.dmabufCount) noops++;
          moves++;
        }
      }
    }
    expect(moves).toBeGreaterThan(500);
    // PCI_COMMAND writes that keep memory enabled still call vfio_pci_dma_buf_move(vdev, false): a no-op.
    expect(noops).toBeGreaterThan(50);
  });

  it('installs PTEs only while memory is enabled (tracked from the events of correct devices)', () => {
    // A memory state machine over the events alone: DeviceInfo, then the write sections' triggers (their state
    // changes take effect inside the section). VFs ignore the memory bit. Scenario devices are skipped (some carry
    // injected bugs or start without DeviceInfo state).
    let ok = 0, refused = 0;
    for (const [k, evs] of eventsByHost(batches)) {
      const host = hostOf(truth, k);
      if (host.collector !== 'current') continue;
      for (const [dev, list] of byDevice(evs)) {
        const d = host.devices.find((x) => x.device === dev)!;
        if (d.scenario) continue;
        let bit = true, d3 = false, pending: number | undefined;
        for (const e of list) {
          if (e.deviceInfo) { bit = e.deviceInfo.memoryEnabled ?? true; d3 = (e.deviceInfo.powerState ?? 0) >= 3; }
          if (e.trigger && e.trigger.kind !== TriggerKind.OPEN) pending = e.trigger.kind!;
          if (e.lockAcquire && pending !== undefined) {
            if (pending === TriggerKind.MEM_DISABLE) bit = false;
            if (pending === TriggerKind.MEM_ENABLE) bit = true;
            if (TO_D3.has(pending)) d3 = true;
            if (TO_D0.has(pending)) d3 = false;
            pending = undefined;
          }
          if (e.barFault) {
            const enabled = !d3 && (bit || d.vf);
            const m = list.find((x) => x.barMmap?.mappingId === e.barFault!.mappingId);
            if (m && m.barMmap!.backing !== Backing.DMABUF) expect(e.barFault.ok, `${k} ${dev} fault at ${e.tsNs}`).toBe(enabled);
            if (e.barFault.ok) ok++; else refused++;
          }
        }
      }
    }
    expect(ok).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(5);
  });

  it('reports every trigger function return (current collectors only), and markers only where they exist', () => {
    for (const [k, evs] of eventsByHost(batches)) {
      const host = hostOf(truth, k);
      const triggers = evs.filter((e) => e.trigger), ends = evs.filter((e) => e.triggerEnd);
      if (host.collector === 'older') {
        expect(ends).toEqual([]);
        expect(evs.some((e) => e.powerTransition || e.resetFunction || e.trigger?.kind === TriggerKind.OPEN)).toBe(false);
        continue;
      }
      // A trigger announced before the collector started returns after it (the collector started inside a window).
      const lateStart = host.devices.filter((d) => /^late_start_(in_window|before_acquire)#/.test(d.scenario ?? '')).map((d) => d.device);
      const open = new Map<string, number>();
      for (const e of [...evs].sort((a, b) => a.tsNs! - b.tsNs!)) {
        const key = `${e.device}|${e.tid}|${e.trigger?.kind ?? e.triggerEnd?.kind}`;
        if (e.trigger) open.set(key, (open.get(key) ?? 0) + 1);
        if (e.triggerEnd && !(lateStart.includes(e.device!) && !open.get(key))) {
          expect(open.get(key) ?? 0, `${k} ${key}: TriggerEnd without its trigger`).toBeGreaterThan(0);
          open.set(key, open.get(key)! - 1);
        }
      }
      const hung = host.devices.filter((d) => /^hung_reset#/.test(d.scenario ?? '')).map((d) => d.device);
      const unreturned = [...open].filter(([key, n]) => n > 0 && !hung.includes(key.split('|')[0]!));
      expect(unreturned, k).toEqual([]);
      expect(ends.length).toBeGreaterThanOrEqual(triggers.length - hung.length);
    }
  });

  it('keeps correct workloads clear of every finding threshold', () => {
    // Independent of the correlator: hold < 5 s and revoke latency < 50 ms outside the injected faults.
    for (const [k, evs] of eventsByHost(batches)) {
      const host = hostOf(truth, k);
      for (const [dev, list] of byDevice(evs)) {
        const d = host.devices.find((x) => x.device === dev)!;
        let acq = -1; let revokeEnd = -1;
        for (const e of list) {
          if (e.lockAcquire) { acq = e.tsNs!; revokeEnd = -1; }
          if (e.zap && acq >= 0) revokeEnd = Math.max(revokeEnd, e.tsNs! + e.zap.durationNs!);
          if (e.dmabufRevoke?.revoked && acq >= 0) revokeEnd = Math.max(revokeEnd, e.tsNs! + e.dmabufRevoke.durationNs!);
          if (e.lockRelease && acq >= 0) {
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

  it("cuts every batch with the collector's clock, and sends heartbeats when idle", () => {
    const last = new Map<string, number>();
    let heartbeats = 0;
    for (const b of batches) {
      const k = hostKey(b);
      const now = Number(b.nowNs);
      expect(now).toBeGreaterThan(0);
      for (const e of b.events!) expect(e.tsNs!).toBeLessThanOrEqual(now);
      const prev = last.get(k);
      if (prev !== undefined) {
        expect(now).toBeGreaterThanOrEqual(prev); // CLOCK_MONOTONIC
        expect(now - prev).toBeLessThanOrEqual(1 * S); // at least one batch a second
      } else expect(now - hostOf(truth, k).startTsNs).toBeLessThanOrEqual(1 * S);
      last.set(k, now);
      if (b.events!.length === 0) heartbeats++;
    }
    expect(heartbeats).toBe(truth.stats.heartbeats);
    expect(heartbeats).toBeGreaterThan(10);
    // Every host's clock reaches the end of the run (the hung reset's host sends heartbeats only, to the end).
    for (const h of truth.hosts) expect(last.get(`${h.hostname}|${h.bootId}`)!).toBeGreaterThanOrEqual(h.startTsNs + 60 * S);
  });

  it('numbers events contiguously per host except at injected loss', () => {
    const next = new Map<string, number>();
    let gaps = 0; let dropped = 0;
    for (const b of batches) {
      const k = hostKey(b);
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

  it('injects every scenario, and the judge records exactly what each was written to produce', () => {
    expect(truth.skippedFaults).toEqual([]);
    for (const f of FAULT_NAMES) expect(truth.faults.some((x) => x.fault === f), f).toBe(true);
    for (const f of truth.faults) {
      expect(judged.get(f.scenario), `${f.scenario} (${f.era}, ${f.collector} collector)`).toEqual(f.declared);
      expect(f.expectedFindings).toBe(truth.findings.filter((x) => x.scenario === f.scenario).length);
    }
    for (const f of truth.findings) {
      if (f.fault === 'workload') continue;
      const fault = truth.faults.find((x) => x.scenario === f.scenario)!;
      expect(fault.hostname).toBe(f.hostname);
    }
    const kinds = new Set(truth.findings.map((f) => f.kind));
    expect([...kinds].sort()).toEqual(['FAULT_WHILE_REVOKED', 'LOCK_HELD_OPEN', 'LOCK_NOT_HELD', 'REDUNDANT_ZAP', 'SKIPPED_ZAP',
      'SLOW_REVOKE', 'UNPAIRED_REVOKE', 'UNREVOKE_WITHOUT_REVOKE']);
    // Uncertainty is deliberate: it comes from loss, unknown devices, older collectors and start snapshots.
    const inconclusive = new Set(truth.findings.filter((f) => f.inconclusive).map((f) => f.fault));
    expect(inconclusive.has('ring_loss')).toBe(true);
    expect(inconclusive.has('unknown_device')).toBe(true);
    expect(inconclusive.has('vf_older_collector')).toBe(true);
    for (const f of truth.findings.filter((x) => x.inconclusive)) expect(f.why).toMatch(/unknown|incomplete/);
    // Per scenario (a fault may be injected more than once).
    const first = (fault: string) => truth.findings.filter((f) => f.scenario === `${fault}#1`).map((f) => declaredForm(f)).sort();
    expect(first('forgot_opt_in')).toEqual(['SKIPPED_ZAP/CRITICAL/certain']);
    expect(first('forgot_opt_in_unseen')).toEqual(['SKIPPED_ZAP/WARNING/certain']);
    expect(first('no_opt_out')).toEqual(['REDUNDANT_ZAP/INFO/certain', 'REDUNDANT_ZAP/INFO/certain']);
    expect(first('missing_unrevoke')).toEqual(['UNPAIRED_REVOKE/WARNING/certain']);
    expect(first('zap_outside_lock')).toEqual(['LOCK_NOT_HELD/CRITICAL/certain']);
    expect(first('zap_by_other_task')).toEqual(['LOCK_NOT_HELD/CRITICAL/certain']);
    expect(first('fault_while_revoked')).toEqual(['FAULT_WHILE_REVOKED/CRITICAL/certain']);
    expect(first('repeated_memory_off')).toEqual(['REDUNDANT_ZAP/INFO/certain']);
    expect(first('hung_reset')).toEqual(['LOCK_HELD_OPEN/WARNING/certain']);
    expect(first('ring_loss')).toEqual(['SKIPPED_ZAP/WARNING/inconclusive']);
    for (const s of ['late_start_in_window', 'failed_ioctl', 'other_task_config_write', 'unopened_sibling', 'vf_memory_off', 'nvgrace_empty_zaps']) {
      expect(first(s), s).toEqual([]);
    }
  });

  it('records the episodes a correct correlator reports for the scenario devices', () => {
    const eps = (fault: string) => truth.episodes.filter((e) => e.scenario.startsWith(`${fault}#`));
    // nvgrace-gpu's device-memory BARs unmapped: every DEVICE zap is an intended empty one.
    expect(eps('nvgrace_empty_zaps').map((e) => e.intendedEmptyZaps)).toEqual(eps('nvgrace_empty_zaps').map(() => 1));
    // The collector started inside a write section: that episode began before observation.
    expect(eps('late_start_in_window').some((e) => e.acquireTsNs === 0 && !e.complete)).toBe(true);
    // Another task's trigger never names the holder's episode.
    const other = eps('other_task_config_write');
    expect(other.filter((e) => e.trigger === 'MEM_DISABLE').length).toBe(other.filter((e) => e.trigger === 'TRIGGER_UNSPECIFIED').length);
    // The unopened sibling's episode belongs to the hot reset of the task that holds the other device's lock.
    const hot = eps('unopened_sibling');
    expect(hot.length).toBeGreaterThanOrEqual(2);
    expect(hot.every((e) => e.trigger === 'HOT_RESET' && e.groupId === hot[0]!.groupId && e.pid === hot[0]!.pid)).toBe(true);
    // The hung reset is still held at the end.
    expect(eps('hung_reset').every((e) => e.releaseTsNs === 0)).toBe(true);
    // Loss touches the episode whose zap it took.
    expect(eps('ring_loss').every((e) => !e.complete)).toBe(true);
  });

  it('encodes as protobuf EventBatches and round-trips', () => {
    for (const b of batches.slice(0, 300)) {
      expect(v1.EventBatch.verify(b)).toBeNull();
      const back = v1.EventBatch.toObject(v1.EventBatch.decode(v1.EventBatch.encode(b).finish()), { defaults: false });
      expect(back.events?.length ?? 0).toBe(b.events!.length);
      expect(Number(back.nowNs)).toBe(b.nowNs);
      if (b.events!.length) expect(back.events[0].tsNs).toBe(b.events![0]!.tsNs);
    }
    expect(batches[0]!.host!.capabilities!.every((c) => Capability[c] !== undefined)).toBe(true);
  });
});

describe('simulator: faults off', () => {
  it('a correct fleet carries no fault, no loss and no expected finding', () => {
    for (const seed of [1, 2, 3]) {
      const { batches, truth } = simulate({ hosts: 40, durationNs: 30 * S, seed, faults: false });
      expect(truth.findings).toEqual([]);
      expect(truth.faults).toEqual([]);
      expect(truth.episodes).toEqual([]);
      expect(truth.lossWindows).toEqual([]);
      expect(truth.stats.lostEvents).toBe(0);
      expect(truth.hosts.every((h) => h.devices.every((d) => d.described !== 'none' && !d.scenario))).toBe(true);
      expect(new Set(truth.hosts.map((h) => h.collector))).toEqual(new Set(['current', 'older']));
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
    const revokeKinds = new Set<number>([TriggerKind.RESET, TriggerKind.HOT_RESET, TriggerKind.FLR, TriggerKind.MEM_DISABLE,
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
