// The wire reader: every protobuf EventBatch that enters revokescope (analyze of .pb files, the embedded pipeline,
// the Kafka consumer) is read here, so every path accepts and rejects the same bytes for the same reason.
// `BatchScan.read` walks a frame once and keeps, per event, what ordering and routing need (ts, tie-break keys, the
// body's field number, the device name's bytes) and the body's numbers (packBody: at most PACKED per event, a scan's
// fast path decodes and checks them in one pass); `WireEvent.loadPacked` fills reused objects from those numbers when
// the correlator's reorder buffer releases the event (`load` decodes the body from the frame again: DeviceInfo, the
// store). Nothing per event outlives the young generation.
// Strict, as the proto says: a known field with the wrong wire type is an error (protobufjs would read it by number
// whatever its wire type), an event must carry exactly one body, and every event passes the same checks as
// decoded batches (validate.ts: ts, device, BAR and power ranges, enums, durations). Unknown fields are skipped.
// Values follow protobufjs' static decoders with util.Long disabled: 64-bit varints as numbers, uint32 truncated to
// 32 bits, a bool a uint32 that is not 0, a repeated singular field keeps its last value. Field numbers come from gen/fields.js (generated from
// proto/ by the build). Pure.
import {
  BarFaultFields as BF, CgroupFields as CG, KernelStackFields as KS, BarMmapFields as BM, BarMunmapFields as BU, DeviceInfoFields as DI, DmaBufRevokeFields as DR,
  EventBatchFields as EB, EventFields as EV, HostInfoFields as HI, LockAcquireFields as LA, MoveNotifyFields as MN,
  PowerTransitionFields as PT, ResetFunctionFields as RF, TriggerEndFields as TE, TriggerFields as TR, ZapFields as ZP,
} from '../../gen/fields.js';
import {
  BODY_BY_FIELD, bodyOfField, type BarFault, type BarMmap, type BarMunmap, type BodyKind, type Capability, type DeviceInfo, type DmaBufRevoke, type Event,
  type Cgroup, type HostInfo, type KernelStack, type MoveNotify, type PowerTransition, type ResetFunction, type Trigger, type TriggerEnd, type Zap,
} from './model.js';
import { BODIES, FieldError, INVALID_UTF8, WIRE_LIMITS, checkBatchCounters, checkBody, checkHost, checkEventHead, pciAddressBytes } from './validate.js';

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
  for (; i + 4 <= to; i += 4) if (((b[i]! | b[i + 1]! | b[i + 2]! | b[i + 3]!) & 0x80) !== 0) break; // four ASCII bytes a step
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

/** Oneof members by field number (Event.body): model.ts's, for the readers of scans. */
export { bodyOfField };

/** Tags of the event's own fields that the correlator reads after the scan (the scan checked their wire types). */
const PID_TAG = EV.pid << 3;
const CGROUP_TAG = EV.cgroupId << 3;
const STACK_TAG = EV.stackId << 3;
const COMM_TAG = (EV.comm << 3) | 2;
const TS_TAG = EV.tsNs << 3, TID_TAG = EV.tid << 3, CPU_TAG = EV.cpu << 3, DEVICE_TAG = (EV.device << 3) | 2;

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
  /** 1: the device name's bytes are the previous event's, which passed the device check (the same bytes are not
   * checked again; the host reuses the previous event's device). */
  devSame = new Uint8Array(64);
  /** [commStart, commEnd) of the comm's UTF-8 bytes. */
  commStart = new Int32Array(64);
  commEnd = new Int32Array(64);
  /** Event.cgroup_id and Event.stack_id (0: not sent). */
  cgroupId = new Float64Array(64);
  stackId = new Float64Array(64);
  /** Per event PACKED numbers: the body's (packBody), and a LockAcquire's pid, cgroup_id and stack_id after its one
   * (ACQUIRE_HEAD). Reused by the next scan: the correlator's reorder buffer copies each event's out. */
  vals = new Float64Array(64 * PACKED);

  private grow(): void {
    const n = this.start.length * 2;
    const g = <T extends Int32Array | Float64Array | Uint8Array>(a: T, make: new (n: number) => T): T => { const x = new make(n); x.set(a); return x; };
    this.start = g(this.start, Int32Array); this.end = g(this.end, Int32Array); this.ts = g(this.ts, Float64Array);
    this.body = g(this.body, Uint8Array); this.bodyAt = g(this.bodyAt, Int32Array); this.tid = g(this.tid, Float64Array); this.cpu = g(this.cpu, Float64Array);
    this.devStart = g(this.devStart, Int32Array); this.devEnd = g(this.devEnd, Int32Array); this.devSame = g(this.devSame, Uint8Array);
    this.pid = g(this.pid, Float64Array); this.commStart = g(this.commStart, Int32Array); this.commEnd = g(this.commEnd, Int32Array);
    this.cgroupId = g(this.cgroupId, Float64Array); this.stackId = g(this.stackId, Float64Array);
    const vals = new Float64Array(n * PACKED); vals.set(this.vals); this.vals = vals;
  }

  /** Read and check a length-delimited EventBatch. Throws WireError on bytes that are not protobuf, FieldError (with the
   * field path) on a batch the schema or the checks of validate.ts reject. */
  read(frame: Uint8Array): this {
    this.walk(frame, true);
    // the same checks, in the same order, as checkBatchHead on a decoded batch; the host's once per distinct bytes
    if (!this.host) checkHost(this.host);
    else if (this.hosts.error) throw this.hosts.error;
    checkBatchCounters(this);
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
    let msg: object | null = null;
    pos = from;
    while (pos < end) {
      const at = pos;
      const tag = readTag(b, end);
      // every event's own fields with their schema's wire type first (the chain below takes the rest, errors included)
      if (tag === TS_TAG) { ts = varint(b, end); continue; }
      if (tag === TID_TAG) { tid = varint32(b, end); continue; }
      if (tag === CPU_TAG) { cpu = varint32(b, end); continue; }
      if (tag === PID_TAG) { pid = varint32(b, end); continue; }
      if (tag === DEVICE_TAG) { const stop = lengthDelimited(b, end); devStart = pos; devEnd = stop; pos = stop; continue; }
      if (tag === COMM_TAG) { const stop = lengthDelimited(b, end); commStart = pos; commEnd = stop; pos = stop; continue; }
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
          const from = pos;
          if (scanBody(field, b, stop, this.vals, i * PACKED)) msg = null;
          else msg = this.bodies.decode(field, b, from, stop, i);
        }
        pos = stop;
      } else skip(b, wt, end);
    }
    const kind = bodies === 1 ? BODY_BY_FIELD[body] : undefined; // several members of the oneof: checkEventHead names them
    this.evFrom = from; this.evEnd = end;
    // most events name the previous event's device: the same bytes need no second check
    const n = devEnd - devStart, last = i - 1;
    const same = i > 0 && this.devEnd[last]! - this.devStart[last]! === n && n > 0 && sameSpan(b, this.devStart[last]!, devStart, n) ? 1 : 0;
    if (same === 1 || pciAddressBytes(b, devStart, devEnd)) {
      // one body and a ts in range (a varint is an integer from 0) pass checkEventHead: call it only to throw
      if (bodies !== 1 || !(ts > 0 && ts < WIRE_LIMITS.u64)) checkEventHead(bodies, kind, ts, null, i, this.present, true);
    } else checkEventHead(bodies, kind, ts, decodeString(b, devStart, devEnd), i, this.present); // throws, naming the device
    this.devSame[i] = same;
    checkUtf8(b, commStart, commEnd, i, 'comm');
    if (msg) { // the slow path: the body outside the fast path's limits (or a DeviceInfo)
      checkBody(kind!, msg, i);
      packBody(body, msg, this.vals, i * PACKED);
    }
    this.ts[i] = ts; this.tid[i] = tid; this.cpu[i] = cpu; this.pid[i] = pid; this.body[i] = body; this.bodyAt[i] = bodyAt;
    this.devStart[i] = devStart; this.devEnd[i] = devEnd; this.commStart[i] = commStart; this.commEnd[i] = commEnd;
    this.cgroupId[i] = cgroup; this.stackId[i] = stack;
    if (body === EV.lockAcquire) { const v = this.vals, o = i * PACKED + ACQUIRE_HEAD; v[o] = pid; v[o + 1] = cgroup; v[o + 2] = stack; }
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
 * a handful of devices: up to 32 names of 8 to 16 bytes compared as four int32 words each, any other name by hash. */
export class NameTable {
  /** Up to 32 ASCII names of 8 to 16 bytes (every PCI address), each as a key (length and three end bytes) and its
   * first and last 8 bytes as int32 words: together they are all of its bytes, so equal numbers are equal names. */
  private readonly few: string[] = [];
  /** Per name: key, head word 0, head word 1, tail word, side by side (one or two cache lines for a host's names). */
  private readonly words = new Int32Array(32 * 4);
  /** Every other name, by FNV-1a (created when the first such name comes). */
  private byHash: Map<number, string> | null = null;
  /** Offset in `words` of the name the last lookup of `few` found. */
  private last = 0;

  get(b: Uint8Array, from: number, to: number): string {
    const len = to - from;
    if (len === 0) return '';
    const fits = len >= 8 && len <= 16;
    let key = 0, h0 = 0, h1 = 0, t = 0;
    if (fits) {
      key = len | (b[to - 1]! << 8) | (b[to - 3]! << 16) | (b[to - 4]! << 24);
      h0 = word(b, from); h1 = word(b, from + 4); t = word(b, to - 8);
      const few = this.few, w = this.words;
      // the name the last call returned first (a host's consecutive events mostly name one device)
      const l = this.last;
      if (w[l] === key && w[l + 1] === h0 && w[l + 2] === h1 && w[l + 3] === t) return few[l >> 2]!; // an unused slot's key is 0
      for (let k = 0, o = 0; k < few.length; k++, o += 4) {
        if (w[o] === key && w[o + 1] === h0 && w[o + 2] === h1 && w[o + 3] === t) { this.last = o; return few[k]!; }
      }
    }
    if (this.byHash) {
      const h = fnv1a(b, from, to);
      const known = this.byHash.get(h);
      if (known !== undefined && sameAscii(known, b, from, to)) return known;
    }
    const s = decodeString(b, from, to);
    if (fits && this.few.length < 32 && sameAscii(s, b, from, to)) {
      const o = this.few.length * 4, w = this.words;
      w[o] = key; w[o + 1] = h0; w[o + 2] = h1; w[o + 3] = t;
      this.few.push(s);
      this.last = o;
    } else if (sameAscii(s, b, from, to)) { // ASCII: byte-comparable
      this.byHash ??= new Map();
      if (this.byHash.size < 65536) this.byHash.set(fnv1a(b, from, to), s);
    }
    return s;
  }
}

/** Four bytes from b[at] as an int32 (little-endian). */
const word = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24);

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
interface HostInfoEntry { bytes: Uint8Array; info: HostInfo; error: FieldError | null }

class HostInfoCache {
  private readonly byHash = new Map<number, HostInfoEntry>();
  /** What checkHost said of the HostInfo the last get() returned (null: it passed). */
  error: FieldError | null = null;

  /** The entry the last get() returned, compared before hashing (a miss costs the first differing word). */
  private last: HostInfoEntry | null = null;

  get(b: Uint8Array, from: number, to: number): HostInfo {
    const last = this.last;
    if (last && sameBytes(last.bytes, b, from, to)) { this.error = last.error; return last.info; }
    const h = wordHash(b, from, to);
    const known = this.byHash.get(h);
    if (known && sameBytes(known.bytes, b, from, to)) { this.error = known.error; this.last = known; return known.info; }
    const info = decodeHostInfo(b, from, to);
    let error: FieldError | null = null;
    try { checkHost(info); } catch (e) { if (e instanceof FieldError) error = e; else throw e; }
    if (this.byHash.size >= 16384) this.byHash.clear();
    const entry = { bytes: Uint8Array.prototype.slice.call(b, from, to), info, error }; // a copy (Buffer#slice is a view)
    this.byHash.set(h, entry);
    this.last = entry;
    this.error = error;
    return info;
  }
}

/** A 32-bit hash of b[from, to) four bytes at a time (FNV-1a's steps over words; a HostInfo is ~100 bytes a batch). */
function wordHash(b: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5 ^ (to - from);
  let i = from;
  for (; i + 4 <= to; i += 4) h = Math.imul(h ^ word(b, i), 0x01000193);
  for (; i < to; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

/** Whether b[x, x + n) and b[y, y + n) hold the same bytes (compared four at a time). */
function sameSpan(b: Uint8Array, x: number, y: number, n: number): boolean {
  let i = 0;
  for (; i + 4 <= n; i += 4) if (word(b, x + i) !== word(b, y + i)) return false;
  for (; i < n; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}

/** Whether `a` holds exactly b[from, to) (compared four bytes at a time). */
function sameBytes(a: Uint8Array, b: Uint8Array, from: number, to: number): boolean {
  const n = to - from;
  if (a.length !== n) return false;
  let i = 0;
  for (; i + 4 <= n; i += 4) if (word(a, i) !== word(b, from + i)) return false;
  for (; i < n; i++) if (a[i] !== b[from + i]) return false;
  return true;
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
/** Field number of the body member being decoded (its name is looked up only for an error). */
let bodyField = 0;

/** A body's varint field (the path is built only for an error). */
function v(wt: number, field: string): number {
  return wt === 0 ? varint(bodyB, bodyEnd) : scalar(bodyB, bodyEnd, wt, bodyEvent, field, BODY_BY_FIELD[bodyField]);
}

/** A body's bool field: read as protobufjs' `bool()` reads it, a uint32 varint (5 bytes, or the 10 of a negative
 * int32) that is not 0 — a 6-to-9-byte varint is an error, as in any 32-bit field. */
function vb(wt: number, field: string): boolean {
  return v32(wt, field) !== 0;
}

/** A body's 32-bit varint field. */
function v32(wt: number, field: string): number {
  return wt === 0 ? varint32(bodyB, bodyEnd) : scalar32(bodyB, bodyEnd, wt, bodyEvent, field, BODY_BY_FIELD[bodyField]);
}

// ---- a body's values as numbers ----
// The scan decodes (and checks) every body; the correlator's reorder buffer keeps those values beside the event, so
// the release does not read the frame again. PACKED numbers per event; a tri-state (optional bool) is NaN for unset.
// DeviceInfo (a string and nine fields, rare) is not packed: it is decoded from the frame again at release.
export const PACKED = 5;
/** A LockAcquire's body is one number (wait_ns): its event's pid, cgroup_id and stack_id follow it (every episode reads
 * them). Any other event's are read from the frame when asked (a finding's evidence). */
const ACQUIRE_HEAD = 1;
const tri = (x: boolean | null | undefined): number => (x == null ? NaN : x ? 1 : 0);
const triOf = (x: number): boolean | null => (x !== x ? null : x !== 0);

/** Write body `m` of field number `field` into vals[o, o + PACKED). */
export function packBody(field: number, m: object, vals: Float64Array, o: number): void {
  switch (field) {
    case EV.barFault: { const x = m as BarFault; vals[o] = x.bar!; vals[o + 1] = x.mappingId as number; vals[o + 2] = x.ok ? 1 : 0; break; }
    case EV.lockAcquire: vals[o] = (m as { waitNs: number }).waitNs; break;
    case EV.moveNotify: { const x = m as MoveNotify; vals[o] = x.dmabufId as number; vals[o + 1] = x.importerCount!; vals[o + 2] = x.durationNs as number; break; }
    case EV.trigger: { const x = m as Trigger; vals[o] = x.kind!; vals[o + 1] = x.groupId as number; break; }
    case EV.dmabufRevoke: {
      const x = m as DmaBufRevoke;
      vals[o] = x.revoked ? 1 : 0; vals[o + 1] = x.dmabufCount!; vals[o + 2] = x.durationNs as number; vals[o + 3] = tri(x.deviceHasVmas);
      break;
    }
    case EV.zap: {
      const x = m as Zap;
      vals[o] = x.start as number; vals[o + 1] = x.length as number; vals[o + 2] = x.durationNs as number; vals[o + 3] = x.target!;
      vals[o + 4] = tri(x.hadVmas);
      break;
    }
    case EV.barMmap: {
      const x = m as BarMmap;
      vals[o] = x.bar!; vals[o + 1] = x.backing!; vals[o + 2] = x.mappingId as number; vals[o + 3] = x.length as number; vals[o + 4] = x.snapshot ? 1 : 0;
      break;
    }
    case EV.barMunmap: { const x = m as BarMunmap; vals[o] = x.bar!; vals[o + 1] = x.mappingId as number; break; }
    case EV.triggerEnd: { const x = m as TriggerEnd; vals[o] = x.kind!; vals[o + 1] = x.ret!; break; }
    case EV.powerTransition: { const x = m as PowerTransition; vals[o] = x.from!; vals[o + 1] = x.to!; vals[o + 2] = x.durationNs as number; break; }
    case EV.resetFunction: { const x = m as ResetFunction; vals[o] = x.ret!; vals[o + 1] = x.durationNs as number; break; }
    default: break; // lockRelease: nothing; deviceInfo: decoded again at release
  }
}

// ---- the scan's fast path for a body ----
/** Field numbers 0..31 a message declares, as bits. */
const fieldMask = (fields: Record<string, number>): number => Object.values(fields).reduce((m, f) => (f < 32 ? m | (1 << f) : m), 0);
const KNOWN = {
  barFault: fieldMask(BF), lockAcquire: fieldMask(LA), moveNotify: fieldMask(MN), trigger: fieldMask(TR), dmabufRevoke: fieldMask(DR),
  zap: fieldMask(ZP), barMmap: fieldMask(BM), barMunmap: fieldMask(BU), triggerEnd: fieldMask(TE), powerTransition: fieldMask(PT),
  resetFunction: fieldMask(RF),
};
/** A varint field's tag (wire type 0). */
const vt = (field: number): number => field << 3;
const L = WIRE_LIMITS;

/** An unknown field is skipped; a known one with another wire type than the caller expected sends the body to the
 * slow path (false). */
function skipUnknown(b: Uint8Array, tag: number, end: number, known: number): boolean {
  const f = tag >>> 3;
  if (f < 32 && ((known >>> f) & 1) === 1) return false;
  skip(b, tag & 7, end);
  return true;
}

/** The body [pos, end) of field number `field`, decoded straight into vals[o] (packBody's layout) while its numbers are
 * checked against WIRE_LIMITS. False, with nothing written that matters, on anything else (a known field with another
 * wire type, a number outside the limits, a string that is not UTF-8, DeviceInfo): the caller then takes the slow
 * path (BodyDecoder.decode, checkBody, packBody), which reads the same bytes with the same readers and throws the
 * precise error, or passes. Reads exactly as BodyDecoder.decode does (64-bit fields by varint, 32-bit by varint32), so
 * both paths pack the same numbers (test/wire.test.ts compares them). */
function scanBody(field: number, b: Uint8Array, end: number, vals: Float64Array, o: number): boolean {
  switch (field) {
    case EV.barFault: {
      let bar = 0, id = 0, ok = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(BF.bar)) bar = varint32(b, end);
        else if (tag === vt(BF.mappingId)) id = varint(b, end);
        else if (tag === vt(BF.ok)) ok = varint32(b, end) !== 0 ? 1 : 0;
        else if (!skipUnknown(b, tag, end, KNOWN.barFault)) return false;
      }
      if (!(bar <= L.bar && id < L.u64)) return false;
      vals[o] = bar; vals[o + 1] = id; vals[o + 2] = ok;
      return true;
    }
    case EV.lockAcquire: {
      let wait = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(LA.waitNs)) wait = varint(b, end);
        else if (!skipUnknown(b, tag, end, KNOWN.lockAcquire)) return false;
      }
      if (!(wait < L.durationNs)) return false;
      vals[o] = wait;
      return true;
    }
    case EV.lockRelease:
      while (pos < end) { const tag = readTag(b, end); skip(b, tag & 7, end); }
      return true;
    case EV.moveNotify: {
      let id = 0, importers = 0, dur = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(MN.dmabufId)) id = varint(b, end);
        else if (tag === vt(MN.importerCount)) importers = varint32(b, end);
        else if (tag === vt(MN.durationNs)) dur = varint(b, end);
        else if (tag === ((MN.importers << 3) | 2)) {
          const stop = lengthDelimited(b, end);
          if (!isUtf8(b, pos, stop)) return false;
          pos = stop;
        } else if (!skipUnknown(b, tag, end, KNOWN.moveNotify)) return false;
      }
      if (!(id < L.u64 && dur < L.durationNs)) return false;
      vals[o] = id; vals[o + 1] = importers; vals[o + 2] = dur;
      return true;
    }
    case EV.trigger: {
      let kind = 0, group = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(TR.kind)) kind = i32(varint32(b, end));
        else if (tag === vt(TR.groupId)) group = varint(b, end);
        else if (!skipUnknown(b, tag, end, KNOWN.trigger)) return false;
      }
      if (!(kind >= 0 && kind <= L.triggerKind && group < L.u64)) return false;
      vals[o] = kind; vals[o + 1] = group;
      return true;
    }
    case EV.dmabufRevoke: {
      let revoked = 0, count = 0, dur = 0, hadVmas = NaN;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(DR.revoked)) revoked = varint32(b, end) !== 0 ? 1 : 0;
        else if (tag === vt(DR.dmabufCount)) count = varint32(b, end);
        else if (tag === vt(DR.durationNs)) dur = varint(b, end);
        else if (tag === vt(DR.deviceHasVmas)) hadVmas = varint32(b, end) !== 0 ? 1 : 0;
        else if (!skipUnknown(b, tag, end, KNOWN.dmabufRevoke)) return false;
      }
      if (!(dur < L.durationNs)) return false;
      vals[o] = revoked; vals[o + 1] = count; vals[o + 2] = dur; vals[o + 3] = hadVmas;
      return true;
    }
    case EV.zap: {
      let start = 0, length = 0, dur = 0, target = 0, hadVmas = NaN;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(ZP.start)) start = varint(b, end);
        else if (tag === vt(ZP.length)) length = varint(b, end);
        else if (tag === vt(ZP.durationNs)) dur = varint(b, end);
        else if (tag === vt(ZP.target)) target = i32(varint32(b, end));
        else if (tag === vt(ZP.hadVmas)) hadVmas = varint32(b, end) !== 0 ? 1 : 0;
        else if (!skipUnknown(b, tag, end, KNOWN.zap)) return false;
      }
      if (!(start < L.u64 && length < L.u64 && dur < L.durationNs && target >= 0 && target <= L.zapTarget)) return false;
      vals[o] = start; vals[o + 1] = length; vals[o + 2] = dur; vals[o + 3] = target; vals[o + 4] = hadVmas;
      return true;
    }
    case EV.barMmap: {
      let bar = 0, backing = 0, id = 0, length = 0, snapshot = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(BM.bar)) bar = varint32(b, end);
        else if (tag === vt(BM.backing)) backing = i32(varint32(b, end));
        else if (tag === vt(BM.mappingId)) id = varint(b, end);
        else if (tag === vt(BM.length)) length = varint(b, end);
        else if (tag === vt(BM.snapshot)) snapshot = varint32(b, end) !== 0 ? 1 : 0;
        else if (!skipUnknown(b, tag, end, KNOWN.barMmap)) return false;
      }
      if (!(bar <= L.bar && backing >= 0 && backing <= L.backing && id < L.u64 && length < L.u64)) return false;
      vals[o] = bar; vals[o + 1] = backing; vals[o + 2] = id; vals[o + 3] = length; vals[o + 4] = snapshot;
      return true;
    }
    case EV.barMunmap: {
      let bar = 0, id = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(BU.bar)) bar = varint32(b, end);
        else if (tag === vt(BU.mappingId)) id = varint(b, end);
        else if (!skipUnknown(b, tag, end, KNOWN.barMunmap)) return false;
      }
      if (!(bar <= L.bar && id < L.u64)) return false;
      vals[o] = bar; vals[o + 1] = id;
      return true;
    }
    case EV.triggerEnd: {
      let kind = 0, ret = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(TE.kind)) kind = i32(varint32(b, end));
        else if (tag === vt(TE.ret)) ret = s32(varint32(b, end));
        else if (!skipUnknown(b, tag, end, KNOWN.triggerEnd)) return false;
      }
      if (!(kind >= 0 && kind <= L.triggerKind)) return false;
      vals[o] = kind; vals[o + 1] = ret;
      return true;
    }
    case EV.powerTransition: {
      let from = 0, to = 0, dur = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(PT.from)) from = varint32(b, end);
        else if (tag === vt(PT.to)) to = varint32(b, end);
        else if (tag === vt(PT.durationNs)) dur = varint(b, end);
        else if (!skipUnknown(b, tag, end, KNOWN.powerTransition)) return false;
      }
      if (!(from <= L.powerState && to <= L.powerState && dur < L.durationNs)) return false;
      vals[o] = from; vals[o + 1] = to; vals[o + 2] = dur;
      return true;
    }
    case EV.resetFunction: {
      let ret = 0, dur = 0;
      while (pos < end) {
        const tag = readTag(b, end);
        if (tag === vt(RF.ret)) ret = s32(varint32(b, end));
        else if (tag === vt(RF.durationNs)) dur = varint(b, end);
        else if (!skipUnknown(b, tag, end, KNOWN.resetFunction)) return false;
      }
      if (!(dur < L.durationNs)) return false;
      vals[o] = ret; vals[o + 1] = dur;
      return true;
    }
    default: return false; // DeviceInfo: the slow path
  }
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

  /** The body of field number `field` from the numbers packBody wrote at vals[o] (not DeviceInfo). */
  unpack(field: number, vals: Float64Array, o: number): object {
    const x = this.o;
    switch (field) {
      case EV.barFault: { const m = x.barFault; m.bar = vals[o]!; m.mappingId = vals[o + 1]!; m.ok = vals[o + 2] === 1; return m; }
      case EV.lockAcquire: x.lockAcquire.waitNs = vals[o]!; return x.lockAcquire;
      case EV.lockRelease: return x.lockRelease;
      case EV.moveNotify: { const m = x.moveNotify; m.dmabufId = vals[o]!; m.importerCount = vals[o + 1]!; m.durationNs = vals[o + 2]!; return m; }
      case EV.trigger: { const m = x.trigger; m.kind = vals[o]! as Trigger['kind'] & number; m.groupId = vals[o + 1]!; return m; }
      case EV.dmabufRevoke: {
        const m = x.dmabufRevoke;
        m.revoked = vals[o] === 1; m.dmabufCount = vals[o + 1]!; m.durationNs = vals[o + 2]!; m.deviceHasVmas = triOf(vals[o + 3]!);
        return m;
      }
      case EV.zap: {
        const m = x.zap;
        m.start = vals[o]!; m.length = vals[o + 1]!; m.durationNs = vals[o + 2]!; m.target = vals[o + 3]! as Zap['target'] & number;
        m.hadVmas = triOf(vals[o + 4]!);
        return m;
      }
      case EV.barMmap: {
        const m = x.barMmap;
        m.bar = vals[o]!; m.backing = vals[o + 1]! as BarMmap['backing'] & number; m.mappingId = vals[o + 2]!; m.length = vals[o + 3]!;
        m.snapshot = vals[o + 4] === 1;
        return m;
      }
      case EV.barMunmap: { const m = x.barMunmap; m.bar = vals[o]!; m.mappingId = vals[o + 1]!; return m; }
      case EV.triggerEnd: { const m = x.triggerEnd; m.kind = vals[o]! as TriggerEnd['kind'] & number; m.ret = vals[o + 1]!; return m; }
      case EV.powerTransition: { const m = x.powerTransition; m.from = vals[o]!; m.to = vals[o + 1]!; m.durationNs = vals[o + 2]!; return m; }
      case EV.resetFunction: { const m = x.resetFunction; m.ret = vals[o]!; m.durationNs = vals[o + 1]!; return m; }
      default: throw new Error(`field ${field} is not a packed body member`);
    }
  }

  /** The body [from, end) of `b`; `at`: the event's index, for error paths. */
  decode(field: number, b: Uint8Array, from: number, end: number, at: number): object {
    const o = this.o;
    pos = from;
    bodyB = b; bodyEnd = end; bodyEvent = at; bodyField = field;
    switch (field) {
      case EV.barFault: {
        const m = o.barFault; m.bar = 0; m.mappingId = 0; m.ok = false;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === BF.bar) m.bar = v32(wt, 'bar'); else if (f === BF.mappingId) m.mappingId = v(wt, 'mappingId');
          else if (f === BF.ok) m.ok = vb(wt, 'ok'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.lockAcquire: {
        const m = o.lockAcquire; m.waitNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), wt = tag & 7;
          if (tag >>> 3 === LA.waitNs) m.waitNs = v(wt, 'waitNs'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.lockRelease:
        while (pos < end) { const tag = readTag(b, end); skip(b, tag & 7, end); }
        return o.lockRelease;
      case EV.moveNotify: {
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
      case EV.trigger: {
        const m = o.trigger; m.kind = 0; m.groupId = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === TR.kind) m.kind = i32(v32(wt, 'kind')); else if (f === TR.groupId) m.groupId = v(wt, 'groupId'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.dmabufRevoke: {
        const m = o.dmabufRevoke; m.revoked = false; m.dmabufCount = 0; m.durationNs = 0; m.deviceHasVmas = null;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === DR.revoked) m.revoked = vb(wt, 'revoked'); else if (f === DR.dmabufCount) m.dmabufCount = v32(wt, 'dmabufCount');
          else if (f === DR.durationNs) m.durationNs = v(wt, 'durationNs'); else if (f === DR.deviceHasVmas) m.deviceHasVmas = vb(wt, 'deviceHasVmas');
          else skip(b, wt, end);
        }
        return m;
      }
      case EV.zap: {
        const m = o.zap; m.start = 0; m.length = 0; m.durationNs = 0; m.target = 0; m.hadVmas = null;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === ZP.start) m.start = v(wt, 'start'); else if (f === ZP.length) m.length = v(wt, 'length');
          else if (f === ZP.durationNs) m.durationNs = v(wt, 'durationNs'); else if (f === ZP.target) m.target = i32(v32(wt, 'target'));
          else if (f === ZP.hadVmas) m.hadVmas = vb(wt, 'hadVmas'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.barMmap: {
        const m = o.barMmap; m.bar = 0; m.backing = 0; m.mappingId = 0; m.length = 0; m.snapshot = false;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === BM.bar) m.bar = v32(wt, 'bar'); else if (f === BM.backing) m.backing = i32(v32(wt, 'backing'));
          else if (f === BM.mappingId) m.mappingId = v(wt, 'mappingId'); else if (f === BM.length) m.length = v(wt, 'length');
          else if (f === BM.snapshot) m.snapshot = vb(wt, 'snapshot'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.barMunmap: {
        const m = o.barMunmap; m.bar = 0; m.mappingId = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === BU.bar) m.bar = v32(wt, 'bar'); else if (f === BU.mappingId) m.mappingId = v(wt, 'mappingId'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.deviceInfo: {
        const m = o.deviceInfo; m.driver = ''; m.zapBarsOnRevoke = null; m.dmabufBarMmap = false; m.memoryEnabled = null;
        m.powerState = null; m.revoked = null; m.openCount = null; m.noCommandMemory = null; m.customVmOpsBars = null;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === DI.driver) {
            if (wt !== 2) wrongWireType(at, 'deviceInfo.driver', wt, 2);
            const stop = lengthDelimited(b, end); m.driver = utf8String(b, pos, stop, at, 'deviceInfo.driver'); pos = stop;
          } else if (f === DI.zapBarsOnRevoke) m.zapBarsOnRevoke = vb(wt, 'zapBarsOnRevoke');
          else if (f === DI.dmabufBarMmap) m.dmabufBarMmap = vb(wt, 'dmabufBarMmap');
          else if (f === DI.memoryEnabled) m.memoryEnabled = vb(wt, 'memoryEnabled');
          else if (f === DI.powerState) m.powerState = v32(wt, 'powerState');
          else if (f === DI.revoked) m.revoked = vb(wt, 'revoked');
          else if (f === DI.openCount) m.openCount = v32(wt, 'openCount');
          else if (f === DI.noCommandMemory) m.noCommandMemory = vb(wt, 'noCommandMemory');
          else if (f === DI.customVmOpsBars) m.customVmOpsBars = v32(wt, 'customVmOpsBars');
          else skip(b, wt, end);
        }
        return m;
      }
      case EV.triggerEnd: {
        const m = o.triggerEnd; m.kind = 0; m.ret = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === TE.kind) m.kind = i32(v32(wt, 'kind')); else if (f === TE.ret) m.ret = s32(v32(wt, 'ret')); else skip(b, wt, end);
        }
        return m;
      }
      case EV.powerTransition: {
        const m = o.powerTransition; m.from = 0; m.to = 0; m.durationNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === PT.from) m.from = v32(wt, 'from'); else if (f === PT.to) m.to = v32(wt, 'to');
          else if (f === PT.durationNs) m.durationNs = v(wt, 'durationNs'); else skip(b, wt, end);
        }
        return m;
      }
      case EV.resetFunction: {
        const m = o.resetFunction; m.ret = 0; m.durationNs = 0;
        while (pos < end) {
          const tag = readTag(b, end), f = tag >>> 3, wt = tag & 7;
          if (f === RF.ret) m.ret = s32(v32(wt, 'ret')); else if (f === RF.durationNs) m.durationNs = v(wt, 'durationNs'); else skip(b, wt, end);
        }
        return m;
      }
      default: throw new Error(`field ${field} is not a body member`);
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
  /** Field number of the body member set (0: none). */
  private setField = 0;
  /** comm names, interned (the correlator reads the acquiring task's comm of every episode). */
  private readonly comms = new NameTable();
  private readonly bodies = new BodyDecoder();

  /** Which oneof member is set (as protobufjs' virtual `body`). */
  get body(): BodyKind | undefined { return BODY_BY_FIELD[this.setField]; }

  /** pid, comm, cgroup and stack ids: a LockAcquire's from the scan's numbers and the comm its caller read (loadPacked),
   * else read on demand (all four by one scan of the event at the first read): an episode's acquiring task, workload and
   * stack, a finding's evidence. */
  get pid(): number { if (!this.headRead) this.readHead(); return this.pidV; }
  get comm(): string { if (!this.headRead) this.readHead(); return this.commV; }
  /** 64-bit ids (0: not sent). */
  get cgroupId(): number { if (!this.headRead) this.readHead(); return this.cgroupV; }
  get stackId(): number { if (!this.headRead) this.readHead(); return this.stackV; }
  private headRead = false;
  private pidV = 0;
  private commV = '';
  private cgroupV = 0;
  private stackV = 0;
  /** A LockAcquire's packed numbers (loadPacked) and its comm as its caller read it (commAt), or null. */
  private packed: Float64Array | null = null;
  private packedAt = 0;
  private commRead: string | null = null;

  /** The event's pid, comm, cgroup_id and stack_id (the last of each on the wire, as the scan reads them). */
  private readHead(): void {
    this.headRead = true;
    const p = this.packed, comm = this.commRead;
    if (p !== null && comm !== null) {
      const o = this.packedAt + ACQUIRE_HEAD;
      this.pidV = p[o]!; this.cgroupV = p[o + 1]!; this.stackV = p[o + 2]!; this.commV = comm;
      return;
    }
    const b = this.frame, end = this.end;
    let pid = 0, name = '', cgroup = 0, stack = 0;
    pos = this.start;
    while (pos < end) {
      const tag = readTag(b, end);
      if (tag === PID_TAG) pid = varint32(b, end);
      else if (tag === CGROUP_TAG) cgroup = varint(b, end);
      else if (tag === STACK_TAG) stack = varint(b, end);
      else if (tag === COMM_TAG) { const stop = lengthDelimited(b, end); name = this.comms.get(b, pos, stop); pos = stop; }
      else skip(b, tag & 7, end);
    }
    this.pidV = pid; this.commV = name; this.cgroupV = cgroup; this.stackV = stack;
  }

  /** Point at the event [start, end) of `frame` whose scan gave ts, tid, cpu, the body's tag offset (bodyAt,
   * 0 = none) and the interned device name; decodes the body (the scan checked it). */
  load(frame: Uint8Array, start: number, end: number, bodyAt: number, ts: number, tid: number, cpu: number, device: string): this {
    if (this.setField !== 0) this.assign(this.setField, null);
    this.setField = 0;
    this.headRead = false;
    this.packed = null;
    this.frame = frame; this.start = start; this.end = end;
    this.tsNs = ts; this.tid = tid; this.cpu = cpu; this.device = device;
    if (bodyAt === 0) return this; // no body (offset 0 is the batch's own first tag)
    pos = bodyAt;
    const tag = readTag(frame, end);
    const field = tag >>> 3;
    if (!BODY_BY_FIELD[field] || (tag & 7) !== 2) return this;
    const stop = lengthDelimited(frame, end);
    this.assign(field, this.bodies.decode(field, frame, pos, stop, -1));
    this.setField = field;
    return this;
  }

  /** The event's own ts, tid, cpu and device, before loadPacked (a small method the caller's code takes in: the
   * numbers stay unboxed, where passing them through loadPacked would box a double per event). */
  head(ts: number, tid: number, cpu: number, device: string): this {
    this.tsNs = ts; this.tid = tid; this.cpu = cpu; this.device = device;
    return this;
  }

  /** The same as `load` for an event whose head() was set: the body taken from the numbers the scan packed (BatchScan.vals
   * at `o`) rather than read from the frame again (a DeviceInfo body, not packed, is). `field`: the body's field number;
   * `comm`: a LockAcquire's comm as its caller read it (commAt), its pid and ids then come from the packed numbers too. */
  loadPacked(frame: Uint8Array, start: number, end: number, bodyAt: number, field: number, vals: Float64Array, o: number,
    comm: string | null = null): this {
    if (field === EV.deviceInfo) this.load(frame, start, end, bodyAt, this.tsNs, this.tid, this.cpu, this.device);
    else {
      if (this.setField !== 0) this.assign(this.setField, null);
      this.headRead = false;
      this.frame = frame; this.start = start; this.end = end;
      this.assign(field, this.bodies.unpack(field, vals, o));
      this.setField = field;
    }
    const acquire = field === EV.lockAcquire && comm !== null;
    this.packed = acquire ? vals : null; this.packedAt = o; this.commRead = acquire ? comm : null;
    return this;
  }

  /** The comm in frame[from, to), interned (a caller that reads it while the bytes are in the cache passes it to
   * loadPacked). */
  commAt(frame: Uint8Array, from: number, to: number): string { return this.comms.get(frame, from, to); }

  /** Set the body member of field number `field` (named stores: a keyed store by a variable name is megamorphic). */
  private assign(field: number, m: object | null): void {
    switch (field) {
      case EV.deviceInfo: this.deviceInfo = m as DeviceInfo | null; break;
      case EV.lockAcquire: this.lockAcquire = m as { waitNs: number } | null; break;
      case EV.lockRelease: this.lockRelease = m; break;
      case EV.zap: this.zap = m as Zap | null; break;
      case EV.dmabufRevoke: this.dmabufRevoke = m as DmaBufRevoke | null; break;
      case EV.moveNotify: this.moveNotify = m as MoveNotify | null; break;
      case EV.barMmap: this.barMmap = m as BarMmap | null; break;
      case EV.barMunmap: this.barMunmap = m as BarMunmap | null; break;
      case EV.barFault: this.barFault = m as BarFault | null; break;
      case EV.trigger: this.trigger = m as Trigger | null; break;
      case EV.triggerEnd: this.triggerEnd = m as TriggerEnd | null; break;
      case EV.powerTransition: this.powerTransition = m as PowerTransition | null; break;
      case EV.resetFunction: this.resetFunction = m as ResetFunction | null; break;
      default: break;
    }
  }
}
