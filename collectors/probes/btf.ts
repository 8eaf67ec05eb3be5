// Minimal BTF reader (kernel Documentation/bpf/btf.rst): enough to compute byte offsets of struct members
// so probes can follow pointers (vdev->pdev, mapping->i_mmap ...) without hard-coding one kernel build.
// Module BTF (/sys/kernel/btf/<module>) is split BTF: its type ids and string offsets continue vmlinux's.
import { existsSync, readFileSync } from 'node:fs';

const BTF_MAGIC = 0xeb9f;
const KIND = { INT: 1, PTR: 2, ARRAY: 3, STRUCT: 4, UNION: 5, ENUM: 6, FWD: 7, TYPEDEF: 8, VOLATILE: 9, CONST: 10,
  RESTRICT: 11, FUNC: 12, FUNC_PROTO: 13, VAR: 14, DATASEC: 15, FLOAT: 16, DECL_TAG: 17, TYPE_TAG: 18, ENUM64: 19 } as const;

interface BtfType { kind: number; name: string; vlen: number; kindFlag: boolean; sizeOrType: number; at: number; blob: BtfBlob }
interface BtfBlob { view: DataView; strings: Uint8Array; strBase: number; parent?: BtfBlob }
export interface Member { name: string; type: number; bitOffset: number; bitSize: number }
/** Where a member lives: bit offset from the struct start and, for a bitfield, its width (0 = not a bitfield). */
export interface MemberBits { bitOffset: number; bitSize: number }

export class Btf {
  private types: BtfType[] = [{ kind: 0, name: '', vlen: 0, kindFlag: false, sizeOrType: 0, at: 0, blob: undefined as never }];
  private byName = new Map<string, number[]>();
  private strBaseNext = 0;
  private lastBlob?: BtfBlob;

  /** Parse vmlinux BTF first, then any module BTF split on top of it. */
  add(bytes: Uint8Array): this {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (view.getUint16(0, true) !== BTF_MAGIC) throw new Error('not BTF (bad magic)');
    const hdrLen = view.getUint32(4, true);
    const typeOff = view.getUint32(8, true), typeLen = view.getUint32(12, true);
    const strOff = view.getUint32(16, true), strLen = view.getUint32(20, true);
    const blob: BtfBlob = { view, strings: bytes.subarray(hdrLen + strOff, hdrLen + strOff + strLen), strBase: this.strBaseNext, parent: this.lastBlob };
    let p = hdrLen + typeOff;
    const end = p + typeLen;
    while (p < end) {
      const nameOff = view.getUint32(p, true), info = view.getUint32(p + 4, true), sizeOrType = view.getUint32(p + 8, true);
      const kind = (info >>> 24) & 0x1f, vlen = info & 0xffff, kindFlag = (info >>> 31) === 1;
      const t: BtfType = { kind, name: '', vlen, kindFlag, sizeOrType, at: p + 12, blob };
      // Only aggregates are looked up by name; member names are decoded lazily.
      if ((kind === KIND.STRUCT || kind === KIND.UNION) && nameOff) t.name = this.str(blob, nameOff);
      const id = this.types.length;
      this.types.push(t);
      if ((kind === KIND.STRUCT || kind === KIND.UNION) && t.name) {
        this.byName.set(t.name, [...(this.byName.get(t.name) ?? []), id]);
      }
      p += 12 + extraBytes(kind, vlen);
    }
    this.strBaseNext += strLen;
    this.lastBlob = blob;
    return this;
  }

  private str(blob: BtfBlob, off: number): string {
    let b: BtfBlob | undefined = blob;
    while (b && off < b.strBase) b = b.parent;
    if (!b) return '';
    const s = b.strings, i = off - b.strBase;
    let j = i; while (j < s.length && s[j] !== 0) j++;
    return Buffer.from(s.buffer, s.byteOffset + i, j - i).toString('latin1');
  }

  /** Follow typedef/const/volatile/restrict/type_tag to the underlying type id. */
  private resolve(id: number): number {
    for (let i = 0; i < 32; i++) {
      const t = this.types[id];
      if (!t) return id;
      if (t.kind === KIND.TYPEDEF || t.kind === KIND.CONST || t.kind === KIND.VOLATILE || t.kind === KIND.RESTRICT || t.kind === KIND.TYPE_TAG) id = t.sizeOrType;
      else return id;
    }
    return id;
  }

  private members(id: number): Member[] {
    const t = this.types[id];
    if (!t || (t.kind !== KIND.STRUCT && t.kind !== KIND.UNION)) return [];
    const out: Member[] = [];
    for (let i = 0; i < t.vlen; i++) {
      const at = t.at + i * 12;
      const off = t.blob.view.getUint32(at + 8, true);
      out.push({ name: this.str(t.blob, t.blob.view.getUint32(at, true)), type: t.blob.view.getUint32(at + 4, true),
        bitOffset: t.kindFlag ? off & 0xffffff : off, bitSize: t.kindFlag ? off >>> 24 : 0 });
    }
    return out;
  }

  /** Find a member by name, descending into anonymous structs/unions; returns its bit offset, width and type. */
  private member(structId: number, name: string): { bits: number; bitSize: number; type: number } | undefined {
    for (const m of this.members(this.resolve(structId))) {
      if (m.name === name) return { bits: m.bitOffset, bitSize: m.bitSize, type: m.type };
      if (m.name === '') {
        const inner = this.member(m.type, name);
        if (inner) return { bits: m.bitOffset + inner.bits, bitSize: inner.bitSize, type: inner.type };
      }
    }
    return undefined;
  }

  /** Bit offset (and bitfield width) of `struct.a.b.c` (embedded members only; a pointer on the path ends the walk). */
  bitsOf(path: string): MemberBits | undefined {
    const [structName, ...fields] = path.split('.');
    const candidates = this.byName.get(structName!) ?? [];
    for (const id of candidates) {
      if (this.types[id]!.vlen === 0) continue;          // declaration-only copy
      let type = id, bits = 0, bitSize = 0, ok = true;
      for (const f of fields) {
        const m = this.member(type, f);
        if (!m) { ok = false; break; }
        bits += m.bits; bitSize = m.bitSize; type = m.type;
      }
      if (ok) return { bitOffset: bits, bitSize };
    }
    return undefined;
  }

  /** Byte offset of `struct.a.b.c`; undefined for a bitfield that does not start on a byte (use bitsOf). */
  offsetOf(path: string): number | undefined {
    const b = this.bitsOf(path);
    return b && (b.bitSize === 0 || b.bitOffset % 8 === 0) ? b.bitOffset >>> 3 : undefined;
  }

  has(structName: string): boolean { return this.byName.has(structName); }

  /** A copy sharing the parsed base, to split one module's BTF on top of it. */
  fork(): Btf {
    const b = new Btf();
    b.types = this.types.slice(); b.byName = new Map(this.byName); b.strBaseNext = this.strBaseNext; b.lastBlob = this.lastBlob;
    return b;
  }
}

export interface OffsetSource {
  offsetOf(path: string): number | undefined;
  /** Bit position and bitfield width, for members that are bitfields (pdev->no_command_memory ...). */
  bitsOf?(path: string): MemberBits | undefined;
  has(structName: string): boolean;
}

function extraBytes(kind: number, vlen: number): number {
  switch (kind) {
    case KIND.INT: case KIND.VAR: case KIND.DECL_TAG: return 4;
    case KIND.ARRAY: return 12;
    case KIND.STRUCT: case KIND.UNION: case KIND.DATASEC: case KIND.ENUM64: return vlen * 12;
    case KIND.ENUM: case KIND.FUNC_PROTO: return vlen * 8;
    default: return 0;
  }
}

/** Load vmlinux BTF plus the named modules' BTF from sysfs; undefined when the kernel has no BTF. */
export function loadKernelBtf(modules: string[], root = '/sys/kernel/btf'): OffsetSource | undefined {
  if (!existsSync(`${root}/vmlinux`)) return undefined;
  const base = new Btf().add(readFileSync(`${root}/vmlinux`));
  // Split BTF is relative to vmlinux only, so each module gets its own fork of the base.
  const parts = [base, ...modules.filter((m) => existsSync(`${root}/${m}`)).map((m) => base.fork().add(readFileSync(`${root}/${m}`)))];
  return {
    offsetOf: (path) => { for (let i = parts.length - 1; i >= 0; i--) { const o = parts[i]!.offsetOf(path); if (o !== undefined) return o; } return undefined; },
    bitsOf: (path) => { for (let i = parts.length - 1; i >= 0; i--) { const o = parts[i]!.bitsOf(path); if (o !== undefined) return o; } return undefined; },
    has: (name) => parts.some((p) => p.has(name)),
  };
}
