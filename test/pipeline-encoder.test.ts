// The simulator thread's EventBatch encoder (services/pipeline/batch-encoder.ts) writes exactly the bytes of
// the generated protobufjs encoder, for a simulated fleet and for hand-built edge cases.
import { describe, expect, it } from 'vitest';
import { simulateFleet } from '../collectors/simulator/index.js';
import { Backing, TriggerKind, ZapTarget, v1, type EventBatch } from '../services/core/model.js';
import { BatchEncoder } from '../services/pipeline/batch-encoder.js';
import { encodeChunks } from '../services/pipeline/simulator-worker.js';

const reference = (b: EventBatch) => v1.EventBatch.encode(b).finish();

describe('BatchEncoder', () => {
  it('matches v1.EventBatch.encode byte for byte on a simulated fleet', () => {
    const enc = new BatchEncoder(1024); // small: exercises growth
    let batches = 0;
    for (const b of simulateFleet({ hosts: 24, durationNs: 20e9, seed: 5 })) {
      enc.encode(b);
      expect(Buffer.from(enc.take()).equals(Buffer.from(reference(b)))).toBe(true);
      batches++;
    }
    expect(batches).toBeGreaterThan(100);
  });

  it('matches on edge values: zeros, absent fields, 64-bit and negative numbers, long and non-ASCII strings', () => {
    const long = 'x'.repeat(300);
    const cases: EventBatch[] = [
      {},
      { host: { hostname: 'h', bootId: '', capabilities: [] }, firstSeq: 0, dropped: 0, events: [] },
      { host: { hostname: 'hôst-ü', bootId: 'b', kernelRelease: long, collectorVersion: 'v', capabilities: [1, 2, 8] }, firstSeq: 2 ** 40 + 7, dropped: 3,
        events: [
          { tsNs: 2 ** 53 - 1, cpu: 0, pid: 4294967295, tid: 1, comm: 'CPU 0/KVM', device: '0000:3b:00.0', lockAcquire: { waitNs: 0 } },
          { tsNs: 1, comm: long, lockRelease: {} },
          { zap: { start: 5 * 2 ** 40, length: 6 * 2 ** 40, durationNs: 12, target: ZapTarget.DMABUF, hadVmas: false } },
          { zap: { target: -1 as ZapTarget } },
          { dmabufRevoke: { revoked: true, dmabufCount: 2, durationNs: 3, deviceHasVmas: true } },
          { moveNotify: { dmabufId: 2 ** 33, importerCount: 0, durationNs: -5 } },
          { barMmap: { bar: 5, backing: Backing.CUSTOM_VM_OPS, mappingId: 0x10000, length: 2 ** 36, snapshot: true } },
          { barMunmap: { bar: 0, mappingId: 1 } },
          { barFault: { bar: 2, mappingId: 3, ok: false } },
          { trigger: { kind: TriggerKind.PERMANENT_REVOKE, groupId: 2 ** 52 } },
          { deviceInfo: { driver: 'nvgrace-gpu-vfio-pci', zapBarsOnRevoke: true, dmabufBarMmap: false } },
          { device: 'd', deviceInfo: { driver: long + long }, trigger: { kind: TriggerKind.D0 } },
          { tsNs: 9, device: '0000:3b:00.0', cgroupId: 2 ** 40 + 3, stackId: 2 ** 47 + 1, zap: { durationNs: 1 } },
          { cgroupId: 0, stackId: 0, lockRelease: {} },
        ],
        // the boot's lookup tables (issue 17)
        cgroups: [{ id: 46, path: '/machine.slice/machine-qemu\\x2d1\\x2dvm.scope' }, { id: 2 ** 33, path: long, podName: 'ns/pöd' }, {}],
        stacks: [{ id: 1, frames: ['vfio_pci_core_ioctl', long] }, { id: 2 ** 47, frames: [] }] },
    ];
    const enc = new BatchEncoder(64);
    for (const b of cases) {
      enc.encode(b);
      expect(Buffer.from(enc.take()).toString('hex')).toBe(Buffer.from(reference(b)).toString('hex'));
    }
  });

  it('chunks: batch boundaries and keys let the consumer decode every batch back', () => {
    const batches = [...simulateFleet({ hosts: 6, durationNs: 10e9, seed: 2 })];
    const chunks = [...encodeChunks(batches, 4096)];
    expect(chunks.length).toBeGreaterThan(1);
    const decoded = chunks.flatMap((c) => {
      let start = 0;
      return [...c.ends].map((end, i) => {
        const b = v1.EventBatch.decode(c.bytes.subarray(start, end));
        expect(b.host?.hostname).toBe(c.keys[i]);
        start = end;
        return b;
      });
    });
    expect(decoded.map((b) => v1.EventBatch.toObject(b, { longs: Number }))).toEqual(
      batches.map((b) => v1.EventBatch.toObject(v1.EventBatch.decode(reference(b)), { longs: Number })));
    expect(chunks.reduce((s, c) => s + c.events, 0)).toBe(batches.reduce((s, b) => s + (b.events?.length ?? 0), 0));
  });
});
