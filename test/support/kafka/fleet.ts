// A small deterministic fleet workload for the Kafka tests and benchmark: per host a few vfio devices doing
// resets (revoke episodes with zaps, DMABUF revokes and move_notify), BAR faults and lock-only episodes, cut
// into EventBatches with contiguous seq numbers. Some episodes are deliberately buggy (a missing zap, a
// redundant one, a slow revoke) so findings flow too.
import { ALL_BARS_LENGTH, Backing, TriggerKind } from '../../../services/core/model.js';
import type { EventBatch } from '../../../services/core/model.js';
import { TraceBuilder, type Era } from '../trace-builder.js';

export interface FleetOptions {
  hosts: number;
  /** Revoke cycles per device. */
  cycles: number;
  devicesPerHost?: number;
  batchSize?: number;
  seed?: number;
}

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

const ERAS: Era[] = ['6.12', '6.19', 'series', '7.1'];

/** One host's batches (in collector order). */
export function hostBatches(host: number, opts: FleetOptions): EventBatch[] {
  const rand = rng((opts.seed ?? 7) * 7919 + host);
  const era = ERAS[host % ERAS.length];
  const b = new TraceBuilder(era, `node-${String(host).padStart(4, '0')}`, `boot-${host}-a`);
  const dmabuf = era !== '6.12';
  const devices = opts.devicesPerHost ?? 4;
  let t = 10;
  for (let d = 0; d < devices; d++) {
    const dev = `0000:${(0x10 + d).toString(16).padStart(2, '0')}:00.0`;
    b.info(t, dev, 'vfio-pci', true, era === 'series');
    b.mmap(t + 1, dev, 1000 + d, { bar: 0, backing: era === 'series' ? Backing.DMABUF : Backing.LEGACY, snapshot: true });
  }
  for (let c = 0; c < opts.cycles; c++) {
    t += 20_000 + Math.floor(rand() * 60_000); // 20–80 ms between reset rounds: outputs flow past the lateness window
    for (let d = 0; d < devices; d++) {
      const dev = `0000:${(0x10 + d).toString(16).padStart(2, '0')}:00.0`;
      const tid = 200 + d;
      t += 50 + Math.floor(rand() * 200);
      b.fault(t, dev, 1000 + d);
      t += 20;
      const r = rand();
      b.trigger(t, dev, TriggerKind.RESET, tid);
      b.acquire(t + 1, dev, tid, Math.floor(rand() * 5000));
      const skipZap = r < 0.02; // SKIPPED_ZAP
      const slow = r > 0.98; // SLOW_REVOKE
      if (!skipZap) b.zap(t + 5, dev, { length: ALL_BARS_LENGTH, durationNs: 15_000 + Math.floor(rand() * 10_000), tid });
      if (dmabuf) {
        b.revoke(t + 30, dev, true, { durationNs: slow ? 80_000_000 : 25_000, tid });
        b.move(t + 35, dev, 8_000 + Math.floor(rand() * 4000));
        b.revoke(t + (slow ? 80_100 : 80), dev, false, { tid });
      }
      t += slow ? 80_200 : 100;
      b.release(t, dev, tid);
      if (rand() < 0.3) { // a lock-only episode (config write with memory still enabled)
        t += 40;
        b.acquire(t, dev, tid); b.release(t + 3, dev, tid);
      }
    }
  }
  return b.batches(opts.batchSize ?? 256);
}

/** All hosts' batches, interleaved round-robin as a fleet would deliver them. */
export function fleetBatches(opts: FleetOptions): EventBatch[] {
  const perHost = Array.from({ length: opts.hosts }, (_, h) => hostBatches(h, opts));
  const out: EventBatch[] = [];
  for (let i = 0; ; i++) {
    let any = false;
    for (const hb of perHost) if (i < hb.length) { out.push(hb[i]); any = true; }
    if (!any) return out;
  }
}
