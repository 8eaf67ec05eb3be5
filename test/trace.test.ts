// Trace I/O: .jsonl ↔ .pb round trips, proto3 JSON input forms, and bad input errors (strict and --lenient).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { v1, type EventBatch } from '../services/core/model.js';
import { BatchScan } from '../services/core/wire.js';
import {
  TraceError, batchToJson, episodeFromJson, episodeToJson, findingFromJson, findingToJson, readTrace, writeTrace, type TraceReadOptions,
} from '../services/trace/index.js';
import { Backing, TraceBuilder, TriggerKind, ZapTarget } from './support/trace-builder.js';

const dir = mkdtempSync(join(tmpdir(), 'revokescope-trace-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const path = (name: string) => join(dir, name);
const D = '0000:3b:00.0';

async function readAll(file: string, opts: TraceReadOptions = {}) {
  const reader = readTrace(file, opts);
  const batches: EventBatch[] = [];
  for await (const b of reader) batches.push(b);
  return { batches, stats: reader.stats, json: batches.map(batchToJson) };
}

async function readError(file: string, opts: TraceReadOptions = {}): Promise<TraceError> {
  try {
    await readAll(file, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(TraceError);
    return e as TraceError;
  }
  throw new Error(`expected ${file} to fail`);
}

/** A trace touching every body, both optional-bool states, enums, and 64-bit values ≥ 2^32. */
function sampleBatches(): EventBatch[] {
  const b = new TraceBuilder('series', 'host-7', 'boot-abc');
  b.info(0, D, 'nvgrace-gpu', false)
    .mmap(1, D, 7, { snapshot: true, backing: Backing.CUSTOM_VM_OPS })
    .mmap(2, D, 8, { bar: 2, backing: Backing.DMABUF })
    .fault(3, D, 8, 2)
    .trigger(99, D, TriggerKind.RESET, 100, 2 ** 33 + 5)
    .acquire(100, D)
    .zap(110, D, { hadVmas: false }) // optional bool present and false: must survive
    .zap(111, D, { target: ZapTarget.DMABUF, hadVmas: true, start: 2 * 2 ** 40, length: 2 ** 40 })
    .revoke(120, D, true, { count: 2, deviceHasVmas: false })
    .move(130, D, 70_000, 3, 2 ** 40 + 1)
    .revoke(500, D, false)
    .release(600, D)
    .munmap(700, D, 8, 2);
  const batches = b.batches(4, { firstSeq: 5_000_000_123 });
  batches[1]!.dropped = 4_294_967_300;
  return batches;
}

describe('round trip', () => {
  it('jsonl → read → pb → read is lossless (enums, optional false, 64-bit ≥ 2^32)', async () => {
    const original = sampleBatches();
    const expected = original.map(batchToJson);
    await writeTrace(path('a.jsonl'), original);
    const fromJsonl = await readAll(path('a.jsonl'));
    expect(fromJsonl.json).toEqual(expected);
    await writeTrace(path('a.pb'), fromJsonl.batches);
    const fromPb = await readAll(path('a.pb'));
    expect(fromPb.json).toEqual(expected);
    expect(fromPb.stats).toMatchObject({ batches: original.length, events: 13, skipped: 0 });
    // and back to jsonl: byte-identical text
    await writeTrace(path('b.jsonl'), fromPb.batches);
    expect(readFileSync(path('b.jsonl'), 'utf8')).toBe(readFileSync(path('a.jsonl'), 'utf8'));

    const zaps = fromPb.batches.flatMap((b) => b.events).filter((e) => e?.zap);
    expect(zaps.map((e) => e!.zap!.hadVmas)).toEqual([false, true]);
    expect(Object.prototype.hasOwnProperty.call(zaps[0]!.zap, 'hadVmas')).toBe(true);
    const release = fromPb.batches.flatMap((b) => b.events).find((e) => e?.lockRelease)!;
    expect(release.zap ?? null).toBeNull();
    expect(fromPb.batches[0]!.firstSeq).toBe(5_000_000_123);
    expect(fromPb.batches[1]!.dropped).toBe(4_294_967_300);
  });

  it('writes canonical proto3 JSON: lowerCamelCase, 64-bit as strings, enums by name', async () => {
    await writeTrace(path('c.jsonl'), sampleBatches());
    const lines = readFileSync(path('c.jsonl'), 'utf8').trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    const first = JSON.parse(lines[0]!);
    expect(first.firstSeq).toBe('5000000123');
    expect(first.host).toMatchObject({ hostname: 'host-7', bootId: 'boot-abc', kernelRelease: '7.2.0-rc3-vfio-dmabuf-mmap' });
    expect(first.host.capabilities).toContain('DMABUF_REVOKE');
    expect(first.events[0]).toMatchObject({ tsNs: '1000000000000', deviceInfo: { driver: 'nvgrace-gpu', dmabufBarMmap: true } });
    expect(first.events[1].barMmap).toMatchObject({ backing: 'CUSTOM_VM_OPS', mappingId: '7', snapshot: true });
    const text = lines.join('\n');
    expect(text).toContain('"hadVmas":false');
    expect(text).toContain('"deviceHasVmas":false');
    expect(text).toContain('"target":"DMABUF"');
    expect(text).toContain('"groupId":"8589934597"');
    expect(text).toContain('"lockRelease":{}');
    expect(text).not.toMatch(/_[a-z]+":/); // no snake_case keys
  });

  it('reads .pb across chunk boundaries (tiny chunks) and `-` from stdin', async () => {
    const original = sampleBatches();
    await writeTrace(path('d.pb'), original);
    for (const chunkBytes of [1, 3, 7, 64]) {
      expect((await readAll(path('d.pb'), { chunkBytes })).json).toEqual(original.map(batchToJson));
    }
    const text = original.map((b) => JSON.stringify(batchToJson(b))).join('\r\n');
    const stdin = Readable.from([Buffer.from(`\ufeff${text}\n\n`)]);
    expect((await readAll('-', { stdin })).json).toEqual(original.map(batchToJson));
  });

  it('an empty file is an empty trace', async () => {
    writeFileSync(path('empty.pb'), '');
    writeFileSync(path('empty.jsonl'), '');
    expect((await readAll(path('empty.pb'))).batches).toEqual([]);
    expect((await readAll(path('empty.jsonl'))).batches).toEqual([]);
  });
});

describe('proto3 JSON input', () => {
  it('accepts snake_case proto names, numbers for 64-bit, enum numbers, null as default', async () => {
    const snake = {
      host: { hostname: 'h', boot_id: 'b', kernel_release: '6.12.1', capabilities: [1, 'ZAP'] },
      first_seq: 4294967296, dropped: null,
      events: [
        { ts_ns: '4294967297', device: D, tid: '12', lock_acquire: { wait_ns: 12 } },
        { ts_ns: 4294967298, device: D, zap: { duration_ns: '5e3', had_vmas: false, target: 1, length: '6597069766656' } },
        { tsNs: '4294967299', device: D, trigger: { kind: 'D3HOT', group_id: '0' } },
        { tsNs: '4294967300', device: D, dmabuf_revoke: { revoked: true, device_has_vmas: true } },
      ],
    };
    const camel = {
      host: { hostname: 'h', bootId: 'b', kernelRelease: '6.12.1', capabilities: ['LOCK', 'ZAP'] },
      firstSeq: '4294967296',
      events: [
        { tsNs: '4294967297', device: D, tid: 12, lockAcquire: { waitNs: '12' } },
        { tsNs: '4294967298', device: D, zap: { durationNs: '5000', hadVmas: false, target: 'DEVICE', length: '6597069766656' } },
        { tsNs: '4294967299', device: D, trigger: { kind: 'D3HOT' } },
        { tsNs: '4294967300', device: D, dmabufRevoke: { revoked: true, deviceHasVmas: true } },
      ],
    };
    writeFileSync(path('snake.jsonl'), `${JSON.stringify(snake)}\n`);
    writeFileSync(path('camel.jsonl'), `${JSON.stringify(camel)}\n`);
    const a = await readAll(path('snake.jsonl'));
    const b = await readAll(path('camel.jsonl'));
    expect(a.json).toEqual(b.json);
    expect(a.json[0]).toEqual(camel);
    expect(a.batches[0]!.events![1]!.zap!.durationNs).toBe(5000);
    expect(a.batches[0]!.events![0]!.body).toBe('lockAcquire');
  });
});

describe('bad input', () => {
  const host = { hostname: 'h', bootId: 'b' };
  const ev = (body: object, extra: object = {}) => ({ tsNs: '1000', device: D, ...body, ...extra });
  const good = JSON.stringify({ host, events: [ev({ lockRelease: {} })] });

  const cases: [string, string, RegExp][] = [
    ['bad JSON', '{"host": {"hostname": "h"', /:2: bad JSON/],
    ['unknown enum name', JSON.stringify({ host, events: [ev({ trigger: { kind: 'REBOOT' } })] }),
      /:2: events\[0\]\.trigger\.kind: unknown enum name "REBOOT" for revokescope\.v1\.TriggerKind/],
    ['unknown enum number', JSON.stringify({ host, events: [ev({ zap: { target: 9 } })] }), /:2: events\[0\]\.zap\.target: unknown enum number 9/],
    ['wrong type (string field)', JSON.stringify({ host: { hostname: 5, bootId: 'b' } }), /:2: host\.hostname: expected a string, got number/],
    ['wrong type (integer field)', JSON.stringify({ host, events: [ev({ lockRelease: {} }, { cpu: 'x' })] }), /:2: events\[0\]\.cpu: expected an integer, got "x"/],
    ['wrong type (bool field)', JSON.stringify({ host, events: [ev({ barFault: { ok: 'yes' } })] }), /events\[0\]\.barFault\.ok: expected true or false/],
    ['fraction', JSON.stringify({ host, events: [ev({ lockAcquire: { waitNs: 1.5 } })] }), /events\[0\]\.lockAcquire\.waitNs: expected an integer, got 1.5/],
    ['negative uint64', JSON.stringify({ host, events: [ev({ zap: { durationNs: '-5' } })] }), /events\[0\]\.zap\.durationNs: negative value -5 for uint64/],
    ['uint64 overflow', JSON.stringify({ host, firstSeq: '18446744073709551616' }), /firstSeq: value out of range/],
    ['uint32 overflow', JSON.stringify({ host, events: [ev({ lockRelease: {} }, { pid: 2 ** 32 })] }), /events\[0\]\.pid: value out of range 4294967296 for uint32/],
    ['unknown field', JSON.stringify({ host, events: [ev({ lockRelease: {} }, { tsNS: '5' })] }), /events\[0\]: unknown field "tsNS" in revokescope\.v1\.Event/],
    ['two oneof members', JSON.stringify({ host, events: [ev({ lockRelease: {}, zap: {} })] }), /events\[0\]: oneof body has two members set: lockRelease and zap/],
    ['field given twice', JSON.stringify({ host, first_seq: 1, firstSeq: 1 }), /firstSeq: field given twice/],
    ['not an object', '[1,2]', /:2: expected a JSON object for revokescope\.v1\.EventBatch, got array/],
    ['missing host', JSON.stringify({ events: [] }), /:2: host: missing/],
    ['missing boot id', JSON.stringify({ host: { hostname: 'h' } }), /:2: host\.bootId: missing or empty/],
    ['no body', JSON.stringify({ host, events: [{ tsNs: '5', device: D }] }), /events\[0\]: event has no body/],
    ['no device', JSON.stringify({ host, events: [{ tsNs: '5', zap: {} }] }), /events\[0\]\.device: missing on a zap event/],
    ['not a PCI address', JSON.stringify({ host, events: [ev({ zap: {} }, { device: 'eth0' })] }), /events\[0\]\.device: "eth0" is not a PCI address/],
    ['ts_ns 0', JSON.stringify({ host, events: [ev({ zap: {} }, { tsNs: '0' })] }), /events\[0\]\.tsNs: must be a positive integer/],
    ['absurd duration', JSON.stringify({ host, events: [ev({ zap: { durationNs: String(90_000e9) } })] }), /events\[0\]\.zap\.durationNs: absurd duration/],
    ['BAR index', JSON.stringify({ host, events: [ev({ barMmap: { bar: 6 } })] }), /events\[0\]\.barMmap\.bar: BAR index 6 outside 0\.\.5/],
    // fuzz inputs #42392, #71712, #77722, #79362 of seed 1: 2^64 - 1 is 2^64 as a number, which protobufjs encodes as 0
    ['ts_ns 2^64 - 1', JSON.stringify({ host, events: [ev({ zap: {} }, { tsNs: '18446744073709551615' })] }), /events\[0\]\.tsNs: 18446744073709552000 is not below 2\^64, outside uint64/],
    ['first_seq 2^64 - 1024', JSON.stringify({ host, firstSeq: '18446744073709550592' }), /firstSeq: 18446744073709552000 is not below 2\^64/],
    ['lone surrogate', JSON.stringify({ host: { hostname: 'h\uD800', bootId: 'b' } }), /host\.hostname: invalid UTF-8 \(a proto3 string must be UTF-8\): a lone surrogate/],
  ];
  for (const [name, line, message] of cases) {
    it(`${name}: names the file and line`, async () => {
      const file = path(`bad-${name.replace(/\W+/g, '-')}.jsonl`);
      writeFileSync(file, `${good}\n${line}\n${good}\n`);
      const err = await readError(file);
      expect(err.message.startsWith(`${file}:2: `)).toBe(true);
      expect(err.message).toMatch(message);
      expect(err.where).toMatchObject({ file, line: 2 });
    });
  }

  it('the .jsonl reader and the wire reader accept the same 64-bit values (ts_ns, first_seq), and read them alike', async () => {
    const varint = (v: bigint): number[] => { const out = []; while (v > 127n) { out.push(Number(v & 127n) | 128); v >>= 7n; } out.push(Number(v)); return out; };
    const hostBytes = v1.HostInfo.encode(host).finish();
    const edge = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.bigInt({ min: (1n << 64n) - 4096n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: (1n << 53n) - 8n, max: (1n << 53n) + 8n }), fc.constantFrom(0n, 1n, (1n << 64n) - 1024n, (1n << 64n) - 1025n));
    await fc.assert(fc.asyncProperty(edge, edge, async (ts, seq) => {
      const line = JSON.stringify({ host, firstSeq: String(seq), events: [ev({ lockRelease: {} }, { tsNs: String(ts) })] });
      const reader = readTrace('-', { format: 'jsonl', lenient: true, stdin: Readable.from([Buffer.from(`${line}\n`)]) });
      const json: EventBatch[] = [];
      for await (const b of reader) json.push(b);
      const evBytes = [0x08, ...varint(ts), 0x32, D.length, ...Buffer.from(D), 0x62, 0];
      const frame = Uint8Array.from([0x0a, hostBytes.length, ...hostBytes, 0x10, ...varint(seq), 0x22, evBytes.length, ...evBytes]);
      let scan: BatchScan | undefined;
      try { scan = new BatchScan().read(frame); } catch { scan = undefined; }
      expect(json.length === 1).toBe(scan !== undefined);
      if (scan) {
        expect([scan.ts[0], scan.firstSeq]).toEqual([Number(json[0]!.events![0]!.tsNs), Number(json[0]!.firstSeq)]);
        // and the accepted batch, encoded again, is read the same (2^64 would encode as 0)
        expect(new BatchScan().read(v1.EventBatch.encode(json[0]!).finish()).ts[0]).toBe(scan.ts[0]);
      }
    }), { numRuns: 300 });
  });

  it('--lenient skips and counts bad lines, keeps the good ones', async () => {
    const file = path('lenient.jsonl');
    writeFileSync(file, [good, cases[0]![1], good, '', cases[1]![1], cases[16]![1], good].join('\n'));
    const r = await readAll(file, { lenient: true });
    expect(r.batches).toHaveLength(3);
    expect(r.stats.skipped).toBe(3);
    expect(r.stats.skipReasons.map((s) => s.slice(file.length))).toEqual([
      expect.stringMatching(/^:2: bad JSON/), expect.stringMatching(/^:5: events\[0\]\.trigger\.kind/),
      expect.stringMatching(/^:6: events\[0\]: event has no body/),
    ]);
  });

  it('a missing file and an unknown extension are clear errors', async () => {
    expect((await readError(path('nope.jsonl'))).message).toBe(`${path('nope.jsonl')}: cannot read: no such file`);
    expect(() => readTrace(path('x.csv'))).toThrow(/x\.csv: unknown trace format/);
  });

  describe('.pb', () => {
    const records = () => sampleBatches().map((b) => Buffer.from(v1.EventBatch.encodeDelimited(b).finish()));

    it('truncated file: names the record and its byte offset; lenient counts it and stops', async () => {
      const rs = records();
      const whole = Buffer.concat(rs);
      const last = rs.at(-1)!.length;
      const offset = whole.length - last;
      const body = last - (last - 1 < 128 ? 1 : 2); // minus the varint length prefix
      writeFileSync(path('trunc.pb'), whole.subarray(0, whole.length - 5));
      const err = await readError(path('trunc.pb'));
      expect(err.message).toBe(`${path('trunc.pb')}: record 4 at byte ${offset}: truncated record: length prefix says ${body} bytes, file ends after ${body - 5}`);
      expect(err.where).toMatchObject({ record: 4, offset });
      const r = await readAll(path('trunc.pb'), { lenient: true });
      expect(r.batches).toHaveLength(3);
      expect(r.stats).toMatchObject({ skipped: 1, truncated: true });
    });

    it('truncated length prefix', async () => {
      writeFileSync(path('trunc2.pb'), Buffer.concat([records()[0]!, Buffer.from([0x85])]));
      expect((await readError(path('trunc2.pb'))).message).toMatch(/record 2 at byte \d+: truncated length prefix/);
    });

    it('absurd length prefix', async () => {
      writeFileSync(path('huge.pb'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]));
      expect((await readError(path('huge.pb'))).message).toMatch(/record 1 at byte 0: record length 4294967295 exceeds/);
    });

    it('a corrupt record inside intact framing: error, or skipped in lenient mode', async () => {
      const rs = records();
      const garbage = Buffer.from([0x04, 0x0f, 0xff, 0xff, 0xff]); // length 4, then a bad wire type
      writeFileSync(path('corrupt.pb'), Buffer.concat([rs[0]!, garbage, rs[1]!]));
      const err = await readError(path('corrupt.pb'));
      expect(err.message).toMatch(new RegExp(`record 2 at byte ${rs[0]!.length}: bad protobuf: `));
      const r = await readAll(path('corrupt.pb'), { lenient: true });
      expect(r.batches).toHaveLength(2);
      expect(r.stats).toMatchObject({ skipped: 1, truncated: false });
    });

    it('validates decoded batches too (unknown enum number, missing device)', async () => {
      const bad = v1.EventBatch.encodeDelimited({ host: { hostname: 'h', bootId: 'b' },
        events: [{ tsNs: 5, device: D, trigger: { kind: 42 as TriggerKind } }] }).finish();
      writeFileSync(path('enum.pb'), Buffer.concat([records()[0]!, bad]));
      expect((await readError(path('enum.pb'))).message).toMatch(/record 2 at byte \d+: events\[0\]\.trigger\.kind: unknown TriggerKind value 42/);
    });
  });

  it('the writer refuses an invalid batch', async () => {
    await expect(writeTrace(path('w.pb'), [{ host: { hostname: 'h', bootId: 'b' }, events: [{ tsNs: 5, zap: {} }] }]))
      .rejects.toThrow(/w\.pb: refusing to write batch 1: events\[0\]\.device: missing/);
  });
});

describe('episode and finding JSON', () => {
  it('every field, proto3 JSON names, 64-bit as strings, enums by name', () => {
    const ep = episodeToJson({ episodeId: 'e1', acquireTsNs: 2 ** 40, trigger: TriggerKind.HOT_RESET, revoke: true } as never);
    expect(ep).toMatchObject({ episodeId: 'e1', acquireTsNs: '1099511627776', trigger: 'HOT_RESET', revokeNs: '0', complete: false, zapCount: 0 });
    expect(Object.keys(ep)).toHaveLength(34);
    const f = findingToJson({ findingId: 'f', kind: v1.FindingKind.SKIPPED_ZAP, severity: v1.Severity.CRITICAL, tsNs: 5 } as never);
    expect(f).toMatchObject({ findingId: 'f', kind: 'SKIPPED_ZAP', severity: 'CRITICAL', tsNs: '5', inconclusive: false, evidence: {} });
    expect(Object.keys(f)).toHaveLength(12);
  });

  it('evidence is written as the JSON object it holds, and read back into its text', () => {
    const evidence = { rule: 'skipped_zap', facts: { deviceZaps: 0 } };
    const f = findingToJson({ findingId: 'f', kind: v1.FindingKind.SKIPPED_ZAP, evidence: JSON.stringify(evidence) } as never);
    expect(f.evidence).toEqual(evidence);
    expect(JSON.parse(findingFromJson(f).evidence)).toEqual(evidence);
    // Text that is not a JSON object (hand-written or older findings) stays readable.
    expect(findingToJson({ findingId: 'g', evidence: 'zap skipped' } as never).evidence).toEqual({ text: 'zap skipped' });
  });

  it('episodeFromJson / findingFromJson read them back (strictly)', () => {
    const ep = episodeToJson({ episodeId: 'e1', acquireTsNs: 2 ** 40, trigger: TriggerKind.HOT_RESET, revoke: true } as never);
    expect(episodeFromJson(ep)).toMatchObject({ episodeId: 'e1', acquireTsNs: 2 ** 40, trigger: TriggerKind.HOT_RESET, revoke: true, holdNs: 0 });
    expect(findingFromJson({ finding_id: 'x', kind: 'LOCK_NOT_HELD', severity: 3 })).toMatchObject({
      findingId: 'x', kind: v1.FindingKind.LOCK_NOT_HELD, severity: v1.Severity.CRITICAL, evidence: '' });
    expect(() => findingFromJson({ kind: 'LOCK_NOT_HELDX' })).toThrow(/kind: unknown enum name "LOCK_NOT_HELDX"/);
  });
});

describe('writer errors', () => {
  it('an unwritable path is a clear error', async () => {
    await expect(writeTrace(join(dir, 'no/such/dir/x.jsonl'), sampleBatches()))
      .rejects.toThrow(/no\/such\/dir\/x\.jsonl: cannot write: ENOENT/);
  });
});
