// fast-check arbitraries for protobuf Events: every field, optional bools unset/false/true, non-ASCII names,
// 64-bit values up to 2^53 (what protobufjs gives as numbers with util.Long disabled).
import fc from 'fast-check';
import type { Event } from '../../services/core/model.js';

export const u64 = fc.maxSafeInteger().map((x) => Math.abs(x));
export const u32 = fc.nat({ max: 0xffffffff });
export const body = fc.oneof(
  fc.record({ deviceInfo: fc.record({ driver: fc.string(), zapBarsOnRevoke: fc.boolean(), dmabufBarMmap: fc.boolean() }) }),
  fc.record({ lockAcquire: fc.record({ waitNs: u64 }) }),
  fc.record({ lockRelease: fc.constant({}) }),
  fc.record({ zap: fc.record({ start: u64, length: u64, durationNs: u64, target: fc.integer({ min: 0, max: 2 }),
    hadVmas: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: ['start'] }) }),
  fc.record({ dmabufRevoke: fc.record({ revoked: fc.boolean(), dmabufCount: u32, durationNs: u64,
    deviceHasVmas: fc.option(fc.boolean(), { nil: undefined }) }, { requiredKeys: [] }) }),
  fc.record({ moveNotify: fc.record({ dmabufId: u64, importerCount: u32, durationNs: u64 }) }),
  fc.record({ barMmap: fc.record({ bar: u32, backing: fc.integer({ min: 0, max: 3 }), mappingId: u64, length: u64, snapshot: fc.boolean() }) }),
  fc.record({ barMunmap: fc.record({ bar: u32, mappingId: u64 }) }),
  fc.record({ barFault: fc.record({ bar: u32, mappingId: u64, ok: fc.boolean() }) }),
  fc.record({ trigger: fc.record({ kind: fc.integer({ min: 0, max: 11 }), groupId: u64 }) }),
  fc.constant({}),
);
export const event = fc.tuple(fc.record({ tsNs: u64, cpu: u32, pid: u32, tid: u32, comm: fc.string(), device: fc.string() },
  { requiredKeys: [] }), body).map(([head, b]) => ({ ...head, ...b }) as Event);
