// fast-check arbitraries for protobuf Events: every field, optional bools unset/false/true, non-ASCII names,
// 64-bit values up to 2^53 (what protobufjs gives as numbers with util.Long disabled).
import fc from 'fast-check';
import type { Event } from '../../services/core/model.js';

export const u64 = fc.maxSafeInteger().map((x) => Math.abs(x));
export const u32 = fc.nat({ max: 0xffffffff });
export const s32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
export const body = fc.oneof(
  fc.record({ deviceInfo: fc.record({ driver: fc.string(), zapBarsOnRevoke: optional(fc.boolean()), dmabufBarMmap: fc.boolean(),
    memoryEnabled: optional(fc.boolean()), powerState: optional(u32), revoked: optional(fc.boolean()), openCount: optional(u32),
    noCommandMemory: optional(fc.boolean()), customVmOpsBars: optional(u32) }, { requiredKeys: ['driver', 'dmabufBarMmap'] }) }),
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
  fc.record({ trigger: fc.record({ kind: fc.integer({ min: 0, max: 12 }), groupId: u64 }) }),
  fc.record({ triggerEnd: fc.record({ kind: fc.integer({ min: 0, max: 12 }), ret: s32 }) }),
  fc.record({ powerTransition: fc.record({ from: u32, to: u32, durationNs: u64 }) }),
  fc.record({ resetFunction: fc.record({ ret: s32, durationNs: u64 }) }),
  fc.constant({}),
);
export const event = fc.tuple(fc.record({ tsNs: u64, cpu: u32, pid: u32, tid: u32, comm: fc.string(), device: fc.string() },
  { requiredKeys: [] }), body).map(([head, b]) => ({ ...head, ...b }) as Event);
