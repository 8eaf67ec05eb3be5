// The agent sends only events the readers accept (found by npm run fuzz: the decoder made events from damaged lines
// that made their whole batch invalid, so the correlator dead-lettered the good events with them). A refused event
// is counted in the batch's `dropped` with its reason, in a replayed capture as in the live agent's output stage.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { replayRaw } from '../collectors/agent/replay.js';
import { runAgent } from '../collectors/agent/agent.js';
import { CollectorOutput } from '../collectors/agent/spool-output.js';
import { DiskSpool } from '../collectors/agent/spool.js';
import type { ProbeHit } from '../collectors/probes/hit.js';
import { parseKallsyms } from '../collectors/probes/kernel.js';
import { makePlan } from '../collectors/probes/plan.js';
import { v1, type EventBatch } from '../services/core/model.js';
import { validateBatch, validateEvent } from '../services/core/validate.js';
import { BatchScan } from '../services/core/wire.js';
import { FuzzCorpus } from '../bench/fuzz-inputs.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/kernel');
const host = { hostname: 'lab', bootId: 'fixture' };
const dirs: string[] = [];
afterAll(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** `text` with `from` replaced by `to` (which must be there). */
function damage(text: string, from: string, to: string): string {
  expect(text.includes(from), from).toBe(true);
  return text.replace(from, to);
}

/** The readers' verdict on a batch: validateBatch on the object and the wire reader on its encoding. */
function readersAccept(b: EventBatch): void {
  validateBatch(b);
  new BatchScan().read(v1.EventBatch.encode(b).finish());
}

describe('replayRaw: a damaged line is not sent, it is counted in dropped', () => {
  const cases = [
    { backend: 'ftrace', file: 'raw-ftrace-dmabuf.txt', damages: [
      // a capture header naming a device that is not a PCI address (its DeviceInfo seed)
      ['devices=0000:01:00.0@vfio-pci,', 'devices=0000:01:00.0@vfio-pci,0000:04:@vfio-pci,'],
      // a timestamp of 0
      ['    85.192569: reset_fn__0', '     0.000000: reset_fn__0'],
      // a mapping whose end is below its start: a negative length
      ['start=0x7f5315d3e000 end=0x7f5315e3e000', 'start=0x7f5315e3e000 end=0x7f5315d3e000'],
    ] },
    { backend: 'bpftrace', file: 'raw-bpftrace-dmabuf.txt', damages: [
      ['devices=0000:01:00.0@vfio-pci,', 'devices=0000:01:00.0@vfio-pci,0000:04:@vfio-pci,'],
      ['RS reset_fn 288167522186', 'RS reset_fn 0'],
      ['start=0x7fca373cf000 end=0x7fca374cf000', 'start=0x7fca374cf000 end=0x7fca373cf000'],
    ] },
  ] as const;
  for (const c of cases) {
    it(`${c.backend}: a bad PCI address, ts 0 and a negative length leave the batch valid, with 3 more dropped`, () => {
      const text = readFileSync(join(FIX, '7.3', c.file), 'utf8');
      let bad = text;
      for (const [from, to] of c.damages) bad = damage(bad, from, to);
      const r = replayRaw(bad, host);
      const batch = r.batches[0]!;
      expect(() => readersAccept(batch)).not.toThrow();
      const good = replayRaw(text, host);
      expect(good.rejected).toBe(0);
      for (const ev of batch.events ?? []) expect(() => validateEvent(ev, 'event')).not.toThrow();
      expect(r.rejected).toBe(3);
      expect(Number(batch.dropped)).toBe(Number(good.batches[0]!.dropped) + 3);
      expect(r.firstReason).toMatch(/is not a PCI address|tsNs: must be a positive integer|length: expected a non-negative integer/);
      expect(batch.events!.some((e) => e.device === '0000:04:' || Number(e.tsNs) === 0)).toBe(false);
    });
    it(`${c.backend}: every good event of the capture is still sent (only the damaged line's event is left out)`, () => {
      const text = readFileSync(join(FIX, '7.3', c.file), 'utf8');
      const good = replayRaw(text, host).events;
      // the reset line at ts 0: the clean capture's events but that one, in the same order
      const r = replayRaw(damage(text, c.damages[1][0], c.damages[1][1]), host);
      expect(() => readersAccept(r.batches[0]!)).not.toThrow();
      expect(r.rejected).toBe(1);
      const resets = good.filter((e) => e.resetFunction);
      const gone = resets.find((e) => !r.events.some((x) => x.resetFunction && Number(x.tsNs) === Number(e.tsNs)))!;
      expect(gone).toBeDefined();
      expect(r.events).toEqual(good.filter((e) => e !== gone));
    });
  }
});

describe('a number no uint64 can hold (found by npm run fuzz after the above)', () => {
  it('validateEvent refuses 2^64 (the encoder would write it as 0) and accepts the largest safe integer', () => {
    const ev = (tsNs: number, length: number) => ({ tsNs, device: '0000:01:00.0', barMmap: { bar: 0, mappingId: 1, length } });
    expect(() => validateEvent(ev(2 ** 64, 1), 'event')).toThrow(/^event\.tsNs: 18446744073709552000 is not below 2\^64/);
    expect(() => validateEvent(ev(1, 2 ** 64), 'event')).toThrow(/^event\.barMmap\.length: 18446744073709552000 is not below 2\^64/);
    expect(() => validateEvent(ev(Number.MAX_SAFE_INTEGER, 2 ** 63), 'event')).not.toThrow();
  });
  it('bpftrace: a ts of 18446744073709551616 is not sent (it would arrive as ts 0 and fail the batch)', () => {
    const text = readFileSync(join(FIX, '7.3', 'raw-bpftrace-dmabuf.txt'), 'utf8');
    const r = replayRaw(damage(text, 'RS mmap 288220892020', 'RS mmap 18446744073709551616'), host);
    expect(() => readersAccept(r.batches[0]!)).not.toThrow();
    expect(r.rejected).toBeGreaterThanOrEqual(1);
    expect(r.firstReason).toMatch(/tsNs: 18446744073709552000 is not below 2\^64/);
  });
});

describe('a number no uint32 or sint32 can hold (a damaged capture\'s tid of 2^32 reached the correlator)', () => {
  const DEV = '0000:01:00.0';
  it('validateEvent refuses it in the event\'s own fields and in the bodies, and accepts both ends of the type', () => {
    const bad: [object, RegExp][] = [
      [{ tid: 2 ** 32, lockRelease: {} }, /^event\.tid: expected a uint32 .*got 4294967296$/],
      [{ pid: -1, lockRelease: {} }, /^event\.pid: expected a uint32/],
      [{ cpu: 1.5, lockRelease: {} }, /^event\.cpu: expected a uint32/],
      [{ dmabufRevoke: { dmabufCount: 2 ** 32 } }, /^event\.dmabufRevoke\.dmabufCount: expected a uint32/],
      [{ moveNotify: { importerCount: -1 } }, /^event\.moveNotify\.importerCount: expected a uint32/],
      [{ deviceInfo: { driver: 'vfio-pci', openCount: 2 ** 32 } }, /^event\.deviceInfo\.openCount: expected a uint32/],
      [{ deviceInfo: { driver: 'vfio-pci', customVmOpsBars: -1 } }, /^event\.deviceInfo\.customVmOpsBars: expected a uint32/],
      [{ triggerEnd: { kind: 1, ret: 2 ** 31 } }, /^event\.triggerEnd\.ret: expected a sint32/],
      [{ resetFunction: { ret: -(2 ** 31) - 1 } }, /^event\.resetFunction\.ret: expected a sint32/],
    ];
    for (const [fields, reason] of bad) expect(() => validateEvent({ tsNs: 1, device: DEV, ...fields }, 'event')).toThrow(reason);
    const good = [
      { tid: 2 ** 32 - 1, pid: 0, cpu: 2 ** 32 - 1, lockRelease: {} },
      { dmabufRevoke: { dmabufCount: 2 ** 32 - 1 } }, { moveNotify: { importerCount: 0 } },
      { triggerEnd: { kind: 1, ret: -(2 ** 31) } }, { resetFunction: { ret: 2 ** 31 - 1 } },
      { deviceInfo: { driver: 'vfio-pci', openCount: 2 ** 32 - 1, customVmOpsBars: 63 } },
    ];
    for (const fields of good) expect(() => validateEvent({ tsNs: 1, device: DEV, ...fields }, 'event')).not.toThrow();
  });
  it('ftrace: fuzz input 423 of seed 1 (a number turned 2^32) sends no event outside the types, and the readers accept what it sends', () => {
    const input = FuzzCorpus.load(process.cwd()).input(1, 423);
    expect(input.kind).toBe('ftrace');
    const r = replayRaw(Buffer.from(input.bytes).toString('utf8'), host);
    expect(r.rejected).toBeGreaterThanOrEqual(1);
    for (const ev of r.events) for (const k of ['tid', 'pid', 'cpu'] as const) expect(Number(ev[k] ?? 0)).toBeLessThan(2 ** 32);
    for (const b of r.batches) expect(() => readersAccept(b)).not.toThrow();
  });
});

describe('the live agent: its output stage never carries an event the readers refuse', () => {
  it('a hit decoded into an invalid event is counted in dropped and in the stats with its reason; the rest is sent', async () => {
    const dir = '6.12';
    const ks = parseKallsyms(readFileSync(join(FIX, dir, 'kallsyms.txt'), 'utf8'));
    const facts = { release: readFileSync(join(FIX, dir, 'kernel_release'), 'utf8').trim(), symbols: ks.symbols, addressesKnown: ks.addressesKnown,
      btf: undefined };
    const plan = makePlan(facts);
    const DEV = '0000:01:00.0';
    const hit = (tsNs: number): ProbeHit => ({ probe: 'trig_config', tsNs, cpu: 0, tid: 9, pid: 9, comm: 'w', args: { dev: DEV, offset: 4n, val: 0n } });
    // a damaged hit (ts 0) between two good ones
    const hits: ProbeHit[] = [hit(1_000), hit(0), hit(2_000)];
    const backend = { attach: async () => ({ attached: plan.attach.filter((p) => p.spec.role !== 'snapshot'), failed: [] }),
      poll: (f: (h: ProbeHit) => void) => { const n = hits.length; hits.splice(0).forEach(f); return n; }, lost: () => 0, detach: async () => {} };
    const spoolDir = mkdtempSync(join(tmpdir(), 'rs-screen-'));
    dirs.push(spoolDir);
    const spool = await DiskSpool.open({ dir: spoolDir, fsync: 'never' });
    const sent: Uint8Array[] = [];
    const sink = { send: async (ms: { value: Uint8Array }[]) => { for (const m of ms) sent.push(m.value); }, close: async () => {} };
    let output: CollectorOutput | undefined;
    const logs: string[] = [];
    const stats = await runAgent({ backend: 'ftrace', facts, plan, backendInstance: backend, devices: [{ address: DEV, driver: 'vfio-pci' }],
      output: (h) => (output = new CollectorOutput({ host: h, sink, spool, firstSeq: 100 })),
      durationMs: 400, heartbeatMs: 1000, flushMs: 50, pollMs: 20, log: (l) => logs.push(l) });
    const batches = sent.map((b) => v1.EventBatch.decode(b) as unknown as EventBatch);
    expect(batches.length).toBeGreaterThan(0);
    for (const b of sent) expect(() => new BatchScan().read(b)).not.toThrow();
    for (const b of batches) expect(() => validateBatch(b)).not.toThrow();
    const events = batches.flatMap((b) => b.events ?? []);
    // the two good triggers and the device's DeviceInfo went; the damaged one did not
    expect(events.filter((e) => e.trigger).map((e) => Number(e.tsNs))).toEqual([1_000, 2_000]);
    expect(events.some((e) => !Number(e.tsNs))).toBe(false);
    expect(batches.reduce((s, b) => s + Number(b.dropped ?? 0), 0)).toBe(1);
    expect(stats.invalid).toBe(1);
    expect(stats.dropped).toBe(1);
    expect(stats.invalidFirstReason).toMatch(/tsNs: must be a positive integer/);
    expect(logs.filter((l) => /readers would refuse/.test(l))).toHaveLength(1);
    expect(output!.stats.droppedEvents).toBe(0); // nothing lost on the way out
  });
});
