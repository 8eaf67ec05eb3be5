// The correlator's from-bytes path (services/core/wire.ts + the reorder buffer): it must read exactly what
// protobufjs' generated decoder reads, and the correlator must give the same outputs from bytes as from
// decoded batches — on the fleet simulator, on random events, across checkpoints and on malformed input.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { simulate } from '../collectors/simulator/index.js';
import { analyzeBatches, analyzeFrames } from '../services/core/analysis.js';
import { Correlator } from '../services/core/correlator/index.js';
import { bodyOf, v1, type Event, type EventBatch } from '../services/core/model.js';
import { FieldError, validateBatch } from '../services/core/validate.js';
import { BatchScan, NameTable, PACKED, WireError, WireEvent, isUtf8 } from '../services/core/wire.js';
import { anyEvent, event, u64 } from './support/arbitraries.js';
import { EventFields as EV } from '../gen/fields.js';

const S = 1e9;
const encode = (b: EventBatch): Uint8Array => v1.EventBatch.encode(b).finish();

/** What a reader sees of an event: every scalar, the oneof member and its fields (defaults filled in). */
function view(ev: Event): Record<string, unknown> {
  const kind = bodyOf(ev);
  const body = kind ? (ev[kind] as Record<string, unknown>) : undefined;
  const fields: Record<string, unknown> = {};
  if (kind && body) {
    const defaults = v1[({ deviceInfo: 'DeviceInfo', lockAcquire: 'LockAcquire', lockRelease: 'LockRelease', zap: 'Zap',
      dmabufRevoke: 'DmaBufRevoke', moveNotify: 'MoveNotify', barMmap: 'BarMmap', barMunmap: 'BarMunmap', barFault: 'BarFault',
      trigger: 'Trigger', triggerEnd: 'TriggerEnd', powerTransition: 'PowerTransition', resetFunction: 'ResetFunction' } as const)[kind]].prototype as unknown as Record<string, unknown>;
    for (const k of Object.keys(defaults)) if (typeof defaults[k] !== 'function' && !k.startsWith('_')) fields[k] = body[k] ?? defaults[k] ?? null;
  }
  return { tsNs: ev.tsNs ?? 0, cpu: ev.cpu ?? 0, pid: ev.pid ?? 0, tid: ev.tid ?? 0, comm: ev.comm ?? '', device: ev.device ?? '',
    body: kind ?? null, fields };
}

/** Every event of a frame through scan + load, as `view`s. Each event is read both ways the wire reader has: its body
 * decoded from the frame again (`load`) and taken from the numbers the scan packed (`loadPacked`, what the reorder
 * buffer releases; the scan's fast path or, outside its limits, decode + checkBody + packBody): they must agree. */
function wireViews(frame: Uint8Array): Record<string, unknown>[] {
  const scan = new BatchScan().read(frame);
  const names = new NameTable();
  const out: Record<string, unknown>[] = [];
  const ev = new WireEvent(), packed = new WireEvent();
  for (let i = 0; i < scan.count; i++) {
    const device = names.get(frame, scan.devStart[i]!, scan.devEnd[i]!);
    const v = view(ev.load(frame, scan.start[i]!, scan.end[i]!, scan.bodyAt[i]!, scan.ts[i]!, scan.tid[i]!, scan.cpu[i]!, device));
    // as the reorder buffer does: a LockAcquire's comm read at arrival (its pid and ids then come from the packed numbers)
    const comm = scan.body[i] === EV.lockAcquire ? packed.commAt(frame, scan.commStart[i]!, scan.commEnd[i]!) : null;
    const p = packed.head(scan.ts[i]!, scan.tid[i]!, scan.cpu[i]!, device)
      .loadPacked(frame, scan.start[i]!, scan.end[i]!, scan.bodyAt[i]!, scan.body[i]!, scan.vals, i * PACKED, comm);
    expect(view(p)).toEqual(v);
    expect([p.cgroupId, p.stackId]).toEqual([ev.cgroupId, ev.stackId]);
    out.push(v);
  }
  return out;
}

describe('wire reader agrees with protobufjs', () => {
  it('every event of a simulated fleet (every era, driver and fault), field by field', () => {
    const { batches } = simulate({ hosts: 12, durationNs: 30 * S, seed: 3 });
    let n = 0;
    for (const b of batches) {
      const frame = encode(b);
      const decoded = v1.EventBatch.decode(frame);
      const scan = new BatchScan().read(frame);
      expect(scan.host).toEqual(decoded.host);
      expect([scan.firstSeq, scan.dropped, scan.count]).toEqual([Number(decoded.firstSeq), Number(decoded.dropped), decoded.events.length]);
      expect(wireViews(frame)).toEqual(decoded.events.map(view));
      n += decoded.events.length;
    }
    expect(n).toBeGreaterThan(5000);
  });

  it('random events (every field, optional bools unset/false/true, non-ASCII names)', () => {
    fc.assert(fc.property(fc.array(event, { maxLength: 20 }), u64, u64, u64, (events, firstSeq, dropped, nowNs) => {
      const frame = encode({ host: { hostname: 'h', bootId: 'b' }, firstSeq, dropped, events, nowNs });
      const decoded = v1.EventBatch.decode(frame);
      expect(wireViews(frame)).toEqual(decoded.events.map(view));
      expect(new BatchScan().read(frame).nowNs).toBe(decoded.nowNs);
    }), { numRuns: 300 });
  });

  it('rejects exactly what validate.ts rejects of the decoded batch, with the same field path', () => {
    fc.assert(fc.property(fc.array(anyEvent, { maxLength: 6 }), fc.constantFrom('h', ''), (events, hostname) => {
      const frame = encode({ host: { hostname, bootId: 'b' }, firstSeq: 1, events });
      const byObjects = (() => { try { validateBatch(v1.EventBatch.decode(frame)); return 'ok'; } catch (e) { return (e as FieldError).path; } })();
      const byWire = (() => { try { new BatchScan().read(frame); return 'ok'; } catch (e) { return (e as FieldError).path; } })();
      // validate.ts checks the host first, the wire reader meets it in wire order: compare which, not the first
      if (byObjects === 'host.hostname' || byWire === 'host.hostname') expect(hostname).toBe('');
      else expect(byWire).toBe(byObjects);
    }), { numRuns: 2000 });
  });

  it('a known field with the wrong wire type is an error naming it (protobufjs would read it by number)', () => {
    const ok = encode({ host: { hostname: 'h', bootId: 'b' }, events: [{ tsNs: 5, device: '0000:3b:00.0', barFault: { bar: 1, mappingId: 2, ok: true } }] });
    expect(() => new BatchScan().read(ok)).not.toThrow();
    // barFault.bar (field 1) sent as fixed32 instead of a varint
    const ev = v1.Event.encode({ tsNs: 5, device: '0000:3b:00.0' }).finish();
    const body = new Uint8Array([(1 << 3) | 5, 1, 0, 0, 0]);
    const evBytes = new Uint8Array([...ev, 0x92, 0x01, body.length, ...body]); // field 18 (barFault), length-delimited
    const host = v1.HostInfo.encode({ hostname: 'h', bootId: 'b' }).finish();
    const frame = new Uint8Array([0x0a, host.length, ...host, 0x22, evBytes.length, ...evBytes]);
    expect(() => new BatchScan().read(frame)).toThrow(/events\[0\]\.barFault\.bar: wire type 5 \(fixed32\), the schema says 0/);
    // ts_ns (field 1) as length-delimited
    const frame2 = new Uint8Array([0x0a, host.length, ...host, 0x22, 4, 0x0a, 2, 0x01, 0x02]);
    expect(() => new BatchScan().read(frame2)).toThrow(/events\[0\]\.tsNs: wire type 2/);
  });

  it('skips unknown fields of every wire type, like protobufjs', () => {
    const ev = v1.Event.encode({ tsNs: 5, device: '0000:3b:00.0', zap: { start: 7, durationNs: 3 } }).finish();
    const unknown = new Uint8Array([
      0xc0, 0x02, 0x96, 0x01, // field 40, varint (a two-byte tag)
      0xc9, 0x02, 1, 2, 3, 4, 5, 6, 7, 8, // field 41, fixed64
      (9 << 3) | 2, 2, 0xaa, 0xbb, // field 9, bytes
      0xf5, 0x01, 1, 2, 3, 4, // field 30, fixed32 (a two-byte tag)
    ]);
    const evBytes = new Uint8Array([...ev, ...unknown]);
    const host = v1.HostInfo.encode({ hostname: 'h', bootId: 'b' }).finish();
    const frame = new Uint8Array([0x0a, host.length, ...host, (4 << 3) | 2, evBytes.length, ...evBytes, 0xc0, 0x02, 1]); // + batch field 40, varint
    const decoded = v1.EventBatch.decode(frame);
    expect(decoded.events).toHaveLength(1);
    expect(wireViews(frame)).toEqual(decoded.events.map(view));
  });
});

describe('wire reader against protobufjs on mutated frames (npm run fuzz classes)', () => {
  const host = v1.HostInfo.encode({ hostname: 'h', bootId: 'b' }).finish();
  const good = encode({ host: { hostname: 'h', bootId: 'b' }, firstSeq: 3, events: [{ tsNs: 5, device: '0000:3b:00.0', zap: { start: 7, durationNs: 3 } }] });
  /** 'ok' or the reason, per reader. */
  const wireOf = (f: Uint8Array): string => { try { new BatchScan().read(f); return 'ok'; } catch (e) { return (e as Error).message; } };
  const pjOf = (f: Uint8Array): string => { try { validateBatch(v1.EventBatch.decode(f)); return 'ok'; } catch (e) { return (e as Error).message; } };

  it('a tag above 32 bits is not protobuf (fuzz input #1450 of seed 1: a 10-byte tag read as field 0, wire type 0)', () => {
    // 2^64 - 1 as a tag: protobufjs' uint32 sees 0xffffffff (wire type 7); a double would round it to 2^64 (field 0)
    const frame = new Uint8Array([...good, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00]);
    expect(pjOf(frame)).toMatch(/invalid wire type 7/);
    expect(() => new BatchScan().read(frame)).toThrow(new WireError(`tag at byte ${good.length} is not a 32-bit varint`));
    // a 6-byte tag, and field number 0 (one byte, and a non-minimal two-byte 0)
    expect(wireOf(new Uint8Array([...good, 0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00]))).toMatch(/not a 32-bit varint/);
    expect(wireOf(new Uint8Array([...good, 0x00, 0x00]))).toMatch(/field number 0/);
    expect(wireOf(new Uint8Array([...good, 0x80, 0x00, 0x00]))).toMatch(/field number 0/);
    // a non-minimal 5-byte tag of a valid field is protobuf (first_seq = 9)
    const long = new Uint8Array([...good, 0x90, 0x80, 0x80, 0x80, 0x00, 0x09]);
    expect(wireOf(long)).toBe('ok');
    expect(new BatchScan().read(long).firstSeq).toBe(9);
    expect(Number(v1.EventBatch.decode(long).firstSeq)).toBe(9);
  });

  it('a bool is a 32-bit varint, as protobufjs reads it (fuzz input #3475 of seed 3: a 7-byte hadVmas)', () => {
    // Zap { start: 0, had_vmas: <varint of n bytes>, duration_ns: 3 } in an event of `good`'s batch
    const frameWith = (hadVmas: number[]): Uint8Array => {
      const zap = [0x08, 0x00, 0x28, ...hadVmas, 0x18, 0x03];
      const ev = [0x08, 0x05, 0x32, 12, ...new TextEncoder().encode('0000:3b:00.0'), 0x6a, zap.length, ...zap];
      return new Uint8Array([0x0a, host.length, ...host, 0x22, ev.length, ...ev]);
    };
    // 1; 0 in 5 bytes; 2^32, whose low 32 bits are 0 (false to both: a 64-bit read said true); the 10 bytes of -1
    for (const [bytes, want] of [[[0x01], true], [[0x80, 0x80, 0x80, 0x80, 0x00], false], [[0x80, 0x80, 0x80, 0x80, 0x10], false],
      [[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], true]] as const) {
      const f = frameWith([...bytes]);
      expect([wireOf(f), pjOf(f)]).toEqual(['ok', 'ok']);
      expect(wireViews(f)[0]!.fields).toMatchObject({ hadVmas: want });
      expect(v1.EventBatch.decode(f).events[0]!.zap!.hadVmas).toBe(want);
    }
    const seven = frameWith([0x80, 0x80, 0x80, 0x80, 0x80, 0xc0, 0x01]); // 6 to 9 bytes: not a 32-bit value
    expect(wireOf(seven)).toMatch(/a 7-byte varint in a 32-bit field/);
    expect(pjOf(seven)).not.toBe('ok');
  });

  it('groups nested deeper than 100 are a WireError, not a stack overflow (protobufjs stops at 100 too)', () => {
    // field 15 is unknown to EventBatch: 0x7b starts a group of it, 0x7c ends one
    const nested = (n: number): Uint8Array => new Uint8Array([...good, ...new Array<number>(n).fill(0x7b), ...new Array<number>(n).fill(0x7c)]);
    expect(wireOf(nested(100))).toBe('ok'); // unknown field 15, groups 100 deep, closed
    expect(pjOf(nested(100))).toBe('ok');
    expect(() => new BatchScan().read(nested(102))).toThrow(WireError);
    expect(pjOf(nested(102))).toMatch(/maximum nesting depth/);
    expect(() => new BatchScan().read(new Uint8Array(200_000).fill(0x7b))).toThrow(new WireError('groups nested more than 100 deep at byte 102'));
  });

  it('a uint64 of 8 to 10 bytes reads as protobufjs reads it (bits past 64 dropped, one rounding)', () => {
    const varints = [
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 10th byte carries bits past 64
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // 2^64 - 1
      [0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], // 2^53 + 1: rounds once
      [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f], // 2^56 - 1
    ];
    for (const v of varints) {
      const frame = new Uint8Array([0x0a, host.length, ...host, 0x10, ...v]); // first_seq
      expect(new BatchScan().readHeader(frame).firstSeq).toBe(Number(v1.EventBatch.decode(frame).firstSeq)); // unchecked: 2^64 is refused by read()
    }
  });

  it('accepts no mutated frame protobufjs + validateBatch reject, and reads what both accept the same way', () => {
    const { batches } = simulate({ hosts: 1, durationNs: 2 * S, seed: 9 });
    const frames = batches.slice(0, 8).map((b) => encode({ ...b, events: (b.events ?? []).slice(0, 6) }));
    const mutation = fc.record({
      frame: fc.nat({ max: frames.length - 1 }), at: fc.nat(), cut: fc.nat({ max: 12 }),
      insert: fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 12 }),
        fc.constantFrom([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]).map((a) => Uint8Array.from(a))),
    });
    fc.assert(fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (ms) => {
      let f = frames[ms[0]!.frame]!;
      for (const m of ms) {
        const at = m.at % (f.length + 1);
        f = new Uint8Array([...f.subarray(0, at), ...m.insert, ...f.subarray(Math.min(f.length, at + m.cut))]);
      }
      const wire = wireOf(f), pj = pjOf(f);
      if (wire === 'ok') {
        expect(pj).toBe('ok');
        const scan = new BatchScan().read(f), b = v1.EventBatch.decode(f);
        expect([scan.count, scan.firstSeq, scan.dropped, scan.host?.hostname, scan.host?.bootId, [...scan.ts.subarray(0, scan.count)]])
          .toEqual([b.events.length, Number(b.firstSeq), Number(b.dropped), b.host?.hostname, b.host?.bootId, b.events.map((e) => Number(e.tsNs))]);
      }
    }), { numRuns: 3000 });
  });

  it('invalid UTF-8 in any string field rejects the batch, naming the field; validateBatch rejects its lone surrogate alike', () => {
    const bad = [0x68, 0xc3, 0x28]; // 'h', then a 2-byte lead whose next byte is no continuation
    const ev = (extra: Partial<Event>): Event => ({ tsNs: 5, device: '0000:3b:00.0', comm: 'qemu', lockRelease: {}, ...extra });
    const cases: [string, EventBatch][] = [
      ['host.hostname', { host: { hostname: '\uD800', bootId: 'b' }, events: [ev({})] }],
      ['host.bootId', { host: { hostname: 'h', bootId: 'b\uDC00' }, events: [ev({})] }],
      ['host.kernelRelease', { host: { hostname: 'h', bootId: 'b', kernelRelease: '6.1\uD800' }, events: [ev({})] }],
      ['host.collectorVersion', { host: { hostname: 'h', bootId: 'b', collectorVersion: '\uDBFFx' }, events: [ev({})] }],
      ['events[0].comm', { host: { hostname: 'h', bootId: 'b' }, events: [ev({ comm: 'q\uD800' })] }],
      ['events[0].deviceInfo.driver', { host: { hostname: 'h', bootId: 'b' }, events: [ev({ lockRelease: null, deviceInfo: { driver: 'vfio\uDC00' } })] }],
      ['events[0].moveNotify.importers', { host: { hostname: 'h', bootId: 'b' }, events: [ev({ lockRelease: null, moveNotify: { dmabufId: 1, importers: ['ok', '\uD800'] } })] }],
    ];
    for (const [path, batch] of cases) {
      // protobufjs writes a lone surrogate as the 3 bytes of a surrogate code point: not UTF-8
      expect(() => new BatchScan().read(encode(batch)), path).toThrow(new FieldError(path, 'invalid UTF-8 (a proto3 string must be UTF-8)'));
      expect(() => validateBatch(batch), path).toThrow(new FieldError(path, 'invalid UTF-8 (a proto3 string must be UTF-8): a lone surrogate'));
    }
    // bytes no JS string encodes to (fuzz inputs #85, #200, #450 of seed 1): a hostname protobufjs reads as 'h(' (merged)
    const hostBytes = new Uint8Array([0x0a, bad.length, ...bad, 0x12, 1, 0x62]);
    const frame = new Uint8Array([0x0a, hostBytes.length, ...hostBytes, ...encode({ events: [ev({})] })]);
    expect(() => new BatchScan().read(frame)).toThrow(new FieldError('host.hostname', 'invalid UTF-8 (a proto3 string must be UTF-8)'));
    // a byte-order mark is a character, kept by both (TextDecoder would strip it by default)
    const bom = encode({ host: { hostname: '\uFEFFh', bootId: 'b' }, events: [ev({ comm: '\uFEFFq' })] });
    expect(new BatchScan().read(bom).host?.hostname).toBe(v1.EventBatch.decode(bom).host?.hostname);
    expect(wireViews(bom)).toEqual(v1.EventBatch.decode(bom).events.map(view));
  });

  it('a string field is rejected by the wire reader exactly when validateBatch rejects the string (any UTF-16)', () => {
    const str = fc.string({ unit: 'binary', maxLength: 8 }); // lone surrogates included
    fc.assert(fc.property(str, str, str, (hostname, comm, driver) => {
      const batch: EventBatch = { host: { hostname: `h${hostname}`, bootId: 'b' }, events: [
        { tsNs: 5, device: '0000:3b:00.0', comm, lockRelease: {} }, { tsNs: 6, device: '0000:3b:00.0', deviceInfo: { driver } }] };
      const byObjects = (() => { try { validateBatch(batch); return 'ok'; } catch (e) { return (e as FieldError).path; } })();
      const byWire = (() => { try { new BatchScan().read(encode(batch)); return 'ok'; } catch (e) { return (e as FieldError).path; } })();
      expect(byWire).toBe(byObjects);
    }), { numRuns: 2000 });
  });

  it('an event naming the previous event\'s device bytes (devSame, not checked again) is accepted or rejected as validateBatch does', () => {
    // good addresses, near misses (function 8, a space, upper-case hex, a short domain) and the same bytes in a row
    const device = fc.constantFrom('0000:3b:00.0', '0000:3b:00.1', '0000:3b:00.8', '0000:3b:00.0 ', '0000:3B:00.0', '000:3b:00.0', '10000:3b:00.0', '');
    fc.assert(fc.property(fc.array(device, { minLength: 1, maxLength: 6 }), (devices) => {
      const batch: EventBatch = { host: { hostname: 'h', bootId: 'b' }, events: devices.map((d, i) => ({ tsNs: 5 + i, device: d, lockRelease: {} })) };
      const byObjects = (() => { try { validateBatch(batch); return 'ok'; } catch (e) { return (e as FieldError).path; } })();
      const scan = new BatchScan();
      const byWire = (() => { try { scan.read(encode(batch)); return 'ok'; } catch (e) { return (e as FieldError).path; } })();
      expect(byWire).toBe(byObjects);
      if (byWire === 'ok') expect([...scan.devSame.subarray(0, scan.count)]).toEqual(devices.map((d, i) => (i > 0 && d === devices[i - 1] ? 1 : 0)));
    }), { numRuns: 2000 });
  });

  it('isUtf8 agrees with Node\'s UTF-8 decoder on random bytes (valid exactly when decoding and encoding again gives them back)', () => {
    const bytes = fc.oneof(fc.uint8Array({ maxLength: 12 }),
      fc.array(fc.constantFrom(0x41, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x9f, 0x90), { maxLength: 8 }).map((a) => Uint8Array.from(a)));
    fc.assert(fc.property(bytes, (b) => {
      const roundTrip = Buffer.from(Buffer.from(b).toString('utf8'), 'utf8');
      expect(isUtf8(b, 0, b.length)).toBe(Buffer.compare(roundTrip, Buffer.from(b)) === 0);
    }), { numRuns: 5000 });
  });

});

describe('correlator from bytes', () => {
  it('gives the same episodes, findings and stats as from decoded batches (3 simulated fleets)', () => {
    for (const seed of [1, 2, 7]) {
      const { batches } = simulate({ hosts: 15, durationNs: 40 * S, seed });
      const a = analyzeBatches(batches);
      const w = analyzeFrames(batches.map(encode));
      expect(w.episodes.length).toBeGreaterThan(500);
      expect(w).toEqual(a);
    }
  });

  it('a checkpoint taken with events buffered as bytes resumes to the same result', () => {
    const { batches } = simulate({ hosts: 6, durationNs: 30 * S, seed: 5 });
    const frames = batches.map(encode);
    const whole = analyzeFrames(frames);
    const cut = Math.floor(frames.length / 2);
    const first = new Correlator();
    const episodes = [], findings = [];
    for (const f of frames.slice(0, cut)) first.ingestBytes(f);
    episodes.push(...first.takeEpisodes()); findings.push(...first.takeFindings());
    const snap = first.snapshot();
    expect(JSON.parse(snap).hosts.some((h: { pending: unknown[] }) => h.pending.length > 0)).toBe(true);
    const second = Correlator.restore(snap);
    for (const f of frames.slice(cut)) second.ingestBytes(f);
    second.finish();
    episodes.push(...second.takeEpisodes()); findings.push(...second.takeFindings());
    expect({ episodes, findings }).toEqual({ episodes: whole.episodes, findings: whole.findings });
    expect(second.stats).toEqual(whole.stats);
  });

  it('malformed or invalid bytes throw (WireError, FieldError) and change nothing; the next good batch goes on', () => {
    const { batches } = simulate({ hosts: 2, durationNs: 10 * S, seed: 4 });
    const frames = batches.map(encode);
    const c = new Correlator();
    const episodes = [];
    c.ingestBytes(frames[0]!);
    episodes.push(...c.takeEpisodes());
    const before = c.snapshot();
    const good = frames[1]!;
    const bad: Uint8Array[] = [
      good.subarray(0, good.length - 3), // truncated
      new Uint8Array([0x22, 0x7f, 0x08]), // events length past the end
      new Uint8Array([0x0f]), // wire type 7
      // an event whose zap body is cut inside (outer lengths consistent)
      new Uint8Array([0x22, 0x06, 0x32, 0x01, 0x64, 0x6a, 0x01, 0x08]),
    ];
    for (const b of bad) {
      expect(() => c.ingestBytes(b)).toThrow(WireError);
      expect(() => v1.EventBatch.decode(b)).toThrow();
      expect(c.snapshot()).toBe(before);
    }
    for (const f of frames.slice(1)) { c.ingestBytes(f); episodes.push(...c.takeEpisodes()); }
    c.finish();
    episodes.push(...c.takeEpisodes());
    const expected = analyzeBatches(batches);
    expect(episodes).toEqual(expected.episodes);
    expect(c.stats).toEqual(expected.stats);
  });
});

describe('NameTable', () => {
  const enc = new TextEncoder();
  it('returns each name exactly, whatever the lengths, near-misses and table size', () => {
    // near-misses: names that share length and last bytes (the table's key) and differ only in the middle
    const name = fc.oneof(
      fc.tuple(fc.constantFrom('0000', '0001', '10000', '0000000a', 'ABCD'), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 7 }))
        .map(([d, b, s, f]) => `${d}:${b.toString(16).padStart(2, '0')}:${s.toString(16).padStart(2, '0')}.${f}`),
      fc.string({ minLength: 1, maxLength: 20 }),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 6 }));
    fc.assert(fc.property(fc.array(name, { minLength: 1, maxLength: 80 }), fc.array(fc.nat(), { maxLength: 200 }), (names, picks) => {
      const t = new NameTable();
      for (const p of [...names.keys(), ...picks]) {
        const n = names[p % names.length]!;
        const bytes = enc.encode(`xx${n}yy`); // at an offset, as in a frame
        const got = t.get(bytes, 2, bytes.length - 2);
        expect(got).toBe(n);
      }
    }), { numRuns: 300 });
  });
});
