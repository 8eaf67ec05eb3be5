// Collector unit tests: BTF offsets, profile selection and plans from recorded kernel facts, tracefs and
// bpftrace rendering, trace_pipe / bpftrace parsing, and real lab captures decoded and analyzed.
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Btf } from '../collectors/probes/btf.js';
import { findCallSites } from '../collectors/probes/callsites.js';
import { parseKallsyms, type KernelFacts } from '../collectors/probes/kernel.js';
import { describePlan, makePlan, selectProfile } from '../collectors/probes/plan.js';
import { ALL_BARS, VFIO_MAGIC } from '../collectors/probes/profiles.js';
import { eventFilter, kprobeDefinition } from '../collectors/ftrace/render.js';
import { parseTraceLine } from '../collectors/ftrace/parse.js';
import { bpftraceScript } from '../collectors/bpftrace/script.js';
import { parseBpftraceLine } from '../collectors/bpftrace/parse.js';
import { BpftraceSession, REORDER_WINDOW_NS } from '../collectors/bpftrace/session.js';
import { Decoder, mappingId } from '../collectors/agent/decoder.js';
import { parseVfioMaps } from '../collectors/agent/devices.js';
import { replayRaw } from '../collectors/agent/replay.js';
import { runAgent } from '../collectors/agent/agent.js';
import type { ProbeHit } from '../collectors/probes/hit.js';
import { parseDuration } from '../services/cli/commands/collect.js';
import { run as runLab } from '../services/cli/commands/lab.js';
import type { CommandIo } from '../services/cli/commands/analyze.js';
import { Capability, FindingKind, TriggerKind, ZapTarget, v1, type Event, type EventBatch } from '../services/core/model.js';
import { validateBatch } from '../services/core/validate.js';
import { BatchScan } from '../services/core/wire.js';
import { checkField, checkImporters, checkLab, parseLedger, unexpectedFindings } from './kernel-lab/expect.js';

const FIX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures/kernel');

/** A tiny BTF blob: int, struct inner { int x; int y; }, struct outer { int a; struct inner in; union { int u; }; }. */
function tinyBtf(): Uint8Array {
  const strs = ['', 'int', 'inner', 'x', 'y', 'outer', 'a', 'in', 'u'];
  const off: Record<string, number> = {};
  let strBytes = Buffer.alloc(0);
  for (const s of strs) { off[s] = strBytes.length; strBytes = Buffer.concat([strBytes, Buffer.from(s + '\0')]); }
  const w: number[] = [];
  const type = (name: string, kind: number, vlen: number, size: number) => w.push(off[name]!, (kind << 24) | vlen, size);
  type('int', 1, 0, 4); w.push(32);                                     // 1: INT
  type('inner', 4, 2, 8); w.push(off.x!, 1, 0, off.y!, 1, 32);          // 2: struct inner
  type('', 5, 1, 4); w.push(off.u!, 1, 0);                              // 3: anonymous union
  type('outer', 4, 3, 16); w.push(off.a!, 1, 0, off.in!, 2, 32, 0, 3, 96); // 4: struct outer
  const types = Buffer.alloc(w.length * 4);
  w.forEach((v, i) => types.writeUInt32LE(v >>> 0, i * 4));
  const hdr = Buffer.alloc(24);
  hdr.writeUInt16LE(0xeb9f, 0); hdr.writeUInt8(1, 2); hdr.writeUInt32LE(24, 4);
  hdr.writeUInt32LE(0, 8); hdr.writeUInt32LE(types.length, 12); hdr.writeUInt32LE(types.length, 16); hdr.writeUInt32LE(strBytes.length, 20);
  return Buffer.concat([hdr, types, strBytes]);
}

/** Synthetic BTF offsets (memory_lock = 0x540 matches Debian 6.12.117; the rest only need to be consistent). */
const OFFSETS_612: Record<string, number> = {
  'vfio_pci_core_device.pdev': 1400, 'vfio_pci_core_device.memory_lock': 1344, 'pci_dev.dev.kobj.name': 200,
  'address_space.i_mmap': 72, 'address_space.host': 0, 'inode.i_sb': 40, 'super_block.s_magic': 96,
  'vm_area_struct.vm_start': 0, 'vm_area_struct.vm_end': 8, 'vm_area_struct.vm_pgoff': 80, 'vm_area_struct.vm_file': 88,
  'vm_area_struct.vm_private_data': 96, 'file.f_mapping': 16, 'vm_fault.vma': 0, 'vm_fault.pgoff': 16,
};
const fakeBtf = (o: Record<string, number>) => ({ offsetOf: (p: string) => o[p], has: () => true });

function facts(dir: string, btf = true): KernelFacts {
  const ks = parseKallsyms(readFileSync(join(FIX, dir, 'kallsyms.txt'), 'utf8'));
  return { release: readFileSync(join(FIX, dir, 'kernel_release'), 'utf8').trim(), symbols: ks.symbols, addressesKnown: ks.addressesKnown,
    btf: btf ? fakeBtf(OFFSETS_612) : undefined };
}

describe('BTF reader', () => {
  it('finds member offsets through embedded structs and anonymous unions', () => {
    const b = new Btf().add(tinyBtf());
    expect(b.offsetOf('outer.a')).toBe(0);
    expect(b.offsetOf('outer.in')).toBe(4);
    expect(b.offsetOf('outer.in.y')).toBe(8);
    expect(b.offsetOf('outer.u')).toBe(12);
    expect(b.offsetOf('outer.nope')).toBeUndefined();
    expect(b.offsetOf('missing.a')).toBeUndefined();
  });
  it.runIf(existsSync('/sys/kernel/btf/vmlinux'))('reads this host\'s vmlinux BTF', () => {
    const b = new Btf().add(readFileSync('/sys/kernel/btf/vmlinux'));
    expect(b.offsetOf('vm_fault.pgoff')).toBe(16);       // also what the 6.12 lab kernel reports
    expect(b.offsetOf('address_space.i_mmap')).toBeGreaterThan(0);
  });
});

describe('probe profiles and plans', () => {
  it('picks the 6.11–6.18 profile on Debian 6.12 and keys zaps on the vfio inode', () => {
    const plan = makePlan(facts('6.12'));
    expect(plan.profile.id).toBe('6.11-6.18');
    const zap = plan.attach.find((p) => p.spec.id === 'zap')!;
    expect(zap.symbol).toBe('unmap_mapping_range');
    expect(zap.filter).toEqual([{ arg: 'magic', eq: [VFIO_MAGIC] }]);
    expect(kprobeDefinition(zap)).toBe('p:revokescope/zap unmap_mapping_range mapping=%di:x64 start=%si:x64 len=%dx:x64 vmas=+72(%di):x64 magic=+96(+40(+0(%di))):x64');
    expect(eventFilter(zap)).toBe('magic == 0x5646494f');
    const lock = plan.attach.find((p) => p.spec.id === 'lock')!;
    // ftrace fetches every hit's arguments before filtering: the sem-relative device name is not fetched
    expect(kprobeDefinition(lock)).toBe('p:revokescope/lock down_write sem=%di:x64 caller=+0($stack):x64');
    expect(eventFilter(lock)).toMatch(/^caller >= 0xffffffff[0-9a-f]+ && caller < 0xffffffff[0-9a-f]+$/);
    expect(eventFilter(plan.attach.find((p) => p.spec.id === 'zap_ret')!)).toMatch(/^__probe_ret_ip >= /);
    expect(kprobeDefinition(plan.attach.find((p) => p.spec.id === 'trig_config')!))
      .toBe('p:revokescope/trig_config vfio_basic_config_write dev=+0(+200(+1400(%di))):string vdev=%di:x64 count=%dx:x32 offset=%r8:x32 val=%r9:x32');
    expect(plan.capabilities).toEqual([Capability.LOCK, Capability.ZAP, Capability.BAR_MMAP, Capability.BAR_FAULT, Capability.TRIGGER, Capability.DEVICE_INFO, Capability.TRIGGER_END].sort((a, b) => a - b));
    expect(plan.missing.map((m) => m.spec.id)).toContain('trig_reset');   // vfio_pci_ioctl_reset is inlined
    expect(describePlan(plan, 'ftrace')).toMatch(/missing:[\s\S]*trig_reset[\s\S]*cost:/);
  });

  it('degrades without BTF: range filter for zaps, no device names, no had_vmas', () => {
    const plan = makePlan(facts('6.12', false));
    const zap = plan.attach.find((p) => p.spec.id === 'zap')!;
    expect(zap.filter).toEqual([{ arg: 'start', eq: [0n] }, { arg: 'len', eq: [ALL_BARS] }]);
    expect(zap.dropped).toEqual(['vmas', 'magic']);
    expect(plan.warnings.join(' ')).toMatch(/no BTF/);
    expect(plan.capabilities).toContain(Capability.ZAP);
  });

  it.runIf(existsSync(join(FIX, '6.1/kallsyms.txt')))('picks the per-VMA profile on Debian 6.1', () => {
    const plan = makePlan(facts('6.1'));
    expect(plan.profile.id).toBe('pre-6.11');
    expect(plan.profile.zapsBeforeLock).toBe(true);
    expect(plan.attach.find((p) => p.spec.id === 'zap')!.symbol).toBe('zap_vma_ptes');
  });

  it('picks the 7.1+ profile on Debian 7.3: DMABUF revokes and importer notifications through dma_buf_invalidate_mappings', () => {
    const btf73 = fakeBtf({ ...OFFSETS_612, 'dma_buf.ops': 8, 'dma_buf.attachments': 16, 'dma_buf_attachment.node': 8, 'dma_buf_attachment.importer_ops': 64,
      'vfio_pci_core_device.vdev.inode': 32, 'inode.i_mapping': 48 });
    const plan = makePlan({ ...facts('7.3'), btf: btf73 });
    expect(plan.profile.id).toBe('7.1+');
    expect(plan.attach.find((p) => p.spec.id === 'move_notify')!.symbol).toBe('dma_buf_invalidate_mappings');
    expect(plan.attach.find((p) => p.spec.id === 'dmabuf_move')!.symbol).toBe('vfio_pci_dma_buf_move');
    expect(plan.capabilities).toContain(Capability.DMABUF_REVOKE);
    expect(plan.capabilities).toContain(Capability.MOVE_NOTIFY);
    // the snapshot's zap flag is not in 7.3 (the series is not applied): dropped, so DeviceInfo leaves it absent
    expect(makePlan({ ...facts('7.3'), btf: fakeBtf({ ...OFFSETS_612, 'device.driver_data': 8, 'device.kobj.name': 0 }) })
      .attach.find((p) => p.spec.id === 'snapshot')!.dropped).toEqual(expect.arrayContaining(['zap_bars', 'bar_needs_zap']));
  });

  it('refuses a kernel without vfio-pci with a clear message', () => {
    const f: KernelFacts = { release: 'x', symbols: parseKallsyms('ffffffff81000000 T unmap_mapping_range\n').symbols, addressesKnown: true };
    expect(selectProfile(f)).toBeUndefined();
    expect(() => makePlan(f)).toThrow(/vfio_pci_core is not loaded/);
  });

  it('generates a bpftrace program with in-kernel predicates and entry/return pairing', () => {
    const s = bpftraceScript(makePlan(facts('6.12')));
    expect(s).toMatch(/kprobe:unmap_mapping_range \/\(\(\*\(uint64 \*\)\(\(\*\(uint64 \*\)\(\(\*\(uint64 \*\)\(arg0\)\) \+ 40\)\) \+ 96\)\) == 0x5646494f\)\//);
    expect(s).toMatch(/kretprobe:unmap_mapping_range \/@pending_zap\[tid\]\/\n\{ delete\(@pending_zap\[tid\]\);/);
    expect(s).toMatch(/kprobe:down_write \/.*reg\("sp"\).*\/\n\{ @pending_lock\[tid\] = 1; printf\("RS lock .* dev=%s/);
    expect(s).toContain('str((*(uint64 *)((*(uint64 *)(arg0 - 1344 + 1400)) + 200)))'.replace('arg0 - 1344 + 1400', 'arg0 + 56'));
  });
});

describe('parsers', () => {
  it('parses trace_pipe lines with and without tgid/irq columns, kretprobe locations and lost markers', () => {
    const a = parseTraceLine('        workload-486     (    486) [000] .....    66.911465: zap: (unmap_mapping_range+0x4/0x140) mapping=0xff16d6c9814bab68 start=0x0 len=0x60000000000 vmas=0xff16 magic=0x5646494f');
    expect(a && 'hit' in a && a.hit).toMatchObject({ probe: 'zap', tid: 486, pid: 486, cpu: 0, tsNs: 66_911_465_000, args: { start: 0n, len: 0x60000000000n, magic: 0x5646494fn } });
    const b = parseTraceLine(" kworker/0:1-17 [001] 7.5: zap_ret: ([unknown/kretprobe'd] <- unmap_mapping_range)");
    expect(b && 'hit' in b && b.hit).toMatchObject({ probe: 'zap_ret', comm: 'kworker/0:1', tid: 17, pid: 17, tsNs: 7_500_000_000 });
    const c = parseTraceLine('  a-b-c-12 (   10) [001] d.h1.   1.000001: trig_config: (x+0x4/0x10) dev="0000:01:00.0" offset=0x4');
    expect(c && 'hit' in c && c.hit).toMatchObject({ comm: 'a-b-c', tid: 12, pid: 10, args: { dev: '0000:01:00.0', offset: 4n } });
    expect(parseTraceLine('CPU:1 [LOST 42 EVENTS]')).toEqual({ lost: 42, cpu: 1 });
    // an absurd count saturates at 2^53 - 1 (EventBatch.dropped must stay below 2^64 for the readers)
    expect(parseTraceLine('CPU:1 [LOST 10000000000000000000000 EVENTS]')).toEqual({ lost: Number.MAX_SAFE_INTEGER, cpu: 1 });
    expect(parseTraceLine('# tracer: nop')).toBeUndefined();
  });
  it('parses bpftrace lines', () => {
    const r = parseBpftraceLine('RS lock 163690645322 1 1170 1169 sem=0xff16d6c981af5d40 caller=0xffffffffc043ec2e dev=0000:01:00.0 |my comm');
    expect(r && 'hit' in r && r.hit).toMatchObject({ probe: 'lock', tsNs: 163690645322, cpu: 1, tid: 1170, pid: 1169, comm: 'my comm', args: { dev: '0000:01:00.0' } });
  });
  it('parses /proc/<pid>/maps lines of vfio device mappings', () => {
    const m = parseVfioMaps('7f55c9f8a000-7f55ca08a000 rw-s 00000000 00:0e 1057 anon_inode:[vfio-device]\n7f00-7f10 r--p 00000000 08:01 5 /usr/lib/x.so\n7f20000-7f21000 rw-s 10000000000 00:0e 1 anon_inode:[vfio-device]');
    expect(m.map((x) => [x.start, x.offset >> 40n])).toEqual([[0x7f55c9f8a000n, 0n], [0x7f20000n, 1n]]);
  });
  it('parses durations', () => {
    expect(parseDuration('30s')).toBe(30_000); expect(parseDuration('500ms')).toBe(500); expect(parseDuration('2m')).toBe(120_000);
    expect(() => parseDuration('soon')).toThrow();
  });
});

describe('decoder', () => {
  const hit = (probe: string, ts: number, args: Record<string, bigint | string> = {}, tid = 7) => ({ probe, tsNs: ts, cpu: 0, tid, pid: tid, comm: 'w', args });
  it('pairs entries with returns, keys the lock on memory_lock and attributes the zap to the lock holder', () => {
    const ev: Event[] = [];
    const d = new Decoder((e) => ev.push(e), { memoryLockOffset: 0x540 });
    d.hit(hit('trig_config', 100, { dev: '0000:01:00.0', vdev: 0x1000n, offset: 4n, val: 0x101n }));
    d.hit(hit('lock', 110, { sem: 0x9999n }));                  // another rwsem taken by vfio-pci-core: ignored
    d.hit(hit('lock', 120, { sem: 0x1540n }));
    d.hit(hit('lock_ret', 125));
    d.hit(hit('zap', 130, { mapping: 0xabcn, start: 0n, len: ALL_BARS, vmas: 0x1n, magic: VFIO_MAGIC }));
    d.hit(hit('zap_ret', 180));
    d.hit(hit('unlock', 200, { sem: 0x1540n }));
    expect(ev.map((e) => [e.tsNs, Object.keys(e).find((k) => ['trigger', 'lockAcquire', 'zap', 'lockRelease'].includes(k))])).toEqual([
      [100, 'trigger'], [125, 'lockAcquire'], [130, 'zap'], [200, 'lockRelease']]);
    expect(ev[0]!.trigger!.kind).toBe(TriggerKind.MEM_DISABLE);
    expect(ev[1]!.lockAcquire!.waitNs).toBe(5);
    expect(ev[2]!.zap).toEqual({ start: 0, length: Number(ALL_BARS), durationNs: 50, target: ZapTarget.DEVICE, hadVmas: true });
    expect(ev.every((e) => e.device === '0000:01:00.0')).toBe(true);
    expect(d.stats.unattributed).toBe(1);
  });
  it('retires the device\'s mappings at close and ignores declined huge faults', () => {
    const ev: Event[] = [];
    const d = new Decoder((e) => ev.push(e), {});
    d.hit(hit('mmap', 1, { dev: '0000:02:00.0', start: 0x7000n, end: 0x8000n, pgoff: 0n, fmap: 0x55n }));
    d.hit(hit('fault', 2, { dev: '0000:02:00.0', start: 0x7000n, pgoff: 0n })); d.hit(hit('fault_ret', 3, { ret: 0x800n }));
    d.hit(hit('fault', 4, { dev: '0000:02:00.0', start: 0x7000n, pgoff: 0n })); d.hit(hit('fault_ret', 5, { ret: 0x100n }));
    d.hit(hit('trig_close', 9, { dev: '0000:02:00.0' }));
    expect(ev.map((e) => Object.keys(e).find((k) => k.startsWith('bar') || k === 'trigger'))).toEqual(['barMmap', 'barFault', 'trigger', 'barMunmap']);
    expect(ev[1]!.barFault).toEqual({ bar: 0, mappingId: mappingId(7, 0x7000n), ok: true });
    expect(ev[3]!.barMunmap!.mappingId).toBe(ev[0]!.barMmap!.mappingId);
  });
});

// Real captures from the kernel lab (test/kernel-lab/run.sh), replayed through the agent's decoder:
// raw-<backend>[-<scenario>].txt with its ledger-<backend>[-<scenario>].txt (scenarios of test/kernel-lab/guest.sh).
const captures = existsSync(FIX) ? readdirSync(FIX).flatMap((k) => readdirSync(join(FIX, k)).filter((f) => /^raw-\w+?(-\w+)?\.txt$/.test(f)).map((f) => [k, f] as const)) : [];
describe.each(captures)('lab capture %s/%s', (kernel, file) => {
  const [, backend, scenario] = /^raw-(\w+?)(?:-(\w+))?\.txt$/.exec(file)!;
  const suffix = `${backend}${scenario ? `-${scenario}` : ''}`;
  const load = () => {
    const { batches, header } = replayRaw(readFileSync(join(FIX, kernel, file), 'utf8'), { hostname: 'lab', bootId: 'fixture' });
    const ledger = parseLedger(readFileSync(join(FIX, kernel, `ledger-${suffix}.txt`), 'utf8'));
    return { batches, header, ledger, v: checkLab(batches, ledger) };
  };
  it('decodes into one episode per workload operation with timed zaps and no SKIPPED_ZAP', () => {
    const { header, v } = load();
    expect(header.kernel.startsWith(kernel)).toBe(true);
    expect(v.problems).toEqual([]);
    expect(v.perOp.flatMap((p) => p.episodes).filter((e) => e.revoke).length).toBeGreaterThanOrEqual(4);
  });
  if (scenario) it(`${scenario}: no certain finding on a correct kernel (but the slow importer's SLOW_REVOKE)`, () => {
    const { ledger, v } = load();
    const slow = new Set(ledger.filter((o) => /^import:\d+$/.test(o.op) && Number(o.op.slice(7)) > 50_000).map((o) => o.device));
    expect(unexpectedFindings(v, slow, ledger).map((f) => `${FindingKind[f.kind]} ${f.device} ${f.evidence}`)).toEqual([]);
  });
  if (scenario === 'dmabuf') it('dmabuf: real revokes notify the lab importer, named by its ops\' module; the slow one is SLOW_REVOKE', () => {
    const { ledger, v } = load();
    expect(checkImporters(v, ledger)).toEqual([]);
    expect(v.events.filter((e) => e.moveNotify).length).toBeGreaterThanOrEqual(8);
  });
  if (scenario === 'field') it('field: started inside a reset window and with memory off; a reset failing inside the lock, one before it', () => {
    const { ledger, v } = load();
    expect(checkField(v, ledger, backend as 'ftrace' | 'bpftrace')).toEqual([]);
  });
});

describe('call sites (probes on vfio-pci-core\'s calls instead of host-wide functions)', () => {
  // module text at 0x1000: f1 calls down_write and tail-calls unmap_mapping_range; f2 calls f1 twice; f3 calls
  // unmap_mapping_range through its __pfx_ padding (call-depth thunks); an e8 byte that targets nothing is ignored
  const base = 0x1000n, downWrite = 0x9000n, unmap = 0xa000n;
  const text = Buffer.alloc(0x100, 0x90);
  const call = (at: number, op: number, target: bigint) => { text[at] = op; text.writeInt32LE(Number(target - (base + BigInt(at) + 5n)), at + 1); };
  call(0x04, 0xe8, downWrite); call(0x10, 0xe9, unmap);                 // f1 @0x1000
  call(0x44, 0xe8, base); call(0x50, 0xe8, base);                        // f2 @0x1040
  call(0x84, 0xe8, unmap - 16n);                                         // f3 @0x1080
  text[0x90] = 0xe8; text.writeInt32LE(0x12345, 0x91);
  const functions = new Map([[0x1000n, 'f1'], [0x1040n, 'f2'], [0x1080n, 'f3'], [0x0ff0n, '__pfx_f1']]);
  const sites = findCallSites(text, base, new Map([[downWrite, 'down_write'], [unmap, 'unmap_mapping_range']]), functions);
  it('finds calls and tail calls, and where a tail-called function returns to', () => {
    const dw = sites.filter((s) => s.callee === 'down_write');
    expect(dw.map((s) => [s.call.func, s.call.offset, s.returns.map((r) => `${r.func}+${r.offset}`)])).toEqual([['f1', 4, ['f1+9']]]);
    const um = sites.filter((s) => s.callee === 'unmap_mapping_range');
    expect(um.map((s) => [s.call.func, s.call.offset, s.tail, s.returns.map((r) => `${r.func}+${r.offset}`)])).toEqual([
      ['f1', 0x10, true, ['f2+9', 'f2+21']], ['f3', 4, false, ['f3+9']]]);
  });
  it('plans one probe per call and per return point, without the caller filter', () => {
    const f = facts('6.12');
    const plan = makePlan({ ...f, callSites: sites });
    const locks = plan.attach.filter((p) => p.spec.id === 'lock');
    expect(locks.map((p) => [p.event, p.symbol, p.at])).toEqual([['lock__0', 'f1+0x4', 'call']]);
    expect(locks[0]!.filter).toEqual([]);
    expect(kprobeDefinition(locks[0]!)).toBe('p:revokescope/lock__0 f1+0x4 sem=%di:x64');
    const zapRet = plan.attach.filter((p) => p.spec.id === 'zap_ret');
    expect(zapRet.map((p) => p.symbol)).toEqual(['f2+0x9', 'f2+0x15', 'f3+0x9']);
    const tryRet = makePlan({ ...f, callSites: [{ callee: 'down_write_trylock', tail: false, call: { address: 1n, func: 'g', offset: 1 }, returns: [{ address: 6n, func: 'g', offset: 6 }] }] })
      .attach.find((p) => p.spec.id === 'lock_try_ret')!;
    expect(kprobeDefinition(tryRet)).toBe('p:revokescope/lock_try_ret__0 g+0x6 ok=%ax:x32');
    // unchanged where the kernel image is not readable: the host-wide function, filtered by caller
    expect(makePlan(f).attach.find((p) => p.spec.id === 'lock')!.symbol).toBe('down_write');
  });
  it('names call-site events back to their probe', () => {
    const r = parseTraceLine('  w-5 (5) [000] ..... 1.000002: lock_ret__3: (f1+0x9/0x40 [vfio_pci_core]) ');
    expect(r && 'hit' in r && r.hit.probe).toBe('lock_ret');
  });
});

describe('agent', () => {
  it('sends a heartbeat batch with now_ns when idle, and every batch carries now_ns', async () => {
    const plan = makePlan(facts('6.12'));
    const hits: ProbeHit[] = [{ probe: 'trig_config', tsNs: 1, cpu: 0, tid: 9, pid: 9, comm: 'w', args: { dev: '0000:01:00.0', offset: 4n, val: 0n } }];
    const backend = { attach: async () => ({ attached: plan.attach.filter((p) => p.spec.role !== 'snapshot'), failed: [] }),
      poll: (f: (h: ProbeHit) => void) => { const n = hits.length; hits.splice(0).forEach(f); return n; }, lost: () => 0, detach: async () => {} };
    const batches: EventBatch[] = [];
    const stats = await runAgent({ backend: 'ftrace', facts: facts('6.12'), plan, backendInstance: backend, devices: [{ address: '0000:01:00.0', driver: 'vfio-pci' }],
      sink: { write: async (b) => { batches.push(b); }, close: async () => {} }, durationMs: 2600, heartbeatMs: 1000, flushMs: 100, pollMs: 20, log: () => {} });
    expect(batches.every((b) => Number(b.nowNs) > 0)).toBe(true);
    expect(batches.map((b) => Number(b.nowNs))).toEqual([...batches.map((b) => Number(b.nowNs))].sort((a, b) => a - b));
    const heartbeats = batches.filter((b) => !(b.events ?? []).length);
    expect(heartbeats.length).toBeGreaterThanOrEqual(2);
    expect(stats.heartbeats).toBe(heartbeats.length);
    // no snapshot probe: the device's DeviceInfo has the driver and nothing it did not read (no zap flag guessed)
    const info = batches.flatMap((b) => b.events ?? []).find((e) => e.deviceInfo)!.deviceInfo!;
    expect(info).toEqual({ driver: 'vfio-pci', dmabufBarMmap: false });
  });
});

describe('decoder: the docs/rules.md vocabulary', () => {
  const hit = (probe: string, ts: number, args: Record<string, bigint | string> = {}, tid = 7) => ({ probe, tsNs: ts, cpu: 0, tid, pid: tid, comm: 'w', args });
  const DEV = '0000:01:00.0', SIB = '0000:01:00.1';
  const decode = (hits: ReturnType<typeof hit>[], extra: Partial<ConstructorParameters<typeof Decoder>[1]> = {}) => {
    const ev: Event[] = [];
    const d = new Decoder((e) => ev.push(e), { memoryLockOffset: 0x540, offsets: { 'vfio_pci_core_device.dmabufs': 0x570, 'dma_buf.attachments': 0x10 },
      symbols: { vfio_pci_core_mmap: 0xc000n }, driverOf: () => 'vfio-pci', symbolize: (a) => (a === 0x7000n ? 'rs_importer:rs_importer_ops' : undefined), ...extra });
    for (const h of hits) d.hit(h);
    return ev;
  };
  it('DeviceInfo snapshots: memory as __vfio_pci_memory_enabled() computes it, absent what was not read, re-sent only on change', () => {
    const snap = (ts: number, a: Record<string, bigint>) => hit('snapshot', ts, { dev: DEV, vdev: 0x1000n, mmapfn: 0xc000n, bufs: 0x1570n, ...a });
    const ev = decode([snap(1, { cmd: 0x0n, power: 0n, ncm: 0n, open: 1n }), snap(2, { cmd: 0x0n, power: 0n, ncm: 0n, open: 1n }),
      snap(3, { cmd: 0x2n, power: 3n, ncm: 0n, open: 1n, bufs: 0x9990n, revoked: 1n }), snap(4, { cmd: 0x0n, power: 0n, ncm: 1n, open: 2n, mmapfn: 0xd000n }),
      hit('snapshot', 5, { dev: DEV, vdev: 0x1000n, cmd: 0x6n })]);
    expect(ev.map((e) => e.deviceInfo)).toEqual([
      { driver: 'vfio-pci', dmabufBarMmap: false, memoryEnabled: false, powerState: 0, noCommandMemory: false, openCount: 1, customVmOpsBars: 0 },
      // D3hot: memory off whatever COMMAND says; a DMABUF on the list: its revoked bit
      { driver: 'vfio-pci', dmabufBarMmap: false, memoryEnabled: false, powerState: 3, noCommandMemory: false, openCount: 1, customVmOpsBars: 0, revoked: true },
      // a VF (no_command_memory): enabled with the bit clear; a driver's own mmap: custom bars unknown (absent)
      { driver: 'vfio-pci', dmabufBarMmap: false, memoryEnabled: true, powerState: 0, noCommandMemory: true, openCount: 2 },
      // no power state read: memory_enabled unknown, not guessed from COMMAND alone
      { driver: 'vfio-pci', dmabufBarMmap: false }]);
  });
  it('TriggerEnd for each trigger with the return value; a hot reset names every device it locks with one group id', () => {
    const ev = decode([
      hit('snapshot', 1, { dev: SIB, vdev: 0x2000n }),
      hit('trig_ioctl', 10, { dev: DEV, vdev: 0x1000n, cmd: 0x3b71n }),
      hit('lock_try', 11, { sem: 0x1540n }), hit('lock_try_ret', 12, { ok: 1n }),
      hit('lock_try', 13, { sem: 0x2540n }), hit('lock_try_ret', 14, { ok: 1n }),
      hit('reset_bus', 15, { dev: DEV }), hit('reset_bus_ret', 25, { ret: 0n }),
      hit('unlock', 26, { sem: 0x2540n }), hit('unlock', 27, { sem: 0x1540n }),
      hit('trig_ioctl_ret', 28, { ret: 0n }),
      hit('trig_ioctl', 30, { dev: DEV, vdev: 0x1000n, cmd: 0x3b6fn }), hit('trig_ioctl_ret', 31, { ret: 0xffffffeen }),   // -EINVAL before the lock
      hit('trig_config_ret', 32, { ret: 2n }),                                                                         // a write that named no trigger
    ]);
    const trig = ev.filter((e) => e.trigger);
    expect(trig.map((e) => [e.device, TriggerKind[e.trigger!.kind!]])).toEqual([[DEV, 'HOT_RESET'], [SIB, 'HOT_RESET'], [DEV, 'RESET']]);
    expect(new Set(trig.slice(0, 2).map((e) => e.trigger!.groupId)).size).toBe(1);
    expect(trig[0]!.trigger!.groupId).not.toBe(0);
    expect(ev.filter((e) => e.triggerEnd).map((e) => [TriggerKind[e.triggerEnd!.kind!], e.triggerEnd!.ret])).toEqual([['HOT_RESET', 0], ['RESET', -18]]);
    expect(ev.find((e) => e.resetFunction)!.resetFunction).toEqual({ ret: 0, durationNs: 10 });
    expect(ev.filter((e) => e.lockAcquire).map((e) => e.device)).toEqual([DEV, SIB]);
  });
  it('FLR from a PCIe DevCtl write, OPEN, PowerTransition, munmap, importer count and identity', () => {
    const ev = decode([
      hit('trig_open', 1, { dev: DEV, vdev: 0x1000n }), hit('trig_open_ret', 2, { ret: 0n }),
      hit('trig_flr', 3, { dev: DEV, vdev: 0x1000n, count: 2n, offset: 8n, val: 0x8000n }), hit('trig_flr_ret', 4, { ret: 2n }),
      hit('trig_flr', 5, { dev: DEV, vdev: 0x1000n, count: 2n, offset: 8n, val: 0x10n }),            // DevCtl without FLR: no trigger
      hit('power', 6, { dev: DEV, vdev: 0x1000n, from: 0n, to: 3n }), hit('power_ret', 9, { ret: 0n }),
      hit('mmap', 10, { dev: DEV, vdev: 0x1000n, start: 0x7000n, end: 0x8000n, pgoff: 0n }),
      hit('munmap', 11, { ops: 1n, vdev: 0x1000n, start: 0x7000n, pgoff: 0n }),
      hit('dmabuf_move', 20, { dev: DEV, vdev: 0x1000n, revoked: 1n }),
      hit('move_notify', 21, { dmabuf: 0x5000n, n1: 0x6000n, o1: 0x7000n, n2: 0x5010n }), hit('move_notify_ret', 30, {}),
      hit('dmabuf_move_ret', 31, {}),
    ]);
    expect(ev.filter((e) => e.trigger).map((e) => TriggerKind[e.trigger!.kind!])).toEqual(['OPEN', 'FLR']);
    expect(ev.filter((e) => e.triggerEnd).map((e) => [TriggerKind[e.triggerEnd!.kind!], e.triggerEnd!.ret])).toEqual([['OPEN', 0], ['FLR', 2]]);
    expect(ev.find((e) => e.powerTransition)!.powerTransition).toEqual({ from: 0, to: 3, durationNs: 3 });
    expect(ev.find((e) => e.barMunmap)!.barMunmap).toEqual({ bar: 0, mappingId: mappingId(7, 0x7000n) });
    expect(ev.find((e) => e.moveNotify)!.moveNotify).toEqual({ dmabufId: 0x5000, durationNs: 9, importerCount: 1, importers: ['rs_importer:rs_importer_ops'] });
    expect(ev.find((e) => e.dmabufRevoke)!.dmabufRevoke).toMatchObject({ revoked: true, dmabufCount: 1 });
  });
});

describe('revokescope lab: arguments', () => {
  const io = () => { const o = { out: '', err: '' }; return { o, io: { stdout: { write: (s: string) => { o.out += s; return true; } }, stderr: { write: (s: string) => { o.err += s; return true; } } } as unknown as CommandIo }; };
  it.each([
    [[], /either --kernel VERSION or --kernel-image/],
    [['--kernel', '5.10'], /--kernel must be 7.3, 7.2, 6.12, 6.1, got '5.10'/],
    [['--kernel', '7.3', '--kernel-image', 'x'], /either --kernel VERSION or --kernel-image/],
    [['--kernel-image', '/nonexistent/bzImage', '--modules', '/tmp'], /no such file/],
    [['--kernel', '7.3', '--format', 'yaml'], /--format must be table, json, got 'yaml'/],
    [['--kernel', '7.3', '--backend', 'ebpf'], /--backend must be ftrace, bpftrace, got 'ebpf'/],
    [['--kernel', '7.3', '--timeout', 'soon'], /--timeout must be a duration .*got 'soon'/],
    [['--kernel', '7.3', '--bogus'], /unknown option '--bogus'/],
  ])('%j is a usage error (exit 2, nothing booted)', async (args, message) => {
    const { o, io: cio } = io();
    expect(await runLab(args as string[], cio)).toBe(2);
    expect(o.err).toMatch(message);
  });
  it('--help says what it does and the exit codes', async () => {
    const { o, io: cio } = io();
    expect(await runLab(['--help'], cio)).toBe(0);
    expect(o.out).toMatch(/--kernel VERSION[\s\S]*--format table\|json[\s\S]*exit status: 0 no certain finding, 1 a certain finding/);
  });
});

describe('bpftrace session', () => {
  it('hands hits over in time order once they are older than the reorder window (per-CPU buffers interleave)', () => {
    const s = new BpftraceSession(makePlan(facts('6.12')));
    const line = (probe: string, ts: number, cpu: number) => `RS ${probe} ${ts} ${cpu} 7 7 |w`;
    expect(s.ingest(`RS_READY\n${line('lock_ret', 2_000, 1)}\n${line('lock', 1_000, 0)}\n`)).toBe(true);
    const got: string[] = [];
    expect(s.poll((h) => got.push(h.probe))).toBe(0);                 // both within the window of the newest
    s.ingest(`${line('unlock', 1_000 + REORDER_WINDOW_NS + 5_000, 0)}\nLost 3 events\n`);
    s.poll((h) => got.push(h.probe));
    expect(got).toEqual(['lock', 'lock_ret']);
    s.poll((h) => got.push(h.probe), true);
    expect(got).toEqual(['lock', 'lock_ret', 'unlock']);
    expect(s.lost()).toBe(3);
  });
  it('stops bpftrace only once it has printed what it recorded (bpftrace 0.17 drops its backlog at SIGINT)', async () => {
    // a stand-in for bpftrace that prints 20 hits slowly, busy between them (as while it resolves kernel stacks), and
    // that prints nothing more once SIGINT came, as bpftrace 0.17's perf_event_printer() (exitsig_recv)
    const fake = join(mkdtempSync(join(tmpdir(), 'rs-bt-')), 'bpftrace');
    writeFileSync(fake, `#!${process.execPath}
let stopped = false, i = 0;
process.on('SIGINT', () => { stopped = true; process.stdout.write('\\n\\n'); process.exit(0); });
process.stdout.write('Attaching 1 probe...\\nRS_READY 1000\\n');
const spin = (ms) => { const t = Date.now(); while (Date.now() - t < ms); };
(function next() {
  if (stopped || i === 20) return;
  spin(40); process.stdout.write('RS lock ' + (2000 + i++) + ' 0 7 7 |w\\n'); setImmediate(next);
})();
setInterval(() => {}, 1000);
`);
    chmodSync(fake, 0o755);
    const s = new BpftraceSession(makePlan(facts('6.12')), fake, 30_000);
    await s.attach();
    const got: number[] = [];
    await s.detach((h) => got.push(h.tsNs));
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => 2000 + i));
  });
  it('drops what fired before the whole program was attached (BEGIN\'s time)', () => {
    const s = new BpftraceSession(makePlan(facts('6.12')));
    s.ingest(`RS zap 900 0 7 7 |w\nRS_READY 1000\nRS lock 1100 0 7 7 |w\n`);
    const got: string[] = [];
    s.poll((h) => got.push(h.probe), true);
    expect(got).toEqual(['lock']);
    expect(s.beforeReady).toBe(1);
  });
});

describe('replayRaw of absurd loss counts (found by npm run fuzz)', () => {
  it('[LOST 10^22 EVENTS] lines saturate dropped below 2^64: the batch stays readable with its events', () => {
    const [header, ...body] = readFileSync(join(FIX, '7.3', 'raw-ftrace-dmabuf.txt'), 'utf8').split('\n');
    const host = { hostname: 'lab', bootId: 'fixture' };
    const lost = Array.from({ length: 3000 }, () => 'CPU:0 [LOST 10000000000000000000000 EVENTS]'); // 3 × 10^25 in all
    const { batches } = replayRaw([header, ...lost, ...body].join('\n'), host);
    const b = batches[0]!;
    expect(b.dropped).toBe(Number.MAX_SAFE_INTEGER);
    expect(b.events!.length).toBeGreaterThan(0);
    expect(() => validateBatch(b)).not.toThrow();
    const frame = v1.EventBatch.encode(b).finish();
    expect(new BatchScan().read(frame).dropped).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe('replayRaw on a damaged header (found by npm run fuzz)', () => {
  it('a header number that does not parse is a bad header, not a SyntaxError or a NaN deep in the decoder', () => {
    const [header, ...body] = readFileSync(join(FIX, '7.3', 'raw-ftrace-dmabuf.txt'), 'utf8').split('\n');
    const host = { hostname: 'lab', bootId: 'fixture' };
    expect(replayRaw([header, ...body].join('\n'), host).batches[0]!.events!.length).toBeGreaterThan(0);
    for (const [from, to] of [[/memory_lock_offset=\d+/, 'memory_lock_offset=x1360'], [/@0xffffffffc02ca320/, '@vfio_pci_dxffffffffc02ca620'],
      [/memory_lock@1360/, 'memory_lock@13x60']] as const) {
      const bad = header!.replace(from, to);
      expect(bad).not.toBe(header);
      expect(() => replayRaw([bad, ...body].join('\n'), host)).toThrow(/^bad revokescope raw header: /);
    }
  });
});
