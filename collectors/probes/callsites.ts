// Call sites of kernel functions inside one module's text, read from the live kernel image (/proc/kcore, an ELF
// core file: its PT_LOAD segments map kernel virtual addresses to file offsets). A probe at a call site (the
// `call` instruction, and the instruction after it) fires only for that module's calls, where a probe on the
// callee (down_write, up_write, unmap_mapping_range ...) fires for every caller on the host and filters after.
// x86-64 only: a direct call is `e8 rel32`, target = address of the next instruction + rel32.
import { closeSync, openSync, readSync } from 'node:fs';

export interface CallSite {
  callee: string;
  /** Address of the call instruction and of the instruction after it (where the callee returns to). */
  call: bigint; next: bigint;
  /** The containing function symbol and the offsets of both instructions in it ("func+0x1c"). */
  func: string; callOffset: number; nextOffset: number;
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
    const got = readSync(fd, buf, 0, buf.length, Number(seg.offset + (lo - seg.vaddr)));
    return got === buf.length ? buf : undefined;
  } finally { closeSync(fd); }
}

/**
 * Direct calls to `targets` (callee name by address) in `text` (the module's code, starting at `base`), each
 * placed in the function that contains it (`functions`: start address -> name, the module's text symbols).
 * A call into a callee's 16-byte __pfx_ padding (call-depth tracking thunks) counts as a call to the callee.
 */
export function findCallSites(text: Buffer, base: bigint, targets: Map<bigint, string>, functions: Map<bigint, string>): CallSite[] {
  const starts = [...functions.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const funcAt = (addr: bigint): [bigint, string] | undefined => {
    let lo = 0, hi = starts.length - 1, best = -1;
    while (lo <= hi) { const mid = (lo + hi) >> 1; if (starts[mid]! <= addr) { best = mid; lo = mid + 1; } else hi = mid - 1; }
    return best < 0 ? undefined : [starts[best]!, functions.get(starts[best]!)!];
  };
  const out: CallSite[] = [];
  for (let i = 0; i + 5 <= text.length; i++) {
    if (text[i] !== 0xe8) continue;
    const call = base + BigInt(i), next = call + 5n;
    const target = next + BigInt(text.readInt32LE(i + 1));
    const callee = targets.get(target) ?? targets.get(target + 16n);
    if (!callee) continue;
    const f = funcAt(call);
    if (!f || f[1].startsWith('__pfx_')) continue;
    out.push({ callee, call, next, func: f[1], callOffset: Number(call - f[0]), nextOffset: Number(next - f[0]) });
  }
  return out;
}
