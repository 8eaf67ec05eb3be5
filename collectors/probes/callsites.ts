// Call sites of kernel functions inside one module's text, read from the live kernel image (/proc/kcore, an ELF
// core file: its PT_LOAD segments map kernel virtual addresses to file offsets). A probe at a call site fires only
// for that module's calls, where a probe on the callee (down_write, up_write, unmap_mapping_range ...) fires for
// every caller on the host and filters after. x86-64: a direct call is `e8 rel32`, a tail call `e9 rel32` (jmp),
// target = address of the next instruction + rel32. A tail call returns to where its own function was called:
// vfio_pci_zap_and_down_write_memory_lock() ends in `jmp unmap_mapping_range`, so the zap returns to the
// instruction after each call of vfio_pci_zap_and_down_write_memory_lock.
import { closeSync, openSync, readSync } from 'node:fs';

/** Where a probe goes: an address, and the same as "function+offset" (what kprobe_events and bpftrace take). */
export interface CodePoint { address: bigint; func: string; offset: number }

export interface CallSite {
  callee: string;
  /** The call (or tail-call jmp) instruction: where the callee is entered. */
  call: CodePoint;
  /** Where the callee returns to in this module: after the call, or after each call of a tail-calling function. */
  returns: CodePoint[];
  tail: boolean;
}

interface Segment { vaddr: bigint; offset: bigint; size: bigint }

/** PT_LOAD segments of an ELF64 little-endian core file. */
function loadSegments(fd: number): Segment[] {
  const hdr = Buffer.alloc(64);
  readSync(fd, hdr, 0, 64, 0);
  if (hdr.readUInt32BE(0) !== 0x7f454c46 || hdr[4] !== 2 || hdr[5] !== 1) throw new Error('not an ELF64 little-endian core');
  const phoff = hdr.readBigUInt64LE(32), phentsize = hdr.readUInt16LE(54), phnum = hdr.readUInt16LE(56);
  const ph = Buffer.alloc(phentsize * phnum);
  readSync(fd, ph, 0, ph.length, Number(phoff));
  const out: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const o = i * phentsize;
    if (ph.readUInt32LE(o) !== 1) continue;                     // PT_LOAD
    out.push({ offset: ph.readBigUInt64LE(o + 8), vaddr: ph.readBigUInt64LE(o + 16), size: ph.readBigUInt64LE(o + 32) });
  }
  return out;
}

/** Bytes of [lo, hi) from the kernel image, or undefined when no segment covers them. */
export function readKernelMemory(lo: bigint, hi: bigint, kcore = '/proc/kcore'): Buffer | undefined {
  const fd = openSync(kcore, 'r');
  try {
    const seg = loadSegments(fd).find((s) => s.vaddr <= lo && hi <= s.vaddr + s.size);
    if (!seg) return undefined;
    const buf = Buffer.alloc(Number(hi - lo));
    // kcore's file offsets for the module area are far above 2^53: a bigint position
    const got = readSync(fd, buf, 0, buf.length, seg.offset + (lo - seg.vaddr));
    return got === buf.length ? buf : undefined;
  } finally { closeSync(fd); }
}

interface Transfer { at: bigint; next: bigint; target: bigint; tail: boolean }

/**
 * Direct calls and tail calls to `callees` (name by address) in `text` (the module's code, starting at `base`),
 * each placed in the function that contains it (`functions`: start address -> name, the module's text symbols).
 * A transfer into a callee's 16-byte __pfx_ padding (call-depth tracking thunks) counts as one to the callee.
 */
export function findCallSites(text: Buffer, base: bigint, callees: Map<bigint, string>, functions: Map<bigint, string>): CallSite[] {
  const starts = [...functions.keys()].filter((a) => !functions.get(a)!.startsWith('__pfx_')).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const funcAt = (addr: bigint): bigint | undefined => {
    let lo = 0, hi = starts.length - 1, best = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (starts[mid]! <= addr) { best = mid; lo = mid + 1; } else hi = mid - 1; }
    return best < 0 ? undefined : starts[best];
  };
  const point = (address: bigint): CodePoint | undefined => {
    const f = funcAt(address);
    return f === undefined ? undefined : { address, func: functions.get(f)!, offset: Number(address - f) };
  };
  // every direct call / jmp in the module, by target (callees and the module's own functions)
  const byTarget = new Map<bigint, Transfer[]>();
  const known = (t: bigint) => callees.has(t) || functions.has(t);
  for (let i = 0; i + 5 <= text.length; i++) {
    const op = text[i];
    if (op !== 0xe8 && op !== 0xe9) continue;
    const at = base + BigInt(i), next = at + 5n;
    let target = next + BigInt(text.readInt32LE(i + 1));
    if (!known(target) && known(target + 16n)) target += 16n;
    if (!known(target)) continue;
    let list = byTarget.get(target); if (!list) byTarget.set(target, (list = []));
    list.push({ at, next, target, tail: op === 0xe9 });
  }
  /** Where a call into `fn` comes back to in this module (following tail calls up, without cycles). */
  const returnsOf = (fn: bigint, seen: Set<bigint>): bigint[] => {
    if (seen.has(fn)) return [];
    seen.add(fn);
    return (byTarget.get(fn) ?? []).flatMap((t) => {
      if (!t.tail) return [t.next];
      const owner = funcAt(t.at);
      return owner === undefined ? [] : returnsOf(owner, seen);
    });
  };
  const out: CallSite[] = [];
  for (const [target, callee] of callees) {
    for (const t of byTarget.get(target) ?? []) {
      const call = point(t.at);
      if (!call) continue;
      const owner = funcAt(t.at)!;
      const ret = t.tail ? returnsOf(owner, new Set()) : [t.next];
      out.push({ callee, call, tail: t.tail, returns: ret.map(point).filter((p): p is CodePoint => p !== undefined) });
    }
  }
  return out.sort((a, b) => (a.call.address < b.call.address ? -1 : 1));
}
