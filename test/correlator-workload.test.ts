// Episodes carry the acquiring task's workload (issue 17): the LockAcquire's cgroup id, named through the boot's cgroup
// table (EventBatch.cgroups), the same from decoded batches, from bytes and across a checkpoint.
import { describe, expect, it } from 'vitest';
import { analyzeBatches, analyzeFrames } from '../services/core/analysis.js';
import { Correlator } from '../services/core/correlator/index.js';
import { v1, type EventBatch } from '../services/core/model.js';
import type { revokescope } from '../gen/proto.js';
import { TraceBuilder, TriggerKind } from './support/trace-builder.js';

const DEV = '0000:3b:00.0';
const UID = '1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const VM_CG = 901, POD_CG = 902, UNSENT_CG = 903;

function trace(): EventBatch[] {
  const b = new TraceBuilder('6.12').info(0, DEV);
  // a VM's QEMU resets the device; then a pod's DPDK process; then a task whose cgroup path was never sent
  b.trigger(10, DEV, TriggerKind.RESET).acquire(11, DEV).zap(12, DEV).release(40, DEV).triggerEnd(41, DEV, TriggerKind.RESET);
  b.trigger(100, DEV, TriggerKind.RESET, 200).acquire(101, DEV, 200).zap(102, DEV, { tid: 200 }).release(140, DEV, 200)
    .triggerEnd(141, DEV, TriggerKind.RESET, 0, 200);
  b.trigger(200, DEV, TriggerKind.RESET, 300).acquire(201, DEV, 300).zap(202, DEV, { tid: 300 }).release(240, DEV, 300)
    .triggerEnd(241, DEV, TriggerKind.RESET, 0, 300);
  for (const e of b.events) {
    e.cgroupId = e.tid === 100 ? VM_CG : e.tid === 200 ? POD_CG : e.tid === 300 ? UNSENT_CG : 0;
    if (e.lockAcquire) e.stackId = 7;
  }
  const batches = b.batches(4);
  // the table travels with the first batch that names each cgroup (as the agent sends it)
  batches[0]!.cgroups = [{ id: VM_CG, path: '/machine.slice/machine-qemu\\x2d1\\x2dvm1.scope/libvirt/emulator' }];
  batches[2]!.cgroups = [{ id: POD_CG, path: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID.replace(/-/g, '_')}.slice/cri-containerd-${'ab'.repeat(32)}.scope`,
    podName: 'net/dpdk-0' }];
  return batches;
}

const encode = (b: EventBatch): Uint8Array => v1.EventBatch.encode(b as revokescope.v1.IEventBatch).finish();

describe('episodes carry the acquiring task\'s workload', () => {
  it('names the VM, the pod (UID, name) and the container; a cgroup whose path was not sent stays unnamed', () => {
    const { episodes } = analyzeBatches(trace());
    expect(episodes.map((e) => [e.pid, e.cgroupId, e.vm, e.podUid, e.podName, e.containerId, e.acquireStackId])).toEqual([
      [100, VM_CG, 'vm1', '', '', '', 7],
      [200, POD_CG, '', UID, 'net/dpdk-0', 'ab'.repeat(32), 7],
      [300, UNSENT_CG, '', '', '', '', 7],
    ]);
  });

  it('the same from bytes (wire reader) as from decoded batches', () => {
    const batches = trace();
    expect(analyzeFrames(batches.map(encode))).toEqual(analyzeBatches(batches));
  });

  it('the cgroup table survives a checkpoint', () => {
    const batches = trace();
    const a = new Correlator();
    a.ingestBytes(encode(batches[0]!));
    const b = Correlator.restore(a.snapshot());
    for (const batch of batches.slice(1)) b.ingestBytes(encode(batch));
    b.finish();
    expect(b.takeEpisodes()[0]).toMatchObject({ vm: 'vm1', cgroupId: VM_CG });
  });
});

describe('findings name the kernel stack of the event they rest on', () => {
  it('a zap by a task that does not hold memory_lock: LOCK_NOT_HELD with that zap\'s stack id', () => {
    const b = new TraceBuilder('6.12').info(0, DEV);
    b.acquire(10, DEV).release(20, DEV).acquire(30, DEV).zap(31, DEV, { tid: 200 }).release(40, DEV);
    for (const e of b.events) if (e.zap) e.stackId = 99;
    const { findings } = analyzeBatches(b.batches());
    const f = findings.find((x) => x.kind === v1.FindingKind.LOCK_NOT_HELD)!;
    expect(JSON.parse(f.evidence)).toMatchObject({ stackId: 99 });
    // without stacks the evidence is as before
    for (const e of b.events) delete e.stackId;
    expect(JSON.parse(analyzeBatches(b.batches()).findings.find((x) => x.kind === v1.FindingKind.LOCK_NOT_HELD)!.evidence).stackId).toBeUndefined();
  });
});
