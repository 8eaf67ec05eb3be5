// Real data for the alerting API tests: hand-written traces per host through the correlator
// (analyzeBatches), stored with the store's writer in chDB, plus collector health samples.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeBatches } from '../../services/core/analysis.js';
import { Backing, TriggerKind, type Episode, type Finding } from '../../services/core/model.js';
import { ClickHouseStore } from '../../services/store/clickhouse-store.js';
import { connect } from '../../services/store/connect.js';
import type { HostHealth } from '../../services/store/types.js';
import { TraceBuilder } from './trace-builder.js';

export interface Fleet { episodes: Episode[]; findings: Finding[]; health: HostHealth[] }

/** host-a: pre-DMABUF kernel, a reset with a live legacy mapping and no zap (certain SKIPPED_ZAP, critical),
 *  host-b: series kernel, a DMABUF revoke without memory_lock (LOCK_NOT_HELD),
 *  DMABUF-only mappings but slow zaps
 *  (REDUNDANT_ZAP with 200 ms wasted, revoke p99 > 50 ms) and event loss. host-c: a lock held open; silent. */
export function buildFleet(t0Ms: number): Fleet {
  const a = new TraceBuilder('6.1', 'host-a', 'boot-a');
  a.info(0, '0000:3b:00.0').mmap(10, '0000:3b:00.0', 1).fault(20, '0000:3b:00.0', 1)
    .trigger(100, '0000:3b:00.0', TriggerKind.RESET).acquire(101, '0000:3b:00.0').release(500, '0000:3b:00.0');
  for (let i = 0; i < 20; i++) {
    const t = 5000 + i * 1000;
    a.acquire(t, '0000:3d:00.0').zap(t + 5, '0000:3d:00.0', { durationNs: 30_000 }).release(t + 100, '0000:3d:00.0');
  }
  const b = new TraceBuilder('series', 'host-b', 'boot-b');
  b.info(0, '0000:81:00.0').mmap(10, '0000:81:00.0', 7, { backing: Backing.DMABUF });
  // vfio_pci_dma_buf_move without memory_lock, once the lock is known free (an acquire and release seen before it:
  // rules v2 make no finding of a revoke on a device whose lock state is unknown)
  b.info(0, '0000:82:00.0').acquire(1000, '0000:82:00.0').release(1100, '0000:82:00.0').revoke(2000, '0000:82:00.0', true);
  for (let i = 0; i < 20; i++) {
    const t = 1000 + i * 400_000;
    b.trigger(t, '0000:81:00.0', TriggerKind.RESET).acquire(t + 1, '0000:81:00.0')
      .zap(t + 10, '0000:81:00.0', { durationNs: 60_000_000 })
      .revoke(t + 70_100, '0000:81:00.0', true, { durationNs: 40_000 })
      .revoke(t + 70_200, '0000:81:00.0', false).release(t + 70_300, '0000:81:00.0');
  }
  const c = new TraceBuilder('6.12', 'host-c', 'boot-c');
  c.info(0, '0000:17:00.0').acquire(100, '0000:17:00.0');
  c.info(9_000_000, '0000:18:00.0'); // 9 s later: time moves on, the lock is still held
  const res = analyzeBatches([...a.batches(), ...b.batches(), ...c.batches()]);
  // a sample a minute; the collector's clock (heartbeat now_ns) advances with each: the host is alive until its samples stop
  const h = (host: string, boot: string, kernel: string, agoMs: number, events: number, lost: number): HostHealth => ({
    hostname: host, bootId: boot, kernelRelease: kernel, collectorVersion: 'test', capabilities: ['LOCK', 'ZAP'],
    observedAtMs: t0Ms - agoMs, events, dropped: 0, lost, lag: 0, lastTsNs: 0, nowNs: 1e12 + (30 * 60_000 - agoMs) * 1e6,
  });
  const health: HostHealth[] = [];
  for (let i = 0; i <= 10; i++) {
    health.push(h('host-a', 'boot-a', a.host.kernelRelease!, (10 - i) * 60_000, 1000 * i, 0));
    health.push(h('host-b', 'boot-b', b.host.kernelRelease!, (10 - i) * 60_000, 2000 * i, i >= 5 ? 40 * (i - 4) : 0));
    if (i <= 2) health.push(h('host-c', 'boot-c', c.host.kernelRelease!, (10 - i) * 60_000 + 20 * 60_000, 100 * i, 0));
  }
  return { episodes: res.episodes, findings: res.findings, health };
}

/** A chDB data dir with the store's schema and the fleet written at wall clock t0. */
export async function storeWithFleet(t0Ms: number, dir = mkdtempSync(join(tmpdir(), 'rs-api-'))) {
  const conn = await connect({ dataDir: dir });
  const store = new ClickHouseStore(conn.client, { now: () => t0Ms });
  await store.migrate();
  const fleet = buildFleet(t0Ms);
  await store.writeEpisodes(fleet.episodes);
  await store.writeFindings(fleet.findings);
  await store.writeHostHealth(fleet.health);
  await store.flush();
  return { client: conn.client, dir, fleet };
}
