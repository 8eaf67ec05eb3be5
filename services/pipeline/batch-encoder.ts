// EventBatch → protobuf bytes written straight into one buffer: the same bytes as the generated
// v1.EventBatch.encode (same field order, a field written when present and not null, 64-bit numbers as
// protobufjs' LongBits.fromNumber writes them), without protobufjs' per-field operation objects, which
// made encoding and its garbage collection most of the simulator thread's cost besides generation.
// test/pipeline-encoder.test.ts holds it byte-equal to the generated encoder.
import type { Event, EventBatch } from '../core/model.js';

const has = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);
/** A plain object's non-null fields are its own (Object.prototype has none of these names): has() is
 * needed only for other objects, e.g. a message instance with defaults on its prototype. */
const plain = (o: object): boolean => Object.getPrototypeOf(o) === Object.prototype;

export class BatchEncoder {
  private buf: Uint8Array;
  private pos = 0;
  private readonly text = new TextEncoder();
  private strings = new Map<string, Uint8Array>();

  constructor(initial = 512 * 1024) { this.buf = new Uint8Array(initial); }

  /** Bytes written since the last take(). */
  get length(): number { return this.pos; }

  /** The bytes written so far, in a buffer of their own (transferable); the encoder starts over. */
  take(): Uint8Array {
    const out = this.buf.slice(0, this.pos);
    this.pos = 0;
    return out;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n));
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
  }

  private varint32(v: number): void {
    const b = this.buf;
    let p = this.pos;
    while (v > 127) { b[p++] = (v & 127) | 128; v >>>= 7; }
    b[p++] = v;
    this.pos = p;
  }

  /** uint64/int64 from a JS number (protobufjs LongBits.fromNumber + writeVarint64). */
  private varint64(value: number): void {
    if (value >= 0 && value <= 0xffffffff) { this.varint32(value >>> 0); return; }
    const sign = value < 0;
    if (sign) value = -value;
    let lo = value >>> 0;
    let hi = ((value - lo) / 4294967296) >>> 0;
    if (sign) {
      hi = ~hi >>> 0; lo = ~lo >>> 0;
      if (++lo > 4294967295) { lo = 0; if (++hi > 4294967295) hi = 0; }
    }
    const b = this.buf;
    let p = this.pos;
    while (hi) { b[p++] = (lo & 127) | 128; lo = ((lo >>> 7) | (hi << 25)) >>> 0; hi >>>= 7; }
    while (lo > 127) { b[p++] = (lo & 127) | 128; lo >>>= 7; }
    b[p++] = lo;
    this.pos = p;
  }

  /** int32 (enums): negative values as 10-byte varints, like protobufjs. */
  private int32(v: number): void { if (v < 0) this.varint64(v); else this.varint32(v); }

  private string(s: string): void {
    // ASCII shorter than 128 (every simulator string): one length byte, then the char codes as they are.
    const n = s.length;
    if (n < 128) {
      this.ensure(1 + n);
      const b = this.buf;
      let p = this.pos + 1, i = 0;
      for (; i < n; i++) { const c = s.charCodeAt(i); if (c > 127) break; b[p++] = c; }
      if (i === n) { b[this.pos] = n; this.pos = p; return; }
    }
    let bytes = this.strings.get(s);
    if (bytes === undefined) {
      bytes = this.text.encode(s);
      if (this.strings.size >= 4096) this.strings = new Map();
      this.strings.set(s, bytes);
    }
    this.ensure(5 + bytes.length);
    this.varint32(bytes.length);
    const b = this.buf;
    let p = this.pos;
    for (let i = 0; i < bytes.length; i++) b[p++] = bytes[i]!;
    this.pos = p;
  }

  /** Opens a length-delimited field: tag, one byte reserved for the length. */
  private open(tag: number): number {
    this.ensure(72); // room for any body message's scalar fields
    this.buf[this.pos++] = tag;
    return this.pos++;
  }

  /** Closes it: writes the length, moving the content when the length needs more than one byte. */
  private close(at: number): void {
    const len = this.pos - at - 1;
    if (len < 128) { this.buf[at] = len; return; }
    let extra = 0;
    for (let v = len >>> 7; v > 0; v >>>= 7) extra++;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    const p = this.pos + extra;
    this.pos = at;
    this.varint32(len);
    this.pos = p;
  }

  /** Appends one EventBatch (top level, not length-prefixed: what EventBatch.encode(b).finish() gives). */
  encode(m: EventBatch): void {
    this.ensure(32);
    const pm = plain(m);
    if (m.host != null && (pm || has(m, 'host'))) {
      const at = this.open(10);
      const h = m.host;
      const ph = plain(h);
      if (h.hostname != null && (ph || has(h, 'hostname'))) { this.buf[this.pos++] = 10; this.string(h.hostname); }
      if (h.bootId != null && (ph || has(h, 'bootId'))) { this.ensure(1); this.buf[this.pos++] = 18; this.string(h.bootId); }
      if (h.kernelRelease != null && (ph || has(h, 'kernelRelease'))) { this.ensure(1); this.buf[this.pos++] = 26; this.string(h.kernelRelease); }
      if (h.collectorVersion != null && (ph || has(h, 'collectorVersion'))) { this.ensure(1); this.buf[this.pos++] = 34; this.string(h.collectorVersion); }
      if (h.capabilities != null && h.capabilities.length) {
        const c = this.open(42);
        for (const v of h.capabilities) { this.ensure(10); this.int32(v as number); }
        this.close(c);
      }
      this.close(at);
    }
    this.ensure(24);
    if (m.firstSeq != null && (pm || has(m, 'firstSeq'))) { this.buf[this.pos++] = 16; this.varint64(m.firstSeq); }
    if (m.dropped != null && (pm || has(m, 'dropped'))) { this.buf[this.pos++] = 24; this.varint64(m.dropped); }
    if (m.events != null && m.events.length) for (const ev of m.events) this.event(ev);
    if (m.nowNs != null && (pm || has(m, 'nowNs'))) { this.ensure(11); this.buf[this.pos++] = 40; this.varint64(m.nowNs); }
    // the boot's lookup tables (issue 17): cgroups (field 6), stacks (7)
    if (m.cgroups != null) for (const c of m.cgroups) {
      const at = this.open(50);
      this.ensure(12);
      if (c.id != null) { this.buf[this.pos++] = 8; this.varint64(c.id); }
      if (c.path != null) { this.ensure(1); this.buf[this.pos++] = 18; this.string(c.path); }
      if (c.podName != null) { this.ensure(1); this.buf[this.pos++] = 26; this.string(c.podName); }
      this.close(at);
    }
    if (m.stacks != null) for (const k of m.stacks) {
      const at = this.open(58);
      this.ensure(12);
      if (k.id != null) { this.buf[this.pos++] = 8; this.varint64(k.id); }
      for (const f of k.frames ?? []) { this.ensure(1); this.buf[this.pos++] = 18; this.string(f); }
      this.close(at);
    }
  }

  private event(e: Event): void {
    const pe = plain(e);
    const at = this.open(34);
    this.ensure(48);
    const b = this.buf;
    const ts = e.tsNs;
    if (ts != null && (pe || has(e, 'tsNs'))) { b[this.pos++] = 8; this.varint64(ts); }
    const cpu = e.cpu;
    if (cpu != null && (pe || has(e, 'cpu'))) { b[this.pos++] = 16; this.varint32(cpu >>> 0); }
    const pid = e.pid;
    if (pid != null && (pe || has(e, 'pid'))) { b[this.pos++] = 24; this.varint32(pid >>> 0); }
    const tid = e.tid;
    if (tid != null && (pe || has(e, 'tid'))) { b[this.pos++] = 32; this.varint32(tid >>> 0); }
    const comm = e.comm;
    if (comm != null && (pe || has(e, 'comm'))) { b[this.pos++] = 42; this.string(comm); }
    const device = e.device;
    if (device != null && (pe || has(e, 'device'))) { this.ensure(1); this.buf[this.pos++] = 50; this.string(device); }
    this.ensure(22);
    if (e.cgroupId != null && (pe || has(e, 'cgroupId'))) { this.buf[this.pos++] = 56; this.varint64(e.cgroupId); }
    if (e.stackId != null && (pe || has(e, 'stackId'))) { this.buf[this.pos++] = 64; this.varint64(e.stackId); }
    const d = e.deviceInfo;
    if (d != null && (pe || has(e, 'deviceInfo'))) {
      const pd = plain(d);
      const s = this.open(82);
      if (d.driver != null && (pd || has(d, 'driver'))) { this.buf[this.pos++] = 10; this.string(d.driver); }
      this.ensure(8);
      if (d.zapBarsOnRevoke != null && (pd || has(d, 'zapBarsOnRevoke'))) { this.buf[this.pos++] = 16; this.buf[this.pos++] = d.zapBarsOnRevoke ? 1 : 0; }
      if (d.dmabufBarMmap != null && (pd || has(d, 'dmabufBarMmap'))) { this.buf[this.pos++] = 24; this.buf[this.pos++] = d.dmabufBarMmap ? 1 : 0; }
      this.ensure(40);
      if (d.memoryEnabled != null && (pd || has(d, 'memoryEnabled'))) { this.buf[this.pos++] = 32; this.buf[this.pos++] = d.memoryEnabled ? 1 : 0; }
      if (d.powerState != null && (pd || has(d, 'powerState'))) { this.buf[this.pos++] = 40; this.varint32(d.powerState >>> 0); }
      if (d.revoked != null && (pd || has(d, 'revoked'))) { this.buf[this.pos++] = 48; this.buf[this.pos++] = d.revoked ? 1 : 0; }
      if (d.openCount != null && (pd || has(d, 'openCount'))) { this.buf[this.pos++] = 56; this.varint32(d.openCount >>> 0); }
      if (d.noCommandMemory != null && (pd || has(d, 'noCommandMemory'))) { this.buf[this.pos++] = 64; this.buf[this.pos++] = d.noCommandMemory ? 1 : 0; }
      if (d.customVmOpsBars != null && (pd || has(d, 'customVmOpsBars'))) { this.buf[this.pos++] = 72; this.varint32(d.customVmOpsBars >>> 0); }
      this.close(s);
    }
    this.ensure(80);
    const l = e.lockAcquire;
    if (l != null && (pe || has(e, 'lockAcquire'))) {
      const pl = plain(l);
      const s = this.open(90);
      if (l.waitNs != null && (pl || has(l, 'waitNs'))) { this.buf[this.pos++] = 8; this.varint64(l.waitNs); }
      this.close(s);
    }
    if (e.lockRelease != null && (pe || has(e, 'lockRelease'))) { const s = this.open(98); this.close(s); }
    const z = e.zap;
    if (z != null && (pe || has(e, 'zap'))) {
      const pz = plain(z);
      const s = this.open(106);
      if (z.start != null && (pz || has(z, 'start'))) { this.buf[this.pos++] = 8; this.varint64(z.start); }
      if (z.length != null && (pz || has(z, 'length'))) { this.buf[this.pos++] = 16; this.varint64(z.length); }
      if (z.durationNs != null && (pz || has(z, 'durationNs'))) { this.buf[this.pos++] = 24; this.varint64(z.durationNs); }
      if (z.target != null && (pz || has(z, 'target'))) { this.buf[this.pos++] = 32; this.int32(z.target); }
      if (z.hadVmas != null && (pz || has(z, 'hadVmas'))) { this.buf[this.pos++] = 40; this.buf[this.pos++] = z.hadVmas ? 1 : 0; }
      this.close(s);
    }
    const r = e.dmabufRevoke;
    if (r != null && (pe || has(e, 'dmabufRevoke'))) {
      const pr = plain(r);
      const s = this.open(114);
      if (r.revoked != null && (pr || has(r, 'revoked'))) { this.buf[this.pos++] = 8; this.buf[this.pos++] = r.revoked ? 1 : 0; }
      if (r.dmabufCount != null && (pr || has(r, 'dmabufCount'))) { this.buf[this.pos++] = 16; this.varint32(r.dmabufCount >>> 0); }
      if (r.durationNs != null && (pr || has(r, 'durationNs'))) { this.buf[this.pos++] = 24; this.varint64(r.durationNs); }
      if (r.deviceHasVmas != null && (pr || has(r, 'deviceHasVmas'))) { this.buf[this.pos++] = 32; this.buf[this.pos++] = r.deviceHasVmas ? 1 : 0; }
      this.close(s);
    }
    const n = e.moveNotify;
    if (n != null && (pe || has(e, 'moveNotify'))) {
      const pn = plain(n);
      const s = this.open(122);
      if (n.dmabufId != null && (pn || has(n, 'dmabufId'))) { this.buf[this.pos++] = 8; this.varint64(n.dmabufId); }
      if (n.importerCount != null && (pn || has(n, 'importerCount'))) { this.buf[this.pos++] = 16; this.varint32(n.importerCount >>> 0); }
      if (n.durationNs != null && (pn || has(n, 'durationNs'))) { this.buf[this.pos++] = 24; this.varint64(n.durationNs); }
      this.close(s);
    }
    // fields 16–19 take two-byte tags
    const mm = e.barMmap;
    if (mm != null && (pe || has(e, 'barMmap'))) {
      const pmm = plain(mm);
      const s = this.open2(130);
      if (mm.bar != null && (pmm || has(mm, 'bar'))) { this.buf[this.pos++] = 8; this.varint32(mm.bar >>> 0); }
      if (mm.backing != null && (pmm || has(mm, 'backing'))) { this.buf[this.pos++] = 16; this.int32(mm.backing); }
      if (mm.mappingId != null && (pmm || has(mm, 'mappingId'))) { this.buf[this.pos++] = 24; this.varint64(mm.mappingId); }
      if (mm.length != null && (pmm || has(mm, 'length'))) { this.buf[this.pos++] = 32; this.varint64(mm.length); }
      if (mm.snapshot != null && (pmm || has(mm, 'snapshot'))) { this.buf[this.pos++] = 40; this.buf[this.pos++] = mm.snapshot ? 1 : 0; }
      this.close(s);
    }
    const mu = e.barMunmap;
    if (mu != null && (pe || has(e, 'barMunmap'))) {
      const pmu = plain(mu);
      const s = this.open2(138);
      if (mu.bar != null && (pmu || has(mu, 'bar'))) { this.buf[this.pos++] = 8; this.varint32(mu.bar >>> 0); }
      if (mu.mappingId != null && (pmu || has(mu, 'mappingId'))) { this.buf[this.pos++] = 16; this.varint64(mu.mappingId); }
      this.close(s);
    }
    const f = e.barFault;
    if (f != null && (pe || has(e, 'barFault'))) {
      const pf = plain(f);
      const s = this.open2(146);
      if (f.bar != null && (pf || has(f, 'bar'))) { this.buf[this.pos++] = 8; this.varint32(f.bar >>> 0); }
      if (f.mappingId != null && (pf || has(f, 'mappingId'))) { this.buf[this.pos++] = 16; this.varint64(f.mappingId); }
      if (f.ok != null && (pf || has(f, 'ok'))) { this.buf[this.pos++] = 24; this.buf[this.pos++] = f.ok ? 1 : 0; }
      this.close(s);
    }
    const t = e.trigger;
    if (t != null && (pe || has(e, 'trigger'))) {
      const pt = plain(t);
      const s = this.open2(154);
      if (t.kind != null && (pt || has(t, 'kind'))) { this.buf[this.pos++] = 8; this.int32(t.kind); }
      if (t.groupId != null && (pt || has(t, 'groupId'))) { this.buf[this.pos++] = 16; this.varint64(t.groupId); }
      this.close(s);
    }
    const te = e.triggerEnd;
    if (te != null && (pe || has(e, 'triggerEnd'))) {
      const pte = plain(te);
      const s = this.open2(162);
      if (te.kind != null && (pte || has(te, 'kind'))) { this.buf[this.pos++] = 8; this.int32(te.kind); }
      if (te.ret != null && (pte || has(te, 'ret'))) { this.buf[this.pos++] = 16; this.sint32(te.ret); }
      this.close(s);
    }
    const pw = e.powerTransition;
    if (pw != null && (pe || has(e, 'powerTransition'))) {
      const ppw = plain(pw);
      const s = this.open2(170);
      if (pw.from != null && (ppw || has(pw, 'from'))) { this.buf[this.pos++] = 8; this.varint32(pw.from >>> 0); }
      if (pw.to != null && (ppw || has(pw, 'to'))) { this.buf[this.pos++] = 16; this.varint32(pw.to >>> 0); }
      if (pw.durationNs != null && (ppw || has(pw, 'durationNs'))) { this.buf[this.pos++] = 24; this.varint64(pw.durationNs); }
      this.close(s);
    }
    const rf = e.resetFunction;
    if (rf != null && (pe || has(e, 'resetFunction'))) {
      const prf = plain(rf);
      const s = this.open2(178);
      if (rf.ret != null && (prf || has(rf, 'ret'))) { this.buf[this.pos++] = 8; this.sint32(rf.ret); }
      if (rf.durationNs != null && (prf || has(rf, 'durationNs'))) { this.buf[this.pos++] = 16; this.varint64(rf.durationNs); }
      this.close(s);
    }
    this.close(at);
  }

  /** sint32: zigzag, then a varint of the unsigned 32 bits (protobufjs Writer.sint32). */
  private sint32(v: number): void { this.varint32((((v << 1) ^ (v >> 31)) >>> 0)); }

  /** open() for a tag >= 128 (two varint bytes: field numbers 16–2047). */
  private open2(tag: number): number {
    this.ensure(72);
    this.buf[this.pos++] = (tag & 127) | 128;
    this.buf[this.pos++] = tag >>> 7;
    return this.pos++;
  }
}
