// Boundary checks on an EventBatch: the facts the correlator relies on (docs/design.md §3, §8). One set of rules for every
// reader: `validateBatch` checks decoded objects (proto3 JSON input), and the wire reader (wire.ts) runs the same
// `checkEventHead` / `checkBody` on each event it scans, so the JSON path, `analyze` of .pb files, the embedded
// pipeline and the Kafka consumer accept and reject the same batches with the same reason. Pure.
//  - host is set with a non-empty hostname and boot_id: state is keyed by (hostname, boot_id, device);
//  - 64-bit counters (first_seq, dropped, now_ns) and every time/duration are non-negative integers below 2^64 as
//    numbers (2^64 - 1 read into a double is 2^64, which encodes as 0);
//  - every event carries exactly one body (the oneof) and a device that looks like a PCI address
//    (domain:bus:slot.function, hex; the domain may be 4–8 digits, e.g. VMD's 10000:);
//  - ts_ns > 0 (CLOCK_MONOTONIC is never 0 when a probe fires; 0 means the field was never set);
//  - durations and lock waits below one day: anything longer is a unit error or garbage, not a revoke;
//  - BAR indexes 0..5 (vfio_pci_core_mmap() refuses the ROM and config regions), PCI power states 0..5;
//  - enum values are names the schema knows (a decoder lets unknown numbers through);
//  - DmaBufRevoke.dmabuf_count, MoveNotify.importer_count are plain uint32 (checked by the codecs);
//  - string fields are UTF-8 (proto3 says so): the wire reader checks their bytes, these checks a decoded string for a
//    lone surrogate (the one thing without a UTF-8 form).
import { v1, type BodyKind, type Event, type EventBatch } from './model.js';

/** A problem inside one message, with the field path (e.g. `events[3].zap.target`). */
export class FieldError extends Error {
  override readonly name = 'FieldError';
  constructor(readonly path: string, readonly problem: string) {
    super(path ? `${path}: ${problem}` : problem);
  }
}

export const MAX_DURATION_NS = 86_400 * 1e9;
/** The reason for a string field that is not UTF-8, on every path. */
export const INVALID_UTF8 = 'invalid UTF-8 (a proto3 string must be UTF-8)';
/** A lone surrogate: the one thing a JS string can hold that has no UTF-8 form (protobufjs would encode it as the
 * invalid bytes of a surrogate, which the wire reader rejects). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** A string field of a decoded message: no lone surrogate (its UTF-8 is what the wire reader checks). */
function utf8(v: unknown, at: At, field: string): void {
  if (typeof v === 'string' && v.length > 0 && LONE_SURROGATE.test(v)) throw new FieldError(where(at, field), `${INVALID_UTF8}: a lone surrogate`);
}

const PCI_ADDRESS = /^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;
export const BODIES = ['deviceInfo', 'lockAcquire', 'lockRelease', 'zap', 'dmabufRevoke', 'moveNotify', 'barMmap',
  'barMunmap', 'barFault', 'trigger', 'triggerEnd', 'powerTransition', 'resetFunction'] as const satisfies readonly BodyKind[];
const MAX_BAR = 5;
/** pci_power_t: PCI_D0 … PCI_D3cold (4); PCI_UNKNOWN (5) is what the kernel reports before it knows. */
const MAX_POWER_STATE = 5;
/** custom_vm_ops_bars: one bit per BAR 0..5. */
const BAR_MASK_LIMIT = 1 << (MAX_BAR + 1);

/** Where a field is: an event index (events[i]) or a path, plus the field. Built only for an error: the checks
 * run on every event of every batch, and eager path strings cost as much as decoding. */
type At = number | string;
const where = (at: At, field: string): string => {
  const base = typeof at === 'number' ? `events[${at}]` : at;
  return field ? `${base}.${field}` : base;
};

function nonNegativeInteger(v: unknown, at: At, field: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    throw new FieldError(where(at, field), `expected a non-negative integer, got ${String(v)}`);
  }
  if (v >= U64_LIMIT) throw new FieldError(where(at, field), outOfUint64(v));
}

/** 2^64: a uint64 from 2^64 - 1024 up is this as a JS number, which has no uint64 encoding (protobufjs writes it, and
 * any larger number, modulo 2^64: 2^64 as 0). Every reader rejects it: the .pb path reads such a varint as 2^64, the .jsonl path such a decimal. */
const U64_LIMIT = 2 ** 64;
const outOfUint64 = (v: number): string => `${String(v)} is not below 2^64, outside uint64 (from 2^64 - 1024 up, a uint64 is 2^64 as a number)`;

/** uint32 and sint32 fields: a number outside the type has no encoding (protobufjs writes it modulo 2^32: 2^32 as 0,
 * -1 as 2^32 - 1), so every reader rejects it; the .pb path cannot even read one. */
function uint32(v: unknown, at: At, field: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= 2 ** 32) {
    throw new FieldError(where(at, field), `expected a uint32 (an integer from 0 to 2^32 - 1), got ${String(v)}`);
  }
}

function sint32(v: unknown, at: At, field: string): void {
  if (v === undefined || v === null) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) {
    throw new FieldError(where(at, field), `expected a sint32 (an integer from -2^31 to 2^31 - 1), got ${String(v)}`);
  }
}

function duration(v: unknown, at: At, field: string): void {
  nonNegativeInteger(v, at, field);
  if (typeof v === 'number' && v >= MAX_DURATION_NS) {
    throw new FieldError(where(at, field), `absurd duration ${v} ns (≥ 1 day)`);
  }
}

/** Generated enums map NAME → number (own keys) and number → NAME (inherited): the numbers each one knows, as the
 * largest of a contiguous 0..max (every enum of the schema is) or a set. */
const enumNumbers = new Map<object, number | Set<unknown>>();

function known(values: object): number | Set<unknown> {
  let k = enumNumbers.get(values);
  if (k === undefined) {
    const nums = Object.values(values).filter((x): x is number => typeof x === 'number');
    const max = Math.max(...nums);
    k = nums.length === max + 1 && nums.every((x) => Number.isInteger(x) && x >= 0) ? max : new Set<unknown>(nums);
    enumNumbers.set(values, k);
  }
  return k;
}

function knownEnum(values: object, name: string, v: unknown, at: At, field: string): void {
  if (v === undefined || v === null) return;
  const k = known(values);
  const ok = typeof k === 'number' ? typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= k : k.has(v);
  if (!ok) throw new FieldError(where(at, field), `unknown ${name} value ${String(v)}`);
}

function powerState(v: unknown, at: At, field: string): void {
  nonNegativeInteger(v, at, field);
  if (typeof v === 'number' && v > MAX_POWER_STATE) throw new FieldError(where(at, field), `PCI power state ${v} outside D0..D3cold (0..4) and unknown (5)`);
}

function bar(v: unknown, at: At, field: string): void {
  nonNegativeInteger(v, at, field);
  if (typeof v === 'number' && v > MAX_BAR) throw new FieldError(where(at, field), `BAR index ${v} outside 0..${MAX_BAR}`);
}

/** The largest number of an enum whose numbers are 0..max (-1: not contiguous). */
function enumMax(values: object): number {
  const k = known(values);
  return typeof k === 'number' ? k : -1;
}

/** The checks of checkBody as limits on the numbers a body carries on the wire (varints: integers from 0). The wire
 * reader's fast path accepts a body only within them, and sends everything else through checkBody, so a body the fast
 * path accepts is one checkBody passes. */
export const WIRE_LIMITS = {
  /** nonNegativeInteger: below 2^64 */ u64: U64_LIMIT,
  /** duration: below one day */ durationNs: MAX_DURATION_NS,
  bar: MAX_BAR,
  powerState: MAX_POWER_STATE,
  zapTarget: enumMax(v1.Zap.ZapTarget),
  backing: enumMax(v1.BarMmap.Backing),
  triggerKind: enumMax(v1.TriggerKind),
} as const;

/** Device strings already checked (bounded: cleared when full). */
const goodDevices = new Set<string>();

/** 1 for the bytes of 0-9, A-F, a-f. */
const HEX = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;
const isHex = (c: number): boolean => HEX[c] === 1;

/** PCI_ADDRESS on UTF-8 bytes, without decoding them (the wire reader checks every event's device this way). */
export function pciAddressBytes(b: Uint8Array, from: number, to: number): boolean {
  const n = to - from;
  if (n < 12 || n > 16) return false;
  const domain = n - 8; // dd:ss.f after the domain's ':'
  for (let i = 0; i < domain; i++) if (!isHex(b[from + i]!)) return false;
  const r = from + domain;
  return b[r] === 0x3a && isHex(b[r + 1]!) && isHex(b[r + 2]!) && b[r + 3] === 0x3a && isHex(b[r + 4]!) && isHex(b[r + 5]!)
    && b[r + 6] === 0x2e && b[r + 7]! >= 0x30 && b[r + 7]! <= 0x37;
}

/** An event's own fields: exactly one body (`bodies` of them seen, the last `body`), ts_ns, device (`null` with
 * `deviceChecked`: the caller checked its bytes with pciAddressBytes). */
export function checkEventHead(bodies: number, body: BodyKind | undefined, tsNs: unknown, device: string | null | undefined,
  at: At, present: () => string[], deviceChecked = false): void {
  if (bodies === 0) throw new FieldError(where(at, ''), 'event has no body (one of deviceInfo, lockAcquire, ..., trigger)');
  if (bodies > 1) throw new FieldError(where(at, ''), `event has several bodies: ${present().join(', ')}`);
  if (!tsNs || typeof tsNs !== 'number' || !Number.isInteger(tsNs) || tsNs <= 0) {
    throw new FieldError(where(at, 'tsNs'), `must be a positive integer (CLOCK_MONOTONIC ns), got ${String(tsNs ?? 0)}`);
  }
  if (tsNs >= U64_LIMIT) throw new FieldError(where(at, 'tsNs'), outOfUint64(tsNs));
  if (deviceChecked) return;
  if (!device) throw new FieldError(where(at, 'device'), `missing on a ${body!} event`);
  if (!goodDevices.has(device)) {
    if (!PCI_ADDRESS.test(device)) {
      throw new FieldError(where(at, 'device'), `${JSON.stringify(device)} is not a PCI address like 0000:3b:00.0`);
    }
    if (goodDevices.size >= 65_536) goodDevices.clear();
    goodDevices.add(device);
  }
}

/** The fields of one body message (`msg`, of kind `body`): ranges, enums, durations. */
export function checkBody(body: BodyKind, msg: object, at: At): void {
  switch (body) {
    case 'lockAcquire': duration((msg as NonNullable<Event['lockAcquire']>).waitNs, at, 'lockAcquire.waitNs'); break;
    case 'zap': {
      const z = msg as NonNullable<Event['zap']>;
      nonNegativeInteger(z.start, at, 'zap.start');
      nonNegativeInteger(z.length, at, 'zap.length');
      duration(z.durationNs, at, 'zap.durationNs');
      knownEnum(v1.Zap.ZapTarget, 'ZapTarget', z.target, at, 'zap.target');
      break;
    }
    case 'dmabufRevoke': {
      const r = msg as NonNullable<Event['dmabufRevoke']>;
      uint32(r.dmabufCount, at, 'dmabufRevoke.dmabufCount');
      duration(r.durationNs, at, 'dmabufRevoke.durationNs');
      break;
    }
    case 'moveNotify': {
      const m = msg as NonNullable<Event['moveNotify']>;
      nonNegativeInteger(m.dmabufId, at, 'moveNotify.dmabufId');
      uint32(m.importerCount, at, 'moveNotify.importerCount');
      duration(m.durationNs, at, 'moveNotify.durationNs');
      (m.importers ?? []).forEach((x) => utf8(x, at, 'moveNotify.importers'));
      break;
    }
    case 'barMmap': {
      const m = msg as NonNullable<Event['barMmap']>;
      bar(m.bar, at, 'barMmap.bar');
      knownEnum(v1.BarMmap.Backing, 'Backing', m.backing, at, 'barMmap.backing');
      nonNegativeInteger(m.mappingId, at, 'barMmap.mappingId');
      nonNegativeInteger(m.length, at, 'barMmap.length');
      break;
    }
    case 'barMunmap': {
      const m = msg as NonNullable<Event['barMunmap']>;
      bar(m.bar, at, 'barMunmap.bar');
      nonNegativeInteger(m.mappingId, at, 'barMunmap.mappingId');
      break;
    }
    case 'barFault': {
      const m = msg as NonNullable<Event['barFault']>;
      bar(m.bar, at, 'barFault.bar');
      nonNegativeInteger(m.mappingId, at, 'barFault.mappingId');
      break;
    }
    case 'trigger': {
      const t = msg as NonNullable<Event['trigger']>;
      knownEnum(v1.TriggerKind, 'TriggerKind', t.kind, at, 'trigger.kind');
      nonNegativeInteger(t.groupId, at, 'trigger.groupId');
      break;
    }
    case 'triggerEnd': {
      const t = msg as NonNullable<Event['triggerEnd']>;
      knownEnum(v1.TriggerKind, 'TriggerKind', t.kind, at, 'triggerEnd.kind');
      sint32(t.ret, at, 'triggerEnd.ret');
      break;
    }
    case 'powerTransition': {
      const p = msg as NonNullable<Event['powerTransition']>;
      powerState(p.from, at, 'powerTransition.from');
      powerState(p.to, at, 'powerTransition.to');
      duration(p.durationNs, at, 'powerTransition.durationNs');
      break;
    }
    case 'resetFunction': {
      const r = msg as NonNullable<Event['resetFunction']>;
      sint32(r.ret, at, 'resetFunction.ret');
      duration(r.durationNs, at, 'resetFunction.durationNs');
      break;
    }
    case 'deviceInfo': {
      const d = msg as NonNullable<Event['deviceInfo']>;
      utf8(d.driver, at, 'deviceInfo.driver');
      powerState(d.powerState, at, 'deviceInfo.powerState');
      uint32(d.openCount, at, 'deviceInfo.openCount');
      uint32(d.customVmOpsBars, at, 'deviceInfo.customVmOpsBars');
      if (d.customVmOpsBars != null && d.customVmOpsBars >= BAR_MASK_LIMIT) {
        throw new FieldError(where(at, 'deviceInfo.customVmOpsBars'), `BAR bitmask ${d.customVmOpsBars} has bits above BAR ${MAX_BAR}`);
      }
      break;
    }
    default: break;
  }
}

/** The batch's own fields: host (hostname, boot_id, capabilities), first_seq, dropped, now_ns. */
export function checkBatchHead(batch: Omit<EventBatch, 'events'>): void {
  checkHost(batch.host);
  checkBatchCounters(batch);
}

/** EventBatch.host: present, hostname and boot_id non-empty, strings UTF-8, capabilities known. (The wire reader runs
 * it once per distinct HostInfo bytes: a host sends the same one in every batch.) */
export function checkHost(host: EventBatch['host']): void {
  if (!host) throw new FieldError('host', 'missing (hostname and bootId identify the event stream)');
  if (!host.hostname) throw new FieldError('host.hostname', 'missing or empty');
  if (!host.bootId) throw new FieldError('host.bootId', 'missing or empty');
  utf8(host.hostname, 'host.hostname', ''); utf8(host.bootId, 'host.bootId', '');
  utf8(host.kernelRelease, 'host.kernelRelease', ''); utf8(host.collectorVersion, 'host.collectorVersion', '');
  const caps = host.capabilities ?? [];
  for (let i = 0; i < caps.length; i++) knownEnum(v1.Capability, 'Capability', caps[i], `host.capabilities[${i}]`, '');
}

/** first_seq, dropped, now_ns. */
export function checkBatchCounters(batch: Pick<EventBatch, 'firstSeq' | 'dropped' | 'nowNs'>): void {
  nonNegativeInteger(batch.firstSeq, 'firstSeq', '');
  nonNegativeInteger(batch.dropped, 'dropped', '');
  nonNegativeInteger(batch.nowNs, 'nowNs', '');
}

export function validateEvent(ev: Event, path: string): void {
  checkEvent(ev, path);
}

function checkEvent(ev: Event, at: At): void {
  // Not ev.body: the generated oneof getter walks Object.keys() on every call; named reads, not ev[b] in a loop
  // (keyed reads of ten names go megamorphic on the hot path).
  let body: BodyKind | undefined;
  let bodies = 0;
  if (ev.deviceInfo != null) { bodies++; body = 'deviceInfo'; }
  if (ev.lockAcquire != null) { bodies++; body = 'lockAcquire'; }
  if (ev.lockRelease != null) { bodies++; body = 'lockRelease'; }
  if (ev.zap != null) { bodies++; body = 'zap'; }
  if (ev.dmabufRevoke != null) { bodies++; body = 'dmabufRevoke'; }
  if (ev.moveNotify != null) { bodies++; body = 'moveNotify'; }
  if (ev.barMmap != null) { bodies++; body = 'barMmap'; }
  if (ev.barMunmap != null) { bodies++; body = 'barMunmap'; }
  if (ev.barFault != null) { bodies++; body = 'barFault'; }
  if (ev.trigger != null) { bodies++; body = 'trigger'; }
  if (ev.triggerEnd != null) { bodies++; body = 'triggerEnd'; }
  if (ev.powerTransition != null) { bodies++; body = 'powerTransition'; }
  if (ev.resetFunction != null) { bodies++; body = 'resetFunction'; }
  checkEventHead(bodies, body, ev.tsNs, ev.device, at, () => BODIES.filter((b) => ev[b] !== undefined && ev[b] !== null));
  // the event's own 32-bit fields (the wire reader reads them as uint32: always in range)
  uint32(ev.cpu, at, 'cpu'); uint32(ev.pid, at, 'pid'); uint32(ev.tid, at, 'tid');
  utf8(ev.comm, at, 'comm');
  checkBody(body!, ev[body!] as object, at);
}

/** Throws FieldError (with the field path) at the first problem. */
export function validateBatch(batch: EventBatch): void {
  checkBatchHead(batch);
  const events = batch.events ?? [];
  for (let i = 0; i < events.length; i++) checkEvent(events[i]!, i);
}
