// Raw events as ClickHouse Native blocks, built column by column straight from decoded EventBatches.
// Native is the engine's own columnar format: no text to parse (TabSeparated cost the engine ≈2.5× more
// CPU per event) and no per-row strings on the JS side. Fixed-width columns are little-endian typed
// arrays; LowCardinality(String) columns carry a per-block dictionary and one small index per row,
// laid out as ClickHouse's SerializationLowCardinality writes them (shared-dictionaries key version,
// additional keys, the default '' first).
import { endianness } from 'node:os';
import { bodyOf, type BodyKind, type Event } from '../core/model.js';
import { bodyOfField, NameTable, WireEvent, type BatchScan } from '../core/wire.js';
import { EVENT_COLUMN_TYPES, EVENT_KINDS } from './schema.js';

if (endianness() !== 'LE') throw new Error('Native event blocks are built little-endian (as ClickHouse stores them)');

const KIND_INDEX = new Map<string, number>(EVENT_KINDS.map((k, i) => [k, i]));
const TWO32 = 4294967296;

/** b[from, to) holds the same bytes as b[from2, to2). (Empty = empty: the first event compares against an
 * empty previous name, whose index 0 is the dictionary's ''.) */
function sameBytes(b: Uint8Array, from: number, to: number, from2: number, to2: number): boolean {
  const n = to - from;
  if (n !== to2 - from2) return false;
  for (let k = 0; k < n; k++) if (b[from + k] !== b[from2 + k]) return false;
  return true;
}

/** Known values of each Enum8 column: anything else is stored as 0 (…_UNSPECIFIED). */
function enumCheck(values: Record<string, unknown>): Uint8Array {
  const ok = new Uint8Array(256);
  for (const v of Object.values(values)) if (typeof v === 'number' && v >= 0 && v < 128) ok[v] = 1;
  return ok;
}

/** LowCardinality(String) column of one block: dictionary (index 0 = '') and per-row indexes. */
class DictColumn {
  keys: string[] = [''];
  index = new Map<string, number>([['', 0]]);
  rows: Uint32Array;
  constructor(readonly name: string, capacity: number) { this.rows = new Uint32Array(capacity); }
  id(s: string | null | undefined): number {
    if (!s) return 0;
    let i = this.index.get(s);
    if (i === undefined) { i = this.keys.length; this.keys.push(s); this.index.set(s, i); }
    return i;
  }
  reset(): void { this.keys = ['']; this.index = new Map([['', 0]]); }
}

const u64 = (a: Uint32Array, r: number, v: number): void => { a[2 * r] = v >>> 0; a[2 * r + 1] = Math.floor(v / TWO32) >>> 0; };
/** A small unsigned field (PCI power state, BAR bitmask) in a UInt8 column: values past 255 (invalid) saturate. */
const byte = (v: number): number => (v > 255 ? 255 : v >>> 0);

export class EventBlock {
  rows = 0;
  private capacity: number;
  // LowCardinality(String)
  private hostname: DictColumn; private bootId: DictColumn; private comm: DictColumn; private device: DictColumn; private driver: DictColumn;
  // 64-bit: lo/hi u32 pairs
  private seq!: Uint32Array; private ts!: Uint32Array; private offset!: Uint32Array; private waitNs!: Uint32Array;
  private start!: Uint32Array; private length!: Uint32Array; private duration!: Uint32Array; private dmabufId!: Uint32Array;
  private mappingId!: Uint32Array; private mapLength!: Uint32Array; private groupId!: Uint32Array;
  private cgroup!: Uint32Array; private stack!: Uint32Array;
  private cpu!: Uint32Array; private pid!: Uint32Array; private tid!: Uint32Array; private dmabufCount!: Uint32Array; private importerCount!: Uint32Array;
  private ret!: Uint32Array; // Int32 as its 32 bits
  // one byte per row (Bool, Enum8, UInt8); Nullable(Bool): null map + value
  private kind!: Uint8Array; private dmabufBarMmap!: Uint8Array; private zapTarget!: Uint8Array;
  private hadVmasNull!: Uint8Array; private hadVmas!: Uint8Array; private revoked!: Uint8Array;
  private hasVmasNull!: Uint8Array; private hasVmas!: Uint8Array; private bar!: Uint8Array; private backing!: Uint8Array;
  private snapshot!: Uint8Array; private ok!: Uint8Array; private trigger!: Uint8Array; private powerFrom!: Uint8Array; private powerTo!: Uint8Array;
  // DeviceInfo's optional state fields (absent = NULL): null maps kept all-1 between blocks, a present field sets 0
  private zapBarsNull!: Uint8Array; private zapBars!: Uint8Array; private memEnabledNull!: Uint8Array; private memEnabled!: Uint8Array;
  private powerNull!: Uint8Array; private power!: Uint8Array; private devRevokedNull!: Uint8Array; private devRevoked!: Uint8Array;
  private openNull!: Uint8Array; private openCount!: Uint32Array; private noCmdNull!: Uint8Array; private noCmd!: Uint8Array;
  private customNull!: Uint8Array; private custom!: Uint8Array;

  private static readonly zapTargets = enumCheck(EVENT_COLUMN_TYPES.zapTargetValues);
  private static readonly backings = enumCheck(EVENT_COLUMN_TYPES.backingValues);
  private static readonly triggers = enumCheck(EVENT_COLUMN_TYPES.triggerValues);
  /** addScan: comm and device names interned from their bytes, per host (a host has a few of each, the
   * fleet thousands: one table for all would miss its short list), and bodies decoded into one reused event. */
  private readonly namesByHost = new Map<string, { comm: NameTable; device: NameTable }>();
  private readonly wire = new WireEvent();

  constructor(capacity: number) {
    this.capacity = Math.max(1024, capacity);
    this.hostname = new DictColumn('hostname', this.capacity);
    this.bootId = new DictColumn('boot_id', this.capacity);
    this.comm = new DictColumn('comm', this.capacity);
    this.device = new DictColumn('device', this.capacity);
    this.driver = new DictColumn('driver', this.capacity);
    this.allocate(this.capacity);
  }

  private allocate(cap: number): void {
    const keep = this.rows;
    const w = <T extends Uint32Array | Uint8Array>(old: T | undefined, make: (n: number) => T, per: number): T => {
      const a = make(cap * per);
      if (old && keep > 0) a.set(old.subarray(0, keep * per));
      return a;
    };
    const p = (old: Uint32Array | undefined) => w(old, (n) => new Uint32Array(n), 2);
    const q = (old: Uint32Array | undefined) => w(old, (n) => new Uint32Array(n), 1);
    const b = (old: Uint8Array | undefined) => w(old, (n) => new Uint8Array(n), 1);
    // a null map: rows not written yet are NULL
    const nm = (old: Uint8Array | undefined) => w(old, (n) => new Uint8Array(n).fill(1), 1);
    this.seq = p(this.seq); this.ts = p(this.ts); this.offset = p(this.offset); this.waitNs = p(this.waitNs);
    this.start = p(this.start); this.length = p(this.length); this.duration = p(this.duration); this.dmabufId = p(this.dmabufId);
    this.mappingId = p(this.mappingId); this.mapLength = p(this.mapLength); this.groupId = p(this.groupId);
    this.cgroup = p(this.cgroup); this.stack = p(this.stack);
    this.cpu = q(this.cpu); this.pid = q(this.pid); this.tid = q(this.tid); this.dmabufCount = q(this.dmabufCount); this.importerCount = q(this.importerCount);
    this.ret = q(this.ret); this.openCount = q(this.openCount);
    this.kind = b(this.kind); this.dmabufBarMmap = b(this.dmabufBarMmap); this.zapTarget = b(this.zapTarget);
    this.hadVmasNull = b(this.hadVmasNull); this.hadVmas = b(this.hadVmas); this.revoked = b(this.revoked);
    this.hasVmasNull = b(this.hasVmasNull); this.hasVmas = b(this.hasVmas); this.bar = b(this.bar); this.backing = b(this.backing);
    this.snapshot = b(this.snapshot); this.ok = b(this.ok); this.trigger = b(this.trigger); this.powerFrom = b(this.powerFrom); this.powerTo = b(this.powerTo);
    this.zapBars = b(this.zapBars); this.memEnabled = b(this.memEnabled); this.power = b(this.power); this.devRevoked = b(this.devRevoked);
    this.noCmd = b(this.noCmd); this.custom = b(this.custom);
    this.zapBarsNull = nm(this.zapBarsNull); this.memEnabledNull = nm(this.memEnabledNull); this.powerNull = nm(this.powerNull);
    this.devRevokedNull = nm(this.devRevokedNull); this.openNull = nm(this.openNull); this.noCmdNull = nm(this.noCmdNull); this.customNull = nm(this.customNull);
    for (const d of this.dicts()) d.rows = w(d.rows, (n) => new Uint32Array(n), 1);
    this.capacity = cap;
  }

  private dicts(): DictColumn[] { return [this.hostname, this.bootId, this.comm, this.device, this.driver]; }

  /** Appends a batch's events: seq = firstSeq + i; the boot's clock offset as the lo/hi words of its Int64. */
  add(hostname: string, bootId: string, firstSeq: number, offset: readonly [number, number], events: readonly Event[]): void {
    const n = events.length;
    this.reserve(n);
    const h = this.hostname.id(hostname), bt = this.bootId.id(bootId);
    const [offLo, offHi] = offset;
    let r = this.rows;
    let seq = firstSeq;
    for (let i = 0; i < n; i++, r++, seq++) {
      const ev = events[i]!;
      this.fixed(r, h, bt, seq, ev.tsNs ?? 0, offLo, offHi, ev.cpu ?? 0, ev.pid ?? 0, ev.tid ?? 0,
        this.comm.id(ev.comm), this.device.id(ev.device), Number(ev.cgroupId ?? 0), Number(ev.stackId ?? 0));
      const kind = bodyOf(ev);
      this.kind[r] = kind ? KIND_INDEX.get(kind)! : 0;
      if (kind) this.body(r, kind, ev);
    }
    this.rows = r;
  }

  /** Appends a scanned batch (wire.ts): the same rows as add() on its decoded form, read from the bytes the
   * correlator scans anyway, without materialising the events. */
  addScan(scan: BatchScan, offset: readonly [number, number]): void {
    const n = scan.count;
    this.reserve(n);
    const hostname = scan.host?.hostname ?? '';
    const h = this.hostname.id(hostname), bt = this.bootId.id(scan.host?.bootId);
    const [offLo, offHi] = offset;
    const frame = scan.frame, wire = this.wire, { comm, device } = this.names(hostname);
    let r = this.rows;
    let seq = scan.firstSeq;
    // a batch's events mostly repeat the previous event's comm and device: same bytes, same dictionary index
    let cFrom = 0, cTo = 0, cId = 0, dFrom = 0, dTo = 0, dId = 0;
    for (let i = 0; i < n; i++, r++, seq++) {
      const cs = scan.commStart[i]!, ce = scan.commEnd[i]!, ds = scan.devStart[i]!, de = scan.devEnd[i]!;
      if (!sameBytes(frame, cs, ce, cFrom, cTo)) { cId = this.comm.id(comm.get(frame, cs, ce)); cFrom = cs; cTo = ce; }
      if (!sameBytes(frame, ds, de, dFrom, dTo)) { dId = this.device.id(device.get(frame, ds, de)); dFrom = ds; dTo = de; }
      this.fixed(r, h, bt, seq, scan.ts[i]!, offLo, offHi, scan.cpu[i]!, scan.pid[i]!, scan.tid[i]!, cId, dId, scan.cgroupId[i]!, scan.stackId[i]!);
      const kind = bodyOfField(scan.body[i]!);
      this.kind[r] = kind ? KIND_INDEX.get(kind)! : 0;
      if (kind) this.body(r, kind, wire.load(frame, scan.start[i]!, scan.end[i]!, scan.bodyAt[i]!, 0, 0, 0, ''));
    }
    this.rows = r;
  }

  private names(hostname: string): { comm: NameTable; device: NameTable } {
    let t = this.namesByHost.get(hostname);
    if (!t) {
      if (this.namesByHost.size >= 65536) this.namesByHost.clear();
      this.namesByHost.set(hostname, (t = { comm: new NameTable(), device: new NameTable() }));
    }
    return t;
  }

  private reserve(n: number): void {
    if (this.rows + n > this.capacity) this.allocate(Math.max(this.capacity * 2, this.rows + n));
  }

  /** The columns every event has (the Nullable(Bool) columns start out NULL). */
  private fixed(r: number, host: number, boot: number, seq: number, ts: number, offLo: number, offHi: number,
    cpu: number, pid: number, tid: number, comm: number, device: number, cgroup: number, stack: number): void {
    this.hostname.rows[r] = host; this.bootId.rows[r] = boot;
    u64(this.seq, r, seq);
    if (ts) u64(this.ts, r, ts);
    this.offset[2 * r] = offLo; this.offset[2 * r + 1] = offHi;
    this.cpu[r] = cpu >>> 0; this.pid[r] = pid >>> 0; this.tid[r] = tid >>> 0;
    this.comm.rows[r] = comm; this.device.rows[r] = device;
    u64(this.cgroup, r, cgroup); u64(this.stack, r, stack);
    this.hadVmasNull[r] = 1; this.hasVmasNull[r] = 1;
  }

  /** The body member's columns (sparse: other kinds leave them 0). */
  private body(r: number, kind: BodyKind, ev: Event): void {
    const { zapTargets, backings, triggers } = EventBlock;
    switch (kind) {
      case 'barFault': { const f = ev.barFault!; this.bar[r] = f.bar! & 0xff; if (f.mappingId) u64(this.mappingId, r, f.mappingId); this.ok[r] = f.ok ? 1 : 0; break; }
      case 'lockAcquire': { const w = ev.lockAcquire!.waitNs; if (w) u64(this.waitNs, r, w); break; }
      case 'moveNotify': {
        const m = ev.moveNotify!;
        if (m.durationNs) u64(this.duration, r, m.durationNs);
        if (m.dmabufId) u64(this.dmabufId, r, m.dmabufId);
        this.importerCount[r] = m.importerCount! >>> 0;
        break;
      }
      case 'trigger': {
        const t = ev.trigger!;
        const k = t.kind! >>> 0;
        this.trigger[r] = k < 256 && triggers[k] ? k : 0;
        if (t.groupId) u64(this.groupId, r, t.groupId);
        break;
      }
      case 'dmabufRevoke': {
        const d = ev.dmabufRevoke!;
        if (d.durationNs) u64(this.duration, r, d.durationNs);
        this.revoked[r] = d.revoked ? 1 : 0;
        this.dmabufCount[r] = d.dmabufCount! >>> 0;
        if (typeof d.deviceHasVmas === 'boolean') { this.hasVmasNull[r] = 0; this.hasVmas[r] = d.deviceHasVmas ? 1 : 0; }
        break;
      }
      case 'zap': {
        const z = ev.zap!;
        if (z.start) u64(this.start, r, z.start);
        if (z.length) u64(this.length, r, z.length);
        if (z.durationNs) u64(this.duration, r, z.durationNs);
        const t = z.target! >>> 0;
        this.zapTarget[r] = t < 256 && zapTargets[t] ? t : 0;
        if (typeof z.hadVmas === 'boolean') { this.hadVmasNull[r] = 0; this.hadVmas[r] = z.hadVmas ? 1 : 0; }
        break;
      }
      case 'barMmap': {
        const m = ev.barMmap!;
        this.bar[r] = m.bar! & 0xff;
        const b = m.backing! >>> 0;
        this.backing[r] = b < 256 && backings[b] ? b : 0;
        if (m.mappingId) u64(this.mappingId, r, m.mappingId);
        if (m.length) u64(this.mapLength, r, m.length);
        this.snapshot[r] = m.snapshot ? 1 : 0;
        break;
      }
      case 'barMunmap': { const m = ev.barMunmap!; this.bar[r] = m.bar! & 0xff; if (m.mappingId) u64(this.mappingId, r, m.mappingId); break; }
      case 'deviceInfo': {
        const d = ev.deviceInfo!;
        this.driver.rows[r] = this.driver.id(d.driver);
        this.dmabufBarMmap[r] = d.dmabufBarMmap ? 1 : 0;
        // optional (proto3 presence): set = a value, absent = NULL (unknown, never a default)
        if (d.zapBarsOnRevoke != null) { this.zapBarsNull[r] = 0; this.zapBars[r] = d.zapBarsOnRevoke ? 1 : 0; }
        if (d.memoryEnabled != null) { this.memEnabledNull[r] = 0; this.memEnabled[r] = d.memoryEnabled ? 1 : 0; }
        if (d.powerState != null) { this.powerNull[r] = 0; this.power[r] = byte(d.powerState); }
        if (d.revoked != null) { this.devRevokedNull[r] = 0; this.devRevoked[r] = d.revoked ? 1 : 0; }
        if (d.openCount != null) { this.openNull[r] = 0; this.openCount[r] = d.openCount >>> 0; }
        if (d.noCommandMemory != null) { this.noCmdNull[r] = 0; this.noCmd[r] = d.noCommandMemory ? 1 : 0; }
        if (d.customVmOpsBars != null) { this.customNull[r] = 0; this.custom[r] = byte(d.customVmOpsBars); }
        break;
      }
      case 'triggerEnd': {
        const t = ev.triggerEnd!;
        const k = t.kind! >>> 0;
        this.trigger[r] = k < 256 && triggers[k] ? k : 0;
        this.ret[r] = t.ret! >>> 0;
        break;
      }
      case 'resetFunction': { const f = ev.resetFunction!; this.ret[r] = f.ret! >>> 0; if (f.durationNs) u64(this.duration, r, f.durationNs); break; }
      case 'powerTransition': {
        const p = ev.powerTransition!;
        this.powerFrom[r] = byte(p.from!); this.powerTo[r] = byte(p.to!);
        if (p.durationNs) u64(this.duration, r, p.durationNs);
        break;
      }
      default: break; // lockRelease
    }
  }

  /** The buffered rows as one Native block (column order = EVENT_NATIVE_COLUMNS); the block is emptied. */
  take(): Buffer {
    const block = nativeBlock(this.rows, this.columns(this.rows), this.out);
    this.reset();
    return block;
  }

  /** take()'s output buffer, reused: a fresh block of tens of MB per insert was external memory that set off
   * full GCs of the JS heap. The block is valid until the next take() (TableWriter takes only when the
   * table's previous insert has settled). */
  private readonly out = { buf: Buffer.alloc(0) };

  private reset(): void {
    const n = this.rows;
    this.rows = 0;
    for (const d of this.dicts()) d.reset();
    // body columns are sparse: clear what was written (fixed columns of every row are overwritten anyway)
    for (const a of [this.ts, this.waitNs, this.start, this.length, this.duration, this.dmabufId, this.mappingId, this.mapLength, this.groupId]) a.fill(0, 0, 2 * n);
    for (const a of [this.dmabufCount, this.importerCount, this.driver.rows, this.ret, this.openCount]) a.fill(0, 0, n);
    for (const a of [this.zapBars, this.dmabufBarMmap, this.zapTarget, this.hadVmas, this.revoked, this.hasVmas, this.bar, this.backing,
      this.snapshot, this.ok, this.trigger, this.powerFrom, this.powerTo, this.memEnabled, this.power, this.devRevoked, this.noCmd,
      this.custom]) a.fill(0, 0, n);
    for (const a of this.deviceNullMaps()) a.fill(1, 0, n);
  }

  private deviceNullMaps(): Uint8Array[] {
    return [this.zapBarsNull, this.memEnabledNull, this.powerNull, this.devRevokedNull, this.openNull, this.noCmdNull, this.customNull];
  }

  /** The first n rows, column by column (views of the column arrays; valid until reset). */
  private columns(n: number): NativeColumn[] {
    const T = EVENT_COLUMN_TYPES;
    const fixed = (name: string, type: string, a: Uint32Array | Uint8Array, width: number): NativeColumn =>
      ({ name, type, bytes: new Uint8Array(a.buffer, a.byteOffset, n * width) });
    const nullable = (name: string, nulls: Uint8Array, values: Uint8Array | Uint32Array, type = 'Bool'): NativeColumn => {
      const width = values.BYTES_PER_ELEMENT;
      return { name, type: `Nullable(${type})`,
        bytes: Buffer.concat([nulls.subarray(0, n), new Uint8Array(values.buffer, values.byteOffset, n * width)]) };
    };
    const dict = (d: DictColumn): NativeColumn => ({ name: d.name, type: 'LowCardinality(String)', bytes: dictColumnBytes(d, n) });
    return [
      dict(this.hostname), dict(this.bootId),
      fixed('seq', 'UInt64', this.seq, 8), fixed('ts_ns', 'UInt64', this.ts, 8), fixed('boot_offset_ns', 'Int64', this.offset, 8),
      fixed('cpu', 'UInt32', this.cpu, 4), fixed('pid', 'UInt32', this.pid, 4), fixed('tid', 'UInt32', this.tid, 4),
      dict(this.comm), dict(this.device),
      fixed('kind', T.kind, this.kind, 1),
      dict(this.driver), nullable('zap_bars_on_revoke', this.zapBarsNull, this.zapBars), fixed('dmabuf_bar_mmap', 'Bool', this.dmabufBarMmap, 1),
      fixed('wait_ns', 'UInt64', this.waitNs, 8),
      fixed('start', 'UInt64', this.start, 8), fixed('length', 'UInt64', this.length, 8), fixed('duration_ns', 'UInt64', this.duration, 8),
      fixed('zap_target', T.zapTarget, this.zapTarget, 1), nullable('had_vmas', this.hadVmasNull, this.hadVmas),
      fixed('revoked', 'Bool', this.revoked, 1), fixed('dmabuf_count', 'UInt32', this.dmabufCount, 4),
      nullable('device_has_vmas', this.hasVmasNull, this.hasVmas),
      fixed('dmabuf_id', 'UInt64', this.dmabufId, 8), fixed('importer_count', 'UInt32', this.importerCount, 4),
      fixed('bar', 'UInt8', this.bar, 1), fixed('backing', T.backing, this.backing, 1),
      fixed('mapping_id', 'UInt64', this.mappingId, 8), fixed('map_length', 'UInt64', this.mapLength, 8),
      fixed('snapshot', 'Bool', this.snapshot, 1), fixed('ok', 'Bool', this.ok, 1),
      fixed('trigger', T.trigger, this.trigger, 1), fixed('group_id', 'UInt64', this.groupId, 8),
      // migration 4: DeviceInfo state, TriggerEnd / ResetFunction ret, PowerTransition
      nullable('memory_enabled', this.memEnabledNull, this.memEnabled), nullable('power_state', this.powerNull, this.power, 'UInt8'),
      nullable('device_revoked', this.devRevokedNull, this.devRevoked), nullable('open_count', this.openNull, this.openCount, 'UInt32'),
      nullable('no_command_memory', this.noCmdNull, this.noCmd), nullable('custom_vm_ops_bars', this.customNull, this.custom, 'UInt8'),
      fixed('ret', 'Int32', this.ret, 4), fixed('power_from', 'UInt8', this.powerFrom, 1), fixed('power_to', 'UInt8', this.powerTo, 1),
      // migration 7: the task's cgroup, the hit's kernel stack
      fixed('cgroup_id', 'UInt64', this.cgroup, 8), fixed('stack_id', 'UInt64', this.stack, 8),
    ];
  }
}

function varint(out: Buffer, o: number, v: number): number {
  while (v >= 0x80) { out[o++] = (v & 0x7f) | 0x80; v = Math.floor(v / 128); }
  out[o++] = v;
  return o;
}

function str(out: Buffer, o: number, s: string): number {
  const len = Buffer.byteLength(s, 'utf8');
  o = varint(out, o, len);
  out.write(s, o, 'utf8');
  return o + len;
}

function u64le(out: Buffer, o: number, v: number): number {
  out.writeUInt32LE(v >>> 0, o);
  out.writeUInt32LE(Math.floor(v / TWO32) >>> 0, o + 4);
  return o + 8;
}

/** One column of a Native block: name, ClickHouse type, serialized values. */
interface NativeColumn { name: string; type: string; bytes: Uint8Array }

/** A Native block: column and row counts, then each column's name, type and data. */
function nativeBlock(rows: number, cols: readonly NativeColumn[], into?: { buf: Buffer }): Buffer {
  let size = 20;
  for (const c of cols) size += 20 + Buffer.byteLength(c.name) + Buffer.byteLength(c.type) + c.bytes.length;
  if (into && into.buf.length < size) into.buf = Buffer.allocUnsafeSlow(Math.ceil(size * 1.25));
  const out = into ? into.buf : Buffer.allocUnsafe(size);
  let o = varint(out, 0, cols.length);
  o = varint(out, o, rows);
  for (const c of cols) {
    o = str(out, o, c.name);
    o = str(out, o, c.type);
    out.set(c.bytes, o);
    o += c.bytes.length;
  }
  return out.subarray(0, o);
}

/** A LowCardinality(String) column's first n rows, laid out as ClickHouse's SerializationLowCardinality writes
 * them: shared-dictionaries key version, then the block's dictionary as additional keys, then the indexes. */
function dictColumnBytes(d: DictColumn, n: number): Buffer {
  const keyBytes = d.keys.map((k) => Buffer.from(k, 'utf8'));
  const width = d.keys.length <= 0x100 ? 1 : d.keys.length <= 0x10000 ? 2 : 4;
  const b = Buffer.allocUnsafe(32 + keyBytes.reduce((sum, k) => sum + 10 + k.length, 0) + n * width);
  let o = u64le(b, 0, 1); // KeysSerializationVersion::SharedDictionariesWithAdditionalKeys
  // index type (UInt8/16/32) | HasAdditionalKeysBit | NeedUpdateDictionary
  o = u64le(b, o, (width === 1 ? 0 : width === 2 ? 1 : 2) | (1 << 9) | (1 << 10));
  o = u64le(b, o, keyBytes.length);
  for (const k of keyBytes) { o = varint(b, o, k.length); b.set(k, o); o += k.length; }
  o = u64le(b, o, n);
  const idx = d.rows;
  if (width === 1) for (let i = 0; i < n; i++) b[o++] = idx[i]!;
  else if (width === 2) for (let i = 0; i < n; i++, o += 2) b.writeUInt16LE(idx[i]!, o);
  else { b.set(new Uint8Array(idx.buffer, idx.byteOffset, 4 * n), o); o += 4 * n; }
  return b.subarray(0, o);
}

// ---------------------------------------------------------------- generic row-by-row Native blocks

type ColumnKind = 'String' | 'LowCardinality(String)' | 'UInt64' | 'Int64' | 'UInt32' | 'UInt8';

/** A Native block built row by row from typed setters (for tables with a few rows per event: episodes). */
export class NativeRows {
  rows = 0;
  private readonly cols: { name: string; type: string; kind: ColumnKind; u32?: Uint32Array; u8?: Uint8Array; strs?: string[]; dict?: DictColumn }[];
  private capacity = 1024;

  constructor(columns: readonly { name: string; type: string }[]) {
    this.cols = columns.map(({ name, type }) => {
      const kind: ColumnKind = type === 'String' || type === 'LowCardinality(String)' || type === 'UInt64' || type === 'Int64' || type === 'UInt32'
        ? type : type === 'Int32' ? 'UInt32' : 'UInt8'; // Int32: its 32 bits (x >>> 0); Bool, Enum8, UInt8: one byte
      return { name, type, kind };
    });
    this.allocate(this.capacity);
  }

  private allocate(cap: number): void {
    for (const c of this.cols) {
      if (c.kind === 'String') { c.strs ??= []; continue; }
      if (c.kind === 'LowCardinality(String)') {
        const d = c.dict ?? new DictColumn(c.name, cap);
        if (d.rows.length < cap) { const a = new Uint32Array(cap); a.set(d.rows.subarray(0, this.rows)); d.rows = a; }
        c.dict = d;
        continue;
      }
      const per = c.kind === 'UInt32' ? 1 : c.kind === 'UInt8' ? 0 : 2;
      if (per === 0) { const a = new Uint8Array(cap); if (c.u8) a.set(c.u8.subarray(0, this.rows)); c.u8 = a; } else { const a = new Uint32Array(cap * per); if (c.u32) a.set(c.u32.subarray(0, this.rows * per)); c.u32 = a; }
    }
    this.capacity = cap;
  }

  /** Starts a row; then set every column by index, in any order. */
  row(): number {
    if (this.rows >= this.capacity) this.allocate(this.capacity * 2);
    return this.rows++;
  }

  str(col: number, r: number, v: string | null | undefined): void {
    const c = this.cols[col]!;
    if (c.dict) c.dict.rows[r] = c.dict.id(v);
    else c.strs![r] = v ?? '';
  }
  num(col: number, r: number, v: number | null | undefined): void {
    const c = this.cols[col]!;
    const x = v ?? 0;
    if (c.u8) c.u8[r] = x;
    else if (c.kind === 'UInt32') c.u32![r] = x >>> 0;
    else u64(c.u32!, r, x);
  }
  /** 64-bit value as lo/hi u32 words (values beyond 2^53, e.g. wall-clock offsets in ns). */
  words(col: number, r: number, lo: number, hi: number): void {
    const a = this.cols[col]!.u32!;
    a[2 * r] = lo; a[2 * r + 1] = hi;
  }
  bool(col: number, r: number, v: boolean | null | undefined): void { this.cols[col]!.u8![r] = v ? 1 : 0; }

  take(): Buffer {
    const n = this.rows;
    const parts: NativeColumn[] = [];
    for (const c of this.cols) {
      if (c.kind === 'String') {
        const strs = c.strs!.slice(0, n);
        let size = 0;
        for (const s of strs) { const l = Buffer.byteLength(s, 'utf8'); size += l + (l < 0x80 ? 1 : l < 0x4000 ? 2 : 5); }
        const b = Buffer.allocUnsafe(size);
        let o = 0;
        for (const s of strs) o = str(b, o, s);
        parts.push({ name: c.name, type: c.type, bytes: b.subarray(0, o) });
        c.strs = [];
      } else if (c.dict) {
        parts.push({ name: c.name, type: c.type, bytes: dictColumnBytes(c.dict, n) });
        c.dict.reset();
      } else if (c.u8) {
        parts.push({ name: c.name, type: c.type, bytes: Buffer.from(c.u8.slice(0, n).buffer) });
        c.u8.fill(0, 0, n);
      } else {
        const per = c.kind === 'UInt32' ? 4 : 8;
        parts.push({ name: c.name, type: c.type, bytes: Buffer.from(c.u32!.slice(0, n * per / 4).buffer) });
        c.u32!.fill(0, 0, n * per / 4);
      }
    }
    this.rows = 0;
    return nativeBlock(n, parts);
  }
}
