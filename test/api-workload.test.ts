// Who and which code path (issue 17) through the store and the API: a hand-written trace whose batches carry the
// boot's cgroup and kernel stack tables goes through the correlator into a real chDB store (raw events from decoded
// batches and from the wire scan, episodes, findings, the lookup tables), then real HTTP against fastify filters
// episodes and findings by VM, pod and comm.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyzeBatches } from '../services/core/analysis.js';
import { FindingKind, v1, type EventBatch } from '../services/core/model.js';
import { BatchScan } from '../services/core/wire.js';
import { ClickHouseStore } from '../services/store/clickhouse-store.js';
import { connect } from '../services/store/connect.js';
import { StoreReader } from '../services/store/queries.js';
import type { revokescope } from '../gen/proto.js';
import { startApi, type TestApi } from './support/api-server.js';
import { TraceBuilder, TriggerKind } from './support/trace-builder.js';

const UID = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const CID = 'ab'.repeat(32);
const VM_CG = 4101, POD_CG = 4102;
const ZAP_STACK = ['vmlinux:unmap_mapping_range+0x0', 'vfio_pci_core:vfio_pci_zap_bars+0x2e', 'vfio_pci_core:vfio_pci_ioctl_reset+0x95',
  "vmlinux:it's\\odd+0x1"];   // quotes and backslashes survive the Array(String) round trip

function trace(host: string): EventBatch[] {
  const b = new TraceBuilder('6.12', host, `boot-${host}`).info(0, '0000:3b:00.0').info(0, '0000:3c:00.0');
  // the VM's QEMU (tid 100) resets 3b without zapping (6.12 zaps on every reset path: a certain SKIPPED_ZAP);
  // the pod's DPDK process (tid 200) resets 3c properly
  b.trigger(10, '0000:3b:00.0', TriggerKind.RESET).acquire(11, '0000:3b:00.0').release(40, '0000:3b:00.0')
    .triggerEnd(41, '0000:3b:00.0', TriggerKind.RESET);
  b.trigger(100, '0000:3c:00.0', TriggerKind.RESET, 200).acquire(101, '0000:3c:00.0', 200).zap(102, '0000:3c:00.0', { tid: 200 })
    .release(140, '0000:3c:00.0', 200).triggerEnd(141, '0000:3c:00.0', TriggerKind.RESET, 0, 200);
  // a task that holds no lock zaps 3b: LOCK_NOT_HELD outside any episode, its task named in the evidence
  b.zap(200, '0000:3b:00.0', { tid: 300 });
  for (const e of b.events) {
    if (e.tid === 200) e.comm = 'dpdk-testpmd';
    if (e.tid === 300) e.comm = 'rogue';
    e.cgroupId = e.tid === 100 ? VM_CG : e.tid === 200 ? POD_CG : 0;
    if (e.lockAcquire) e.stackId = 11;
    if (e.zap) e.stackId = 12;
  }
  const batches = b.batches(64);
  batches[0]!.cgroups = [{ id: VM_CG, path: '/machine.slice/machine-qemu\\x2d3\\x2dguest\\x2da.scope/libvirt/emulator' },
    { id: POD_CG, path: `/kubepods.slice/kubepods-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${CID}.scope`, podName: 'net/dpdk-0' }];
  batches[0]!.stacks = [{ id: 11, frames: ['vmlinux:down_write+0x0', 'vfio_pci_core:vfio_pci_ioctl_reset+0x80'] }, { id: 12, frames: ZAP_STACK }];
  return batches;
}

let client: ClickHouseClient;
let api: TestApi;

beforeAll(async () => {
  const t0 = Date.now() - 60_000;
  const conn = await connect({ dataDir: mkdtempSync(join(tmpdir(), 'rs-who-')) });
  client = conn.client;
  const store = new ClickHouseStore(client, { now: () => t0 });
  await store.migrate();
  // host-a through decoded batches, host-b through the wire scan (the embedded pipeline's path)
  const a = trace('host-a'), b = trace('host-b');
  for (const batch of a) await store.writeBatch(batch);
  const scan = new BatchScan();
  for (const batch of b) await store.writeScan(scan.read(v1.EventBatch.encode(batch as revokescope.v1.IEventBatch).finish()));
  const res = analyzeBatches([...a, ...b]);
  expect(res.findings.filter((f) => f.kind === FindingKind.SKIPPED_ZAP && !f.inconclusive)).toHaveLength(2);
  await store.writeEpisodes(res.episodes);
  await store.writeFindings(res.findings);
  await store.flush();
  api = await startApi(client);
}, 120_000);

afterAll(async () => {
  await api?.app.close();
  await client?.close();
});

const get = async (path: string): Promise<{ status: number; body: Record<string, unknown> }> => {
  const r = await fetch(`${api.url}${path}`);
  return { status: r.status, body: await r.json() as Record<string, unknown> };
};

describe('store: workload and stacks round trip (chDB)', () => {
  it('raw events keep their cgroup and stack ids, from decoded batches and from the wire scan alike', async () => {
    const rs = await client.query({ query: `SELECT hostname, toString(kind) AS kind, cgroup_id, stack_id FROM revokescope.events FINAL
      WHERE kind IN ('lockAcquire', 'zap') ORDER BY hostname, ts_ns`, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
    const rows = await rs.json<{ hostname: string; kind: string; cgroup_id: number; stack_id: number }>();
    const per = (h: string) => rows.filter((r) => r.hostname === h).map((r) => [r.kind, r.cgroup_id, r.stack_id]);
    expect(per('host-a')).toEqual([['lockAcquire', VM_CG, 11], ['lockAcquire', POD_CG, 11], ['zap', POD_CG, 12], ['zap', 0, 12]]);
    expect(per('host-b')).toEqual(per('host-a'));
  });

  it('the cgroup table stores the path and what it names; the stack table the frames', async () => {
    const rs = await client.query({ query: `SELECT hostname, cgroup_id, path, vm, pod_uid, pod_name, container_id FROM revokescope.cgroups FINAL
      ORDER BY hostname, cgroup_id`, format: 'JSONEachRow', clickhouse_settings: { output_format_json_quote_64bit_integers: 0 } });
    const rows = await rs.json<Record<string, unknown>>();
    expect(rows).toHaveLength(4);
    expect(rows[0]).toEqual({ hostname: 'host-a', cgroup_id: VM_CG, path: '/machine.slice/machine-qemu\\x2d3\\x2dguest\\x2da.scope/libvirt/emulator',
      vm: 'guest-a', pod_uid: '', pod_name: '', container_id: '' });
    expect(rows[1]).toMatchObject({ cgroup_id: POD_CG, vm: '', pod_uid: UID, pod_name: 'net/dpdk-0', container_id: CID });
    expect(rows.slice(2).map((r) => ({ ...r, hostname: 'host-a' }))).toEqual(rows.slice(0, 2));
    const reader = new StoreReader(client, 'revokescope');
    for (const host of ['host-a', 'host-b']) {
      const stacks = await reader.kernelStacks(host, `boot-${host}`, [11, 12, 99]);
      expect([...stacks.keys()].sort()).toEqual([11, 12]);
      expect(stacks.get(12)).toEqual(ZAP_STACK);
    }
  });
});

describe('API: episodes and findings by VM, pod and comm (real HTTP)', () => {
  it('episodes carry the workload and filter by vm, pod (UID or namespace/name) and comm', async () => {
    const all = await get('/api/v1/episodes?host=host-a');
    expect(all.status).toBe(200);
    const eps = all.body.episodes as Record<string, unknown>[];
    expect(eps).toHaveLength(2);
    expect(eps.find((e) => e.comm === 'dpdk-testpmd')).toMatchObject({ cgroupId: String(POD_CG), podUid: UID, podName: 'net/dpdk-0',
      containerId: CID, vm: '', acquireStackId: '11' });
    const vm = await get('/api/v1/episodes?vm=guest-a');
    expect((vm.body.episodes as Record<string, unknown>[]).map((e) => [e.hostname, e.vm, e.comm]).sort())
      .toEqual([['host-a', 'guest-a', 'qemu'], ['host-b', 'guest-a', 'qemu']]);
    for (const pod of [UID, 'net/dpdk-0']) {
      const r = await get(`/api/v1/episodes?pod=${encodeURIComponent(pod)}&host=host-b`);
      expect((r.body.episodes as Record<string, unknown>[]).map((e) => e.comm)).toEqual(['dpdk-testpmd']);
    }
    expect(((await get('/api/v1/episodes?vm=nope')).body.episodes as unknown[])).toEqual([]);
    expect(((await get('/api/v1/episodes?comm=dpdk-testpmd&vm=guest-a')).body.episodes as unknown[])).toEqual([]);
  });

  it('findings filter through their episode: the VM\'s skipped zap, none for the pod', async () => {
    const vm = await get('/api/v1/findings?vm=guest-a&kind=SKIPPED_ZAP');
    expect(vm.status).toBe(200);
    expect((vm.body.findings as Record<string, unknown>[]).map((f) => [f.hostname, f.kind, f.inconclusive]).sort()).toEqual([
      ['host-a', 'SKIPPED_ZAP', false], ['host-b', 'SKIPPED_ZAP', false]]);
    expect(((await get('/api/v1/findings?vm=guest-a&host=host-a')).body.findings as unknown[])).toHaveLength(1);
    expect(((await get('/api/v1/findings?comm=qemu&kind=SKIPPED_ZAP')).body.findings as unknown[])).toHaveLength(2);
    expect(((await get(`/api/v1/findings?pod=${UID}`)).body.findings as unknown[])).toEqual([]);
    expect(((await get('/api/v1/findings?pod=net%2Fdpdk-0&kind=SKIPPED_ZAP')).body.findings as unknown[])).toEqual([]);
    // a finding outside an episode: its task from its evidence (comm alone); no VM or pod is known for it
    const rogue = (await get('/api/v1/findings?comm=rogue')).body.findings as Record<string, unknown>[];
    expect(rogue.map((f) => [f.hostname, f.kind, f.episodeId]).sort()).toEqual([['host-a', 'LOCK_NOT_HELD', ''], ['host-b', 'LOCK_NOT_HELD', '']]);
    expect(((await get('/api/v1/findings?comm=rogue&vm=guest-a')).body.findings as unknown[])).toEqual([]);
  });

  it('rejects control characters and empty names (400, never 5xx)', async () => {
    for (const q of ['vm=', 'vm=a%0Ab', 'pod=%00', 'comm=']) {
      expect((await get(`/api/v1/episodes?${q}`)).status).toBe(400);
      expect((await get(`/api/v1/findings?${q}`)).status).toBe(400);
    }
  });
});
