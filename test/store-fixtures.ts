// Small hand-built traces and temp stores for the store, pipeline and API tests.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Backing, Capability, TriggerKind, ZapTarget, type Event, type EventBatch } from '../services/core/model.js';
import { openStore, type OpenStore } from '../services/store/index.js';

export function tempDir(prefix = 'revokescope-store-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export async function openTemp(dir: string, shiftNs = 0): Promise<OpenStore> {
  return openStore({ dataDir: dir }, { wallClockShiftNs: shiftNs, writer: { maxRows: 5_000, maxDelayMs: 200 } });
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BAR = 2 ** 40;

/**
 * A host trace on a DMABUF-export kernel (6.19): one device with a LEGACY mapping, revoke episodes (RESET:
 * zap + DMABUF revoke + move_notify + unrevoke) and, every `skipEvery`-th episode, a revoke with no zap
 * while the legacy mapping is populated (a SKIPPED_ZAP). Batches of `batchSize` events.
 */
export function hostTrace(o: { host: string; episodes: number; seed: number; batchSize?: number; skipEvery?: number;
  driver?: string; kernel?: string }): EventBatch[] {
  const r = rng(o.seed);
  const device = '0000:3b:00.0';
  const events: Event[] = [];
  let ts = 1_000_000_000_000;
  const ev = (e: Omit<Event, 'cpu' | 'pid' | 'tid' | 'comm' | 'device'>, advance = 1_000): void => {
    ts += advance;
    events.push({ cpu: 3, pid: 4242, tid: 4242, comm: 'qemu-kvm', device, ...e, tsNs: ts });
  };
  ev({ deviceInfo: { driver: o.driver ?? 'vfio-pci', zapBarsOnRevoke: false, dmabufBarMmap: false } });
  ev({ barMmap: { bar: 0, backing: Backing.LEGACY, mappingId: 7, length: 1 << 24, snapshot: true } });
  for (let i = 0; i < o.episodes; i++) {
    ev({ barFault: { bar: 0, mappingId: 7, ok: true } }, 1_000_000);
    ev({ trigger: { kind: TriggerKind.RESET, groupId: 0 } }, 10_000);
    ev({ lockAcquire: { waitNs: Math.round(1_000 + r() * 50_000) } }, 5_000);
    const skip = o.skipEvery !== undefined && i % o.skipEvery === o.skipEvery - 1;
    const zapNs = Math.round(2_000 + r() * r() * 400_000);
    if (!skip) ev({ zap: { start: 0, length: 6 * BAR, durationNs: zapNs, target: ZapTarget.DEVICE, hadVmas: true } }, 1_000);
    const revokeNs = Math.round(5_000 + r() * r() * 2_000_000);
    ev({ dmabufRevoke: { revoked: true, dmabufCount: 1, durationNs: revokeNs } }, (skip ? 1_000 : zapNs + 500));
    ev({ moveNotify: { dmabufId: 11, importerCount: 1, durationNs: Math.round(revokeNs / 2) } }, 100);
    ev({ dmabufRevoke: { revoked: false, dmabufCount: 1, durationNs: 3_000 } }, revokeNs + 20_000);
    ev({ lockRelease: {} }, 5_000);
  }
  const size = o.batchSize ?? 100;
  const batches: EventBatch[] = [];
  for (let i = 0; i < events.length; i += size) {
    batches.push({
      host: { hostname: o.host, bootId: `boot-${o.host}`, kernelRelease: o.kernel ?? '6.19.0-1-amd64', collectorVersion: 'test',
        capabilities: [Capability.LOCK, Capability.ZAP, Capability.DMABUF_REVOKE, Capability.MOVE_NOTIFY, Capability.BAR_MMAP,
          Capability.BAR_FAULT, Capability.TRIGGER, Capability.DEVICE_INFO] },
      firstSeq: i, dropped: 0, events: events.slice(i, i + size),
    });
  }
  return batches;
}

/** Several hosts' traces, interleaved batch by batch (per-host order kept). */
export function fleetTrace(hosts: number, episodes: number, seed: number): EventBatch[] {
  const traces = Array.from({ length: hosts }, (_, h) => hostTrace({
    host: `host-${String(h).padStart(3, '0')}`, episodes, seed: seed + h, skipEvery: 7,
    driver: h % 2 ? 'nvgrace-gpu-vfio-pci' : 'vfio-pci', kernel: h % 3 ? '6.19.0-1-amd64' : '7.1.0-1-amd64',
  }));
  const out: EventBatch[] = [];
  for (let i = 0; traces.some((t) => i < t.length); i++) for (const t of traces) if (i < t.length) out.push(t[i]!);
  return out;
}
