// fast-check arbitraries for protobuf Events: every field, optional bools unset/false/true, non-ASCII names,
// 64-bit values up to 2^53 (what protobufjs gives as numbers with util.Long disabled). `event` gives events every
// reader must accept (the checks of services/core/validate.ts hold); `anyEvent` also gives ones they must reject.
import fc from 'fast-check';
import type { Event } from '../../services/core/model.js';

export const u64 = fc.maxSafeInteger().map((x) => Math.abs(x));
export const u32 = fc.nat({ max: 0xffffffff });
export const s32 = fc.integer({ min: -0x80000000, max: 0x7fffffff });
const DAY_NS = 86_400e9;
/** Durations below one day (validate.ts: longer is garbage). */
export const durationNs = fc.nat({ max: DAY_NS - 1 });
const bar = fc.nat({ max: 5 });
const power = fc.nat({ max: 5 });
const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const hex = (n: number) => fc.array(fc.constantFrom(...'0123456789abcdefABCDEF'), { minLength: n, maxLength: n }).map((c) => c.join(''));
/** PCI addresses as validate.ts accepts them (domain of 4–8 hex digits). */
export const pciAddress = fc.tuple(fc.integer({ min: 4, max: 8 }).chain(hex), hex(2), hex(2), fc.nat({ max: 7 }))
  .map(([d, b, s, f]) => `${d}:${b}:${s}.${f}`);

export const body = fc.oneof(
  fc.record({ deviceInfo: fc.record({ driver: fc.string(), zapBarsOnRevoke: optional(fc.boolean()), dmabufBarMmap: fc.boolean(),
    memoryEnabled: optional(fc.boolean()), powerState: optional(power), revoked: optional(fc.boolean()), openCount: optional(u32),
    noCommandMemory: optional(fc.boolean()), customVmOpsBars: optional(fc.nat({ max: 63 })) }, { requiredKeys: ['driver', 'dmabufBarMmap'] }) }),
  fc.record({ lockAcquire: fc.record({ waitNs: durationNs }) }),
  fc.record({ lockRelease: fc.constant({}) }),
  fc.record({ zap: fc.record({ start: u64, length: u64, durationNs, target: fc.integer({ min: 0, max: 2 }),
    hadVmas: optional(fc.boolean()) }, { requiredKeys: ['start'] }) }),
  fc.record({ dmabufRevoke: fc.record({ revoked: fc.boolean(), dmabufCount: u32, durationNs,
    deviceHasVmas: optional(fc.boolean()) }, { requiredKeys: [] }) }),
  fc.record({ moveNotify: fc.record({ dmabufId: u64, importerCount: u32, durationNs }) }),
  fc.record({ barMmap: fc.record({ bar, backing: fc.integer({ min: 0, max: 3 }), mappingId: u64, length: u64, snapshot: fc.boolean() }) }),
  fc.record({ barMunmap: fc.record({ bar, mappingId: u64 }) }),
  fc.record({ barFault: fc.record({ bar, mappingId: u64, ok: fc.boolean() }) }),
  fc.record({ trigger: fc.record({ kind: fc.integer({ min: 0, max: 12 }), groupId: u64 }) }),
  fc.record({ triggerEnd: fc.record({ kind: fc.integer({ min: 0, max: 12 }), ret: s32 }) }),
  fc.record({ powerTransition: fc.record({ from: power, to: power, durationNs }) }),
  fc.record({ resetFunction: fc.record({ ret: s32, durationNs }) }),
);

/** Events every reader accepts: a body, ts > 0, a PCI address, fields in range; any comm, cpu, pid, tid. */
export const event = fc.tuple(fc.record({ tsNs: u64.filter((t) => t > 0), cpu: u32, pid: u32, tid: u32, comm: fc.string(), device: pciAddress },
  { requiredKeys: ['tsNs', 'device'] }), body).map(([head, b]) => ({ ...head, ...b }) as Event);

/** Events with any value in every field, most of which a reader must reject (no body, ts 0, a device that is not a
 * PCI address, BARs and power states out of range, unknown enums, durations of more than a day, several bodies). */
export const anyEvent = fc.tuple(
  fc.record({ tsNs: u64, cpu: u32, pid: u32, tid: u32, comm: fc.string(), device: fc.oneof(pciAddress, fc.string()) }, { requiredKeys: [] }),
  fc.oneof(body, fc.constant({}), fc.tuple(body, body).map(([a, b]) => ({ ...a, ...b })),
    fc.record({ barFault: fc.record({ bar: u32, mappingId: u64, ok: fc.boolean() }) }),
    fc.record({ zap: fc.record({ start: u64, length: u64, durationNs: u64, target: fc.integer({ min: -3, max: 9 }) }) }),
    fc.record({ trigger: fc.record({ kind: fc.integer({ min: -1, max: 40 }), groupId: u64 }) }),
    fc.record({ powerTransition: fc.record({ from: u32, to: u32, durationNs: u64 }) }),
    fc.record({ deviceInfo: fc.record({ driver: fc.string(), dmabufBarMmap: fc.boolean(), powerState: u32, customVmOpsBars: u32 }) })),
).map(([head, b]) => ({ ...head, ...b }) as Event);
