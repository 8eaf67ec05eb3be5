// The wire reader: every protobuf EventBatch that enters revokescope (analyze of .pb files, the embedded pipeline,
// the Kafka consumer) is read here, so every path accepts and rejects the same bytes for the same reason.
// `BatchScan.read` walks a frame once and keeps, per event, only what ordering and routing need (ts, tie-break
// keys, the body's field number, the device name's bytes); `WireEvent.load` decodes one event's body later, into
// reused objects, when the correlator's reorder buffer releases it. Nothing per event outlives the young generation.
// Strict, as the proto says: a known field with the wrong wire type is an error (protobufjs would read it by number
// whatever its wire type), an event must carry exactly one body, and every event passes the same checks as
// decoded batches (validate.ts: ts, device, BAR and power ranges, enums, durations). Unknown fields are skipped.
// Values follow protobufjs' static decoders with util.Long disabled: 64-bit varints as numbers, uint32 truncated to
// 32 bits, a repeated singular field keeps its last value. Field numbers come from gen/fields.js (generated from
// proto/ by the build). Pure.
import {
  BarFaultFields as BF, CgroupFields as CG, KernelStackFields as KS, BarMmapFields as BM, BarMunmapFields as BU, DeviceInfoFields as DI, DmaBufRevokeFields as DR,
  EventBatchFields as EB, EventFields as EV, HostInfoFields as HI, LockAcquireFields as LA, MoveNotifyFields as MN,
  PowerTransitionFields as PT, ResetFunctionFields as RF, TriggerEndFields as TE, TriggerFields as TR, ZapFields as ZP,
} from '../../gen/fields.js';
import {
  type BarFault, type BarMmap, type BarMunmap, type BodyKind, type Capability, type DeviceInfo, type DmaBufRevoke, type Event,
  type Cgroup, type HostInfo, type KernelStack, type MoveNotify, type PowerTransition, type ResetFunction, type Trigger, type TriggerEnd, type Zap,
} from './model.js';
import { BODIES, FieldError, INVALID_UTF8, checkBatchHead, checkBody, checkEventHead, pciAddressBytes } from './validate.js';

/** Bytes that are not a protobuf message at all (truncated, a length past the end, a bad wire type). */
export class WireError extends Error {}

// ---- varint cursor (module state: one reader at a time, no allocation per value) ----
let pos = 0;

function varint(b: Uint8Array, end: number): number {
  if (pos >= end) throw new WireError(`truncated varint at byte ${pos}`);
  let x = b[pos++]!;
  if (x < 0x80) return x;
  x &= 0x7f;
  let mul = 0x80;
  for (let i = 1; i < 7; i++) { // up to 49 bits: exact in a double
    if (pos >= end) throw new WireError(`truncated varint at byte ${pos}`);
    const byte = b[pos++]!;
    x += (byte & 0x7f) * mul;
    if (byte < 0x80) return x;
    mul *= 0x80;
  }
  // bytes 8 to 10: the value's two 32-bit halves, bits past 64 dropped, then one rounding to a double (protobufjs'
  // LongBits.toNumber(true)), so both readers give the same number for a uint64 above 2^53
  const lo = x >>> 0;
  let hi = Math.floor(x / 2 ** 32);
  for (let i = 7; i < 10; i++) {
    if (pos >= end) throw new WireError(`truncated varint at byte ${pos}`);
    const byte = b[pos++]!;
    hi |= (byte & 0x7f) << (7 * i - 32);
    if (byte < 0x80) return lo + (hi >>> 0) * 2 ** 32;
  }
  throw new WireError(`varint longer than 10 bytes at byte ${pos}`);
}

/** A field's tag, (field number << 3) | wire type. The encoding spec makes it a uint32 varint with a field number of
 * 1 or more: a tag of more than 5 bytes, above 32 bits or with field number 0 is not protobuf. (varint() would return
 * a double that loses low bits past 2^53, e.g. 2^64 - 1 read as field 0, wire type 0, where protobufjs' uint32 sees
 * wire type 7.) */
function readTag(b: Uint8Array, end: number): number {
  const from = pos;
  if (from < end && b[from]! >= 8 && b[from]! < 0x80) return b[pos++]!;
  const t = varint(b, end);
  if (pos - from > 5 || t > 0xffff_ffff) throw new WireError(`tag at byte ${from} is not a 32-bit varint`);
  if (t < 8) throw new WireError(`field number 0 at byte ${from}`);
  return t;
}

/** A varint read for a 32-bit field: its low 32 bits, exactly (a 64-bit double cannot hold a 10-byte varint, e.g. a
 * negative int32). Like protobufjs' readUint32, a varint of 6 to 9 bytes is not a 32-bit value: an error. */
function varint32(b: Uint8Array, end: number): number {
  const from = pos;
  let x = 0;
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw new WireError(`truncated varint at byte ${pos}`);
    const byte = b[pos++]!;
    x = (x | ((byte & 0x7f) << (7 * i))) >>> 0;
    if (byte < 0x80) return x;
  }
  // the 10-byte form of a negative int32 (sign-extended to 64 bits)
  for (let i = 5; i < 10; i++) {
    if (pos >= end) throw new WireError(`truncated varint at byte ${pos}`);
    if (b[pos++]! < 0x80) {
      if (i === 9) return x;
      throw new WireError(`a ${i + 1}-byte varint in a 32-bit field at byte ${from}`);
    }
  }
  throw new WireError(`varint longer than 10 bytes at byte ${pos}`);
}
/** int32 (enum) fields: the low 32 bits as a signed value. */
const i32 = (x: number): number => x | 0;
/** sint32 fields: zigzag over the low 32 bits (protobufjs' readSint32). */
const s32 = (u: number): number => ((u >>> 1) ^ -(u & 1)) | 0;

/** Skip a field's value of `wireType` (the tag is read). */
/** Groups nested deeper than this are not read (protobufjs' Reader.recursionLimit is 100): each level is a recursive
 * call, and a frame of 0x3b bytes would otherwise overflow the stack (a RangeError, not a rejection). */
const MAX_GROUP_DEPTH = 100;

function skip(b: Uint8Array, wireType: number, end: number, depth = 0): void {
  switch (wireType) {
    case 0: varint(b, end); return;
    case 1: pos += 8; break;
    case 2: { const n = varint(b, end); pos += n; break; }
    case 5: pos += 4; break;
    case 3: { // group: skip to its end tag
      for (;;) {
        const tag = readTag(b, end);
        const wt = tag & 7;
        if (wt === 4) return;
        if (wt === 3 && depth >= MAX_GROUP_DEPTH) throw new WireError(`groups nested more than ${MAX_GROUP_DEPTH} deep at byte ${pos}`);
        skip(b, wt, end, depth + 1);
      }
    }
    default: throw new WireError(`invalid wire type ${wireType} at byte ${pos}`);
  }
  if (pos > end) throw new WireError(`field runs past the end of its message (byte ${pos})`);
}

/** Start and end of a length-delimited value (the tag is read). */
function lengthDelimited(b: Uint8Array, end: number): number {
  const n = varint(b, end);
  const stop = pos + n;
  if (stop > end) throw new WireError(`length ${n} runs past the end of its message (byte ${pos})`);
  return stop;
}

const WIRE_TYPES = ['varint', 'fixed64', 'length-delimited', 'group start', 'group end', 'fixed32'];

/** A known field arrived with another wire type than the proto gives it. `at`: the event index (-1: none). */
function wrongWireType(at: number, field: string, got: number, want: number, kind = ''): never {
  if (got > 5) throw new WireError(`invalid wire type ${got} at byte ${pos}`);
  const f = kind ? `${kind}.${field}` : field;
  const path = at >= 0 ? `events[${at}]${f ? `.${f}` : ''}` : f;
  throw new FieldError(path, `wire type ${got} (${WIRE_TYPES[got] ?? 'invalid'}), the schema says ${want} (${WIRE_TYPES[want]})`);
}

// proto3 `string` fields must be UTF-8 (the encoding spec; protobufjs does not check, it drops or merges bad bytes).
// ignoreBOM: a leading U+FEFF is a character of the string, as protobufjs reads it, not a mark to strip.
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
const strictUtf8 = new TextDecoder('utf-8', { ignoreBOM: true, fatal: true });
/** Bytes the scan checked (or, in an error message, any bytes: bad ones become U+FFFD). */
const decodeString = (b: Uint8Array, from: number, to: number): string => (from === to ? '' : utf8.decode(b.subarray(from, to)));

/** Whether b[from, to) is UTF-8 (ASCII without decoding). */
export function isUtf8(b: Uint8Array, from: number, to: number): boolean {
  let i = from;
  while (i < to && b[i]! < 0x80) i++;
  if (i === to) return true;
  try { strictUtf8.decode(b.subarray(i, to)); return true; } catch { return false; }
}

/** A string field's bytes, checked: invalid UTF-8 is a FieldError naming the field. `at`: the event index (-1: none). */
function checkUtf8(b: Uint8Array, from: number, to: number, at: number, field: string): void {
  if (!isUtf8(b, from, to)) throw new FieldError(at >= 0 ? `events[${at}].${field}` : field, INVALID_UTF8);
}
/** A checked string field, decoded. */
function utf8String(b: Uint8Array, from: number, to: number, at: number, field: string): string {
  checkUtf8(b, from, to, at, field);
  return decodeString(b, from, to);
}

// ---- the body oneof ----
/** Oneof members by field number (Event.body). */
const BODY_BY_FIELD: (BodyKind | undefined)[] = [];
for (const [name, no] of Object.entries(EV)) if (no >= EV.deviceInfo) BODY_BY_FIELD[no] = name as BodyKind;
export const bodyOfField = (field: number): BodyKind | undefined => BODY_BY_FIELD[field];

// ---- the scan ----
/** One frame's header and per-event columns (reused by the next scan: copy out what you keep). */
export class BatchScan {
  private readonly hosts = new HostInfoCache();
  /** Body objects for checking each event's body (validate.ts). */
  private readonly bodies = new BodyDecoder();
  /** The event being read, and the names of its body members for an error (built only then). */
  private evFrom = 0;
  private evEnd = 0;
  private readonly present = (): string[] => bodiesIn(this.frame, this.evFrom, this.evEnd);
  frame: Uint8Array = new Uint8Array(0);
  host: HostInfo | null = null;
  firstSeq = 0;
  dropped = 0;
  /** EventBatch.now_ns: the collector's clock when it cut the batch (0: not sent). */
  nowNs = 0;
  /** EventBatch.cgroups and .stacks: the per-boot tables' new entries (rare: decoded as they come; empty: none). */
  cgroups: Cgroup[] = [];
  stacks: KernelStack[] = [];
  count = 0;
  /** Per event: [start, end) of its bytes in the frame. */
  start = new Int32Array(64);
  end = new Int32Array(64);
  ts = new Float64Array(64);
  /** Field number of the body member; 0 = none. */
  body = new Uint8Array(64);
  /** Byte offset of the body member's tag. */
  bodyAt = new Int32Array(64);
  tid = new Float64Array(64);
  cpu = new Float64Array(64);
  pid = new Float64Array(64);
  /** [devStart, devEnd) of the device name's UTF-8 bytes. */
  devStart = new Int32Array(64);
  devEnd = new Int32Array(64);
  /** [commStart, commEnd) of the comm's UTF-8 bytes. */
  commStart = new Int32Array(64);
  commEnd = new Int32Array(64);
  /** Event.cgroup_id and Event.stack_id (0: not sent). */
  cgroupId = new Float64Array(64);
  stackId = new Float64Array(64);

  private grow(): void {
    const n = this.start.length * 2;
    const g = <T extends Int32Array | Float64Array | Uint8Array>(a: T, make: new (n: number) => T): T => { const x = new make(n); x.set(a); return x; };
    this.start = g(this.start, Int32Array); this.end = g(this.end, Int32Array); this.ts = g(this.ts, Float64Array);
    this.body = g(this.body, Uint8Array); this.bodyAt = g(this.bodyAt, Int32Array); this.tid = g(this.tid, Float64Array); this.cpu = g(this.cpu, Float64Array);
    this.devStart = g(this.devStart, Int32Array); this.devEnd = g(this.devEnd, Int32Array);
    this.pid = g(this.pid, Float64Array); this.commStart = g(this.commStart, Int32Array); this.commEnd = g(this.commEnd, Int32Array);
    this.cgroupId = g(this.cgroupId, Float64Array); this.stackId = g(this.stackId, Float64Array);
  }

  /** Read and check a length-delimited EventBatch. Throws WireError on bytes that are not protobuf, FieldError (with the
   * field path) on a batch the schema or the checks of validate.ts reject. */
  read(frame: Uint8Array): this {
    this.walk(frame, true);
    checkBatchHead(this);
    return this;
  }

  /** Only the header: host, firstSeq, dropped, the number of events and the first event's ts (ts[0]); the
   * other columns are not filled and nothing is checked beyond framing. Throws WireError on malformed bytes. */
  readHeader(frame: Uint8Array): this { return this.walk(frame, false); }

  private walk(frame: Uint8Array, events: boolean): this {
    this.frame = frame;
    this.host = null;
    this.firstSeq = 0;
    this.dropped = 0;
    this.nowNs = 0;
    this.count = 0;
    if (this.cgroups.length) this.cgroups = [];
    if (this.stacks.length) this.stacks = [];
    const b = frame;
    const end = frame.length;
    pos = 0;
    while (pos < end) {
      const tag = readTag(b, end);
      const field = tag >>> 3, wt = tag & 7;
      if (field === EB.events) {
        if (wt !== 2) wrongWireType(-1, 'events', wt, 2);
        const stop = lengthDelimited(b, end);
        if (events) this.event(b, pos, stop);
        else if (this.count++ === 0) this.ts[0] = eventTs(b, pos, stop);
        pos = stop;
      } else if (field === EB.host) {
        if (wt !== 2) wrongWireType(-1, 'host', wt, 2);
        const stop = lengthDelimited(b, end);
        this.host = this.hosts.get(b, pos, stop);
        pos = stop;
      } else if (field === EB.firstSeq) this.firstSeq = scalar(b, end, wt, -1, 'firstSeq');
      else if (field === EB.dropped) this.dropped = scalar(b, end, wt, -1, 'dropped');
      else if (field === EB.nowNs) this.nowNs = scalar(b, end, wt, -1, 'nowNs');
      else if (field === EB.cgroups || field === EB.stacks) {
        const name = field === EB.cgroups ? 'cgroups' : 'stacks';
        if (wt !== 2) wrongWireType(-1, name, wt, 2);
        const stop = lengthDelimited(b, end);
        if (field === EB.cgroups) this.cgroups.push(decodeCgroup(b, pos, stop, this.cgroups.length));
        else this.stacks.push(decodeStack(b, pos, stop, this.stacks.length));
        pos = stop;
      } else skip(b, wt, end);
    }
    return this;
  }

  private event(b: Uint8Array, from: number, end: number): void {
    if (this.count === this.start.length) this.grow();
    const i = this.count++;
    this.start[i] = from; this.end[i] = end;
    let ts = 0, tid = 0, cpu = 0, pid = 0, cgroup = 0, stack = 0, body = 0, bodyAt = 0, bodies = 0, devStart = 0, devEnd = 0, commStart = 0, commEnd = 0;
    let msg: object | undefined;
    pos = from;
    while (pos < end) {
      const at = pos;
      const tag = readTag(b, end);
      const field = tag >>> 3, wt = tag & 7;
      if (field === EV.tsNs) ts = scalar(b, end, wt, i, 'tsNs');
      else if (field === EV.tid) tid = scalar32(b, end, wt, i, 'tid');
      else if (field === EV.cpu) cpu = scalar32(b, end, wt, i, 'cpu');
      else if (field === EV.pid) pid = scalar32(b, end, wt, i, 'pid');
      else if (field === EV.cgroupId) cgroup = scalar(b, end, wt, i, 'cgroupId');
      else if (field === EV.stackId) stack = scalar(b, end, wt, i, 'stackId');
      else if (field === EV.device || field === EV.comm || (field >= EV.deviceInfo && BODY_BY_FIELD[field])) {
        if (wt !== 2) wrongWireType(i, BODY_BY_FIELD[field] ?? (field === EV.device ? 'device' : 'comm'), wt, 2);
        const stop = lengthDelimited(b, end);
        if (field === EV.device) { devStart = pos; devEnd = stop; }
        else if (field === EV.comm) { commStart = pos; commEnd = stop; }
        else {
          // Decoded (strictly) now, so that its decode at release cannot fail; checked after the event's own fields,
          // in the order validate.ts checks a decoded event.
          if (body !== field) bodies++;
          body = field; bodyAt = at;
          msg = this.bodies.decode(BODY_BY_FIELD[field]!, b, pos, stop, i);
        }
        pos = stop;
      } else skip(b, wt, end);
    }
    const kind = bodies === 1 ? BODY_BY_FIELD[body] : undefined; // several members of the oneof: checkEventHead names them
    this.evFrom = from; this.evEnd = end;
    if (pciAddressBytes(b, devStart, devEnd)) checkEventHead(bodies, kind, ts, null, i, this.present, true);
    else checkEventHead(bodies, kind, ts, decodeString(b, devStart, devEnd), i, this.present); // throws, naming the device
    checkUtf8(b, commStart, commEnd, i, 'comm');
    checkBody(kind!, msg!, i);
    this.ts[i] = ts; this.tid[i] = tid; this.cpu[i] = cpu; this.pid[i] = pid; this.body[i] = body; this.bodyAt[i] = bodyAt;
    this.devStart[i] = devStart; this.devEnd[i] = devEnd; this.commStart[i] = commStart; this.commEnd[i] = commEnd;
    this.cgroupId[i] = cgroup; this.stackId[i] = stack;
  }
}

/** EventBatch.cgroups[at]: Cgroup { id, path, pod_name }. */
function decodeCgroup(b: Uint8Array, from: number, end: number, at: number): Cgroup {
  const c = { id: 0, path: '', podName: '' };
  const saved = pos;
  pos = from;
  while (pos < end) {
    const tag = varint(b, end), f = tag >>> 3, wt = tag & 7;
    if (f === CG.id) c.id = scalar(b, end, wt, -1, `cgroups[${at}].id`);
    else if (f === CG.path || f === CG.podName) {
      const name = f === CG.path ? 'path' : 'podName';
      if (wt !== 2) wrongWireType(-1, `cgroups[${at}].${name}`, wt, 2);
      const stop = lengthDelimited(b, end);
      c[name] = decodeString(b, pos, stop);
      pos = stop;
    } else skip(b, wt, end);
  }
  pos = saved;
  return c;
}

/** EventBatch.stacks[at]: KernelStack { id, repeated frames }. */
function decodeStack(b: Uint8Array, from: number, end: number, at: number): KernelStack {
  const k = { id: 0, frames: [] as string[] };
  const saved = pos;
  pos = from;
  while (pos < end) {
    const tag = varint(b, end), f = tag >>> 3, wt = tag & 7;
    if (f === KS.id) k.id = scalar(b, end, wt, -1, `stacks[${at}].id`);
    else if (f === KS.frames) {
      if (wt !== 2) wrongWireType(-1, `stacks[${at}].frames`, wt, 2);
      const stop = lengthDelimited(b, end);
      k.frames.push(decodeString(b, pos, stop));
      pos = stop;
    } else skip(b, wt, end);
  }
  pos = saved;
  return k;
}

/** A varint field that the proto declares as a scalar: its wire type must be 0. */
function scalar(b: Uint8Array, end: number, wt: number, at: number, field: string, kind = ''): number {
  if (wt !== 0) wrongWireType(at, field, wt, 0, kind);
  return varint(b, end);
}

/** The same for a 32-bit field (uint32, int32, sint32, enum): the low 32 bits, unsigned. */
function scalar32(b: Uint8Array, end: number, wt: number, at: number, field: string, kind = ''): number {
  if (wt !== 0) wrongWireType(at, field, wt, 0, kind);
  return varint32(b, end);
}

/** The body members an event carries, in wire order (for the error that names them). */
function bodiesIn(b: Uint8Array, from: number, end: number): string[] {
  const out: string[] = [];
  pos = from;
  while (pos < end) {
    const tag = readTag(b, end);
    const kind = BODY_BY_FIELD[tag >>> 3];
    if (kind && (tag & 7) === 2 && !out.includes(kind)) out.push(kind);
    skip(b, tag & 7, end);
  }
  return BODIES.filter((k) => out.includes(k));
}

/** An event's ts_ns (the last on the wire, as the full scan reads it). */
function eventTs(b: Uint8Array, from: number, end: number): number {
  let ts = 0;
  pos = from;
  while (pos < end) {
    const tag = readTag(b, end);
    if (tag === (EV.tsNs << 3)) ts = varint(b, end);
    else skip(b, tag & 7, end);
  }
  return ts;
}

// ---- interning device names ----
/** Interns short UTF-8 strings by their bytes: the same device name is one string, decoded once. A host has
 * a handful of devices: a short list compared from the end (PCI addresses share their "0000:" start), then a
 * hash map past 32 names. */
export class NameTable {
  private readonly few: string[] = [];
  private byHash: Map<number, string> | null = null;

  get(b: Uint8Array, from: number, to: number): string {
    const len = to - from;
    if (len === 0) return '';
    const few = this.few;
    for (let k = 0; k < few.length; k++) {
      const s = few[k]!;
      if (s.length !== len) continue;
      let i = len - 1;
      while (i >= 0 && s.charCodeAt(i) === b[from + i]) i--;
      if (i < 0) return s;
    }
    if (this.byHash) {
      const h = fnv1a(b, from, to);
      const known = this.byHash.get(h);
      if (known !== undefined && sameAscii(known, b, from, to)) return known;
      const s = decodeString(b, from, to);
      if (known === undefined && this.byHash.size < 65536) this.byHash.set(h, s);
      return s;
    }
    const s = decodeString(b, from, to);
    if (sameAscii(s, b, from, to)) { // ASCII: byte-comparable
      few.push(s);
      if (few.length === 32) this.byHash = new Map();
    }
    return s;
  }
}

/** 32-bit FNV-1a of b[from, to): the key of the byte-keyed caches below. */
function fnv1a(b: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

function sameAscii(s: string, b: Uint8Array, from: number, to: number): boolean {
  if (s.length !== to - from) return false;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) !== b[from + i]) return false;
  return true;
}

/** Decoded HostInfo by its bytes: a host sends the same HostInfo in every batch, decode it once. The
 * objects are shared: read them, do not change them. */
class HostInfoCache {
  private readonly byHash = new Map<number, { bytes: Uint8Array; info: HostInfo }>();

  get(b: Uint8Array, from: number, to: number): HostInfo {
    const h = fnv1a(b, from, to);
    const known = this.byHash.get(h);
    if (known && known.bytes.length === to - from) {
      let same = true;
      for (let i = 0; i < known.bytes.length; i++) if (known.bytes[i] !== b[from + i]) { same = false; break; }
      if (same) return known.info;
    }
    const info = decodeHostInfo(b, from, to);
    if (this.byHash.size >= 16384) this.byHash.clear();
    this.byHash.set(h, { bytes: b.slice(from, to), info });
    return info;
  }
}

/** HostInfo { hostname, boot_id, kernel_release, collector_version, repeated Capability capabilities } (packed or not). */
function decodeHostInfo(b: Uint8Array, from: number, end: number): HostInfo {
  const info: { hostname: string; bootId: string; kernelRelease: string; collectorVersion: string; capabilities: Capability[] } =
    { hostname: '', bootId: '', kernelRelease: '', collectorVersion: '', capabilities: [] };
  const saved = pos;
  pos = from;
  while (pos < end) {
    const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
    if (f === HI.capabilities) {
      if (wt === 0) info.capabilities.push(i32(varint32(b, end)) as Capability);
      else if (wt === 2) { const stop = lengthDelimited(b, end); while (pos < stop) info.capabilities.push(i32(varint32(b, stop)) as Capability); }
      else wrongWireType(-1, 'host.capabilities', wt, 2);
    } else if (f === HI.hostname || f === HI.bootId || f === HI.kernelRelease || f === HI.collectorVersion) {
      const name = f === HI.hostname ? 'hostname' : f === HI.bootId ? 'bootId' : f === HI.kernelRelease ? 'kernelRelease' : 'collectorVersion';
      if (wt !== 2) wrongWireType(-1, `host.${name}`, wt, 2);
      const stop = lengthDelimited(b, end);
      info[name] = utf8String(b, pos, stop, -1, `host.${name}`);
      pos = stop;
    } else skip(b, wt, end);
  }
  pos = saved;
  return info;
}

// ---- one event, decoded into reused objects ----
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

// The body being decoded (module state, as the cursor: one reader at a time, no closure per body).
let bodyB: Uint8Array = new Uint8Array(0);
let bodyEnd = 0;
let bodyEvent = 0;
let bodyKind = '';

/** A body's varint field (the path is built only for an error). */
function v(wt: number, field: string): number {
  return wt === 0 ? varint(bodyB, bodyEnd) : scalar(bodyB, bodyEnd, wt, bodyEvent, field, bodyKind);
}

/** A body's 32-bit varint field. */
function v32(wt: number, field: string): number {
  return wt === 0 ? varint32(bodyB, bodyEnd) : scalar32(bodyB, bodyEnd, wt, bodyEvent, field, bodyKind);
}

/** Decodes a body member into reused objects (one per kind), strictly: a known field with the wrong wire type is a
 * FieldError naming `events[at].<body>.<field>`. */
class BodyDecoder {
  private readonly o = {
    deviceInfo: { driver: '', zapBarsOnRevoke: null, dmabufBarMmap: false, memoryEnabled: null, powerState: null, revoked: null,
      openCount: null, noCommandMemory: null, customVmOpsBars: null } as Mutable<DeviceInfo>,
    lockAcquire: { waitNs: 0 },
    lockRelease: {},
    zap: { start: 0, length: 0, durationNs: 0, target: 0, hadVmas: null } as Mutable<Zap>,
    dmabufRevoke: { revoked: false, dmabufCount: 0, durationNs: 0, deviceHasVmas: null } as Mutable<DmaBufRevoke>,
    moveNotify: { dmabufId: 0, importerCount: 0, durationNs: 0 } as Mutable<MoveNotify>,
    barMmap: { bar: 0, backing: 0, mappingId: 0, length: 0, snapshot: false } as Mutable<BarMmap>,
    barMunmap: { bar: 0, mappingId: 0 } as Mutable<BarMunmap>,
    barFault: { bar: 0, mappingId: 0, ok: false } as Mutable<BarFault>,
    trigger: { kind: 0, groupId: 0 } as Mutable<Trigger>,
    triggerEnd: { kind: 0, ret: 0 } as Mutable<TriggerEnd>,
    powerTransition: { from: 0, to: 0, durationNs: 0 } as Mutable<PowerTransition>,
    resetFunction: { ret: 0, durationNs: 0 } as Mutable<ResetFunction>,
  };

  /** The body [from, end) of `b`; `at`: the event's index, for error paths. */
  decode(kind: BodyKind, b: Uint8Array, from: number, end: number, at: number): object {
    const o = this.o;
    pos = from;
    bodyB = b; bodyEnd = end; bodyEvent = at; bodyKind = kind;
    switch (kind) {
      case 'barFault': {
        const m = o.barFault; m.bar = 0; m.mappingId = 0; m.ok = false;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === BF.bar) m.bar = v32(wt, 'bar'); else if (f === BF.mappingId) m.mappingId = v(wt, 'mappingId');
          else if (f === BF.ok) m.ok = v(wt, 'ok') !== 0; else skip(b, wt, end);
        }
        return m;
      }
      case 'lockAcquire': {
        const m = o.lockAcquire; m.waitNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), wt = tag & 7;
          if (tag >>> 3 === LA.waitNs) m.waitNs = v(wt, 'waitNs'); else skip(b, wt, end);
        }
        return m;
      }
      case 'lockRelease':
        while (pos < end) { const tag = readTag(b, end); skip(b, tag & 7, end); }
        return o.lockRelease;
      case 'moveNotify': {
        const m = o.moveNotify; m.dmabufId = 0; m.importerCount = 0; m.durationNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === MN.dmabufId) m.dmabufId = v(wt, 'dmabufId'); else if (f === MN.importerCount) m.importerCount = v32(wt, 'importerCount');
          else if (f === MN.durationNs) m.durationNs = v(wt, 'durationNs');
          else if (f === MN.importers) { // repeated string: checked, not kept (nothing reads it)
            if (wt !== 2) wrongWireType(at, 'moveNotify.importers', wt, 2);
            const stop = lengthDelimited(b, end); checkUtf8(b, pos, stop, at, 'moveNotify.importers'); pos = stop;
          } else skip(b, wt, end);
        }
        return m;
      }
      case 'trigger': {
        const m = o.trigger; m.kind = 0; m.groupId = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === TR.kind) m.kind = i32(v32(wt, 'kind')); else if (f === TR.groupId) m.groupId = v(wt, 'groupId'); else skip(b, wt, end);
        }
        return m;
      }
      case 'dmabufRevoke': {
        const m = o.dmabufRevoke; m.revoked = false; m.dmabufCount = 0; m.durationNs = 0; m.deviceHasVmas = null;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === DR.revoked) m.revoked = v(wt, 'revoked') !== 0; else if (f === DR.dmabufCount) m.dmabufCount = v32(wt, 'dmabufCount');
          else if (f === DR.durationNs) m.durationNs = v(wt, 'durationNs'); else if (f === DR.deviceHasVmas) m.deviceHasVmas = v(wt, 'deviceHasVmas') !== 0;
          else skip(b, wt, end);
        }
        return m;
      }
      case 'zap': {
        const m = o.zap; m.start = 0; m.length = 0; m.durationNs = 0; m.target = 0; m.hadVmas = null;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === ZP.start) m.start = v(wt, 'start'); else if (f === ZP.length) m.length = v(wt, 'length');
          else if (f === ZP.durationNs) m.durationNs = v(wt, 'durationNs'); else if (f === ZP.target) m.target = i32(v32(wt, 'target'));
          else if (f === ZP.hadVmas) m.hadVmas = v(wt, 'hadVmas') !== 0; else skip(b, wt, end);
        }
        return m;
      }
      case 'barMmap': {
        const m = o.barMmap; m.bar = 0; m.backing = 0; m.mappingId = 0; m.length = 0; m.snapshot = false;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === BM.bar) m.bar = v32(wt, 'bar'); else if (f === BM.backing) m.backing = i32(v32(wt, 'backing'));
          else if (f === BM.mappingId) m.mappingId = v(wt, 'mappingId'); else if (f === BM.length) m.length = v(wt, 'length');
          else if (f === BM.snapshot) m.snapshot = v(wt, 'snapshot') !== 0; else skip(b, wt, end);
        }
        return m;
      }
      case 'barMunmap': {
        const m = o.barMunmap; m.bar = 0; m.mappingId = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === BU.bar) m.bar = v32(wt, 'bar'); else if (f === BU.mappingId) m.mappingId = v(wt, 'mappingId'); else skip(b, wt, end);
        }
        return m;
      }
      case 'deviceInfo': {
        const m = o.deviceInfo; m.driver = ''; m.zapBarsOnRevoke = null; m.dmabufBarMmap = false; m.memoryEnabled = null;
        m.powerState = null; m.revoked = null; m.openCount = null; m.noCommandMemory = null; m.customVmOpsBars = null;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === DI.driver) {
            if (wt !== 2) wrongWireType(at, 'deviceInfo.driver', wt, 2);
            const stop = lengthDelimited(b, end); m.driver = utf8String(b, pos, stop, at, 'deviceInfo.driver'); pos = stop;
          } else if (f === DI.zapBarsOnRevoke) m.zapBarsOnRevoke = v(wt, 'zapBarsOnRevoke') !== 0;
          else if (f === DI.dmabufBarMmap) m.dmabufBarMmap = v(wt, 'dmabufBarMmap') !== 0;
          else if (f === DI.memoryEnabled) m.memoryEnabled = v(wt, 'memoryEnabled') !== 0;
          else if (f === DI.powerState) m.powerState = v32(wt, 'powerState');
          else if (f === DI.revoked) m.revoked = v(wt, 'revoked') !== 0;
          else if (f === DI.openCount) m.openCount = v32(wt, 'openCount');
          else if (f === DI.noCommandMemory) m.noCommandMemory = v(wt, 'noCommandMemory') !== 0;
          else if (f === DI.customVmOpsBars) m.customVmOpsBars = v32(wt, 'customVmOpsBars');
          else skip(b, wt, end);
        }
        return m;
      }
      case 'triggerEnd': {
        const m = o.triggerEnd; m.kind = 0; m.ret = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === TE.kind) m.kind = i32(v32(wt, 'kind')); else if (f === TE.ret) m.ret = s32(v32(wt, 'ret')); else skip(b, wt, end);
        }
        return m;
      }
      case 'powerTransition': {
        const m = o.powerTransition; m.from = 0; m.to = 0; m.durationNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === PT.from) m.from = v32(wt, 'from'); else if (f === PT.to) m.to = v32(wt, 'to');
          else if (f === PT.durationNs) m.durationNs = v(wt, 'durationNs'); else skip(b, wt, end);
        }
        return m;
      }
      case 'resetFunction': {
        const m = o.resetFunction; m.ret = 0; m.durationNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === RF.ret) m.ret = s32(v32(wt, 'ret')); else if (f === RF.durationNs) m.durationNs = v(wt, 'durationNs'); else skip(b, wt, end);
        }
        return m;
      }
    }
  }
}

/** An Event whose fields are overwritten by each `load`: read it, do not keep it (or its body). */
export class WireEvent implements Event {
  tsNs = 0;
  cpu = 0;
  tid = 0;
  device = '';
  deviceInfo: DeviceInfo | null = null;
  lockAcquire: { waitNs: number } | null = null;
  lockRelease: object | null = null;
  zap: Zap | null = null;
  dmabufRevoke: DmaBufRevoke | null = null;
  moveNotify: MoveNotify | null = null;
  barMmap: BarMmap | null = null;
  barMunmap: BarMunmap | null = null;
  barFault: BarFault | null = null;
  trigger: Trigger | null = null;
  triggerEnd: TriggerEnd | null = null;
  powerTransition: PowerTransition | null = null;
  resetFunction: ResetFunction | null = null;
  private frame: Uint8Array = new Uint8Array(0);
  private start = 0;
  private end = 0;
  private set: BodyKind | undefined;
  /** comm names, interned (the correlator reads the acquiring task's comm of every episode). */
  private readonly comms = new NameTable();
  private readonly bodies = new BodyDecoder();

  /** Which oneof member is set (as protobufjs' virtual `body`). */
  get body(): BodyKind | undefined { return this.set; }

  /** pid and comm: read on demand (episodes' acquiring task and evidence use them). */
  get pid(): number { return this.topLevel(EV.pid, 0) as number; }
  get comm(): string { return this.topLevel(EV.comm, 2) as string; }
  /** cgroup and stack ids (64-bit): read on demand (an episode's workload and its acquire's stack). */
  get cgroupId(): number { return this.topLevel(EV.cgroupId, 0, true) as number; }
  get stackId(): number { return this.topLevel(EV.stackId, 0, true) as number; }

  private topLevel(field: number, wireType: number, wide = false): number | string {
    const b = this.frame, end = this.end;
    let out: number | string = wireType === 0 ? 0 : '';
    pos = this.start;
    while (pos < end) {
      const tag = readTag(b, end);
      if (tag >>> 3 === field && (tag & 7) === wireType) {
        if (wireType === 0) out = wide ? varint(b, end) : varint32(b, end);
        else { const stop = lengthDelimited(b, end); out = this.comms.get(b, pos, stop); pos = stop; }
      } else skip(b, tag & 7, end);
    }
    return out;
  }

  /** Point at the event [start, end) of `frame` whose scan gave ts, tid, cpu, the body's tag offset (bodyAt,
   * 0 = none) and the interned device name; decodes the body (the scan checked it). */
  load(frame: Uint8Array, start: number, end: number, bodyAt: number, ts: number, tid: number, cpu: number, device: string): this {
    if (this.set) (this as Record<BodyKind, unknown>)[this.set] = null;
    this.set = undefined;
    this.frame = frame; this.start = start; this.end = end;
    this.tsNs = ts; this.tid = tid; this.cpu = cpu; this.device = device;
    if (bodyAt === 0) return this; // no body (offset 0 is the batch's own first tag)
    pos = bodyAt;
    const tag = readTag(frame, end);
    const kind = BODY_BY_FIELD[tag >>> 3];
    if (!kind || (tag & 7) !== 2) return this;
    const stop = lengthDelimited(frame, end);
    (this as Record<BodyKind, unknown>)[kind] = this.bodies.decode(kind, frame, pos, stop, -1);
    this.set = kind;
    return this;
  }
}
